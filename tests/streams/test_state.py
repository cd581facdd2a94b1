from __future__ import annotations

from pathlib import Path

from hookstream.streams.state import LocalState


def _tables(root: Path) -> Path:
    tables = root / "v1" / "tables"
    (tables / "dedup-0.db").mkdir(parents=True)
    (tables / "dedup-0.db" / "CURRENT").write_text("x")
    return tables


def test_tables_left_by_a_crash_are_deleted_before_start(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    assert LocalState(tmp_path).claim(tables) is True
    assert not tables.exists()


def test_tables_left_by_a_clean_stop_are_kept_and_the_marker_is_consumed(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    state = LocalState(tmp_path)
    state.mark_clean_stop()
    assert state.claim(tables) is False
    assert (tables / "dedup-0.db" / "CURRENT").exists()
    assert not state.marker.exists()  # a crash of this run will not look clean
    assert LocalState(tmp_path).claim(tables) is True


def test_a_first_start_has_nothing_to_delete(tmp_path: Path) -> None:
    data_dir = tmp_path / "new"
    assert LocalState(data_dir).claim(data_dir / "v1" / "tables") is False
    assert data_dir.is_dir()
