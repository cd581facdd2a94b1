"""The replay ledger: what a replay group remembers as moved, in its committed offset and
metadata. Its encoding is stored in Kafka, so it is tested as a format, not only through
replay."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hookstream.ops.ledger import MAX_METADATA_CHARS, Ledger, PartitionPass


def test_a_group_without_commits_starts_at_offset_zero_with_nothing_settled() -> None:
    ledger = Ledger.decode(-1, "")
    assert ledger.floor == 0
    assert not ledger.is_settled(0)


def test_settled_ranges_touching_the_floor_raise_it() -> None:
    ledger = Ledger(floor=10)
    ledger.settle(12, 15)
    assert (ledger.floor, ledger.ranges) == (10, [(12, 15)])
    ledger.settle(10, 12)
    assert (ledger.floor, ledger.ranges) == (15, [])


def test_overlapping_and_touching_ranges_merge() -> None:
    ledger = Ledger()
    ledger.settle(5, 7)
    ledger.settle(9, 11)
    ledger.settle(7, 9)
    assert ledger.ranges == [(5, 11)]
    ledger.settle(20, 30)
    ledger.settle(25, 40)
    assert ledger.ranges == [(5, 11), (20, 40)]


def test_encoding_round_trips_through_commit_metadata() -> None:
    ledger = Ledger(floor=3)
    ledger.settle(5, 8)
    ledger.settle(12, 13)
    ledger.settle(40, 60)
    metadata = ledger.encode()
    assert metadata == "hsr1:2+3,4+1,1b+14"  # gap since the last end, length; hex
    assert Ledger.decode(ledger.floor, metadata) == ledger


def test_metadata_written_by_someone_else_counts_only_the_offset() -> None:
    assert Ledger.decode(7, "some other tool") == Ledger(floor=7)
    assert Ledger.decode(7, "hsr1:garbage") == Ledger(floor=7)
    assert Ledger.decode(7, "hsr1:0+1") == Ledger(floor=7)  # a range touching the floor


def test_raising_the_floor_to_the_log_start_drops_what_is_gone() -> None:
    ledger = Ledger(floor=0, ranges=[(2, 4), (6, 9)])
    ledger.raise_floor(7)
    assert (ledger.floor, ledger.ranges) == (9, [])


def test_scattered_ranges_stop_fitting_before_the_brokers_metadata_limit() -> None:
    ledger = Ledger(floor=10**15)
    offset = ledger.floor + 1
    while ledger.fits_after_settling(offset, offset + 1):
        ledger.settle(offset, offset + 1)
        offset += 2  # a hole between every two settled offsets
    assert len(ledger.encode()) <= MAX_METADATA_CHARS < 4096
    assert len(ledger.ranges) > 500  # the compact encoding holds hundreds of ranges
    # Filling a hole never needs room: it merges two ranges.
    assert ledger.fits_after_settling(offset - 3, offset - 2)


def test_a_pass_settles_marker_gaps_next_to_moved_records_but_not_holes() -> None:
    ledger = Ledger(floor=0)
    walk = PartitionPass(ledger, cursor=0)
    walk.settled(0)  # moved
    walk.settled(2)  # moved; 1 was a transaction marker
    walk.hole(3)  # filtered out
    walk.settled(5)  # moved; 4 was a marker
    walk.reached(7)  # 6 a marker at the end
    assert not ledger.is_settled(3)
    assert (ledger.floor, ledger.ranges) == (3, [(4, 7)])


def test_a_gap_after_a_hole_at_the_end_adds_no_range() -> None:
    ledger = Ledger(floor=0)
    walk = PartitionPass(ledger, cursor=0)
    walk.hole(0)
    walk.reached(5)
    assert (ledger.floor, ledger.ranges) == (0, [])


# A partition as a replay sees it: per offset, a record that is moved, a record left behind
# (a hole), or no record at all (a transaction marker or aborted record).
_kinds = st.lists(st.sampled_from(["moved", "hole", "none"]), max_size=60)


@given(first=_kinds, second=_kinds)
def test_two_runs_settle_exactly_the_moved_records_and_never_a_hole(
    first: list[str], second: list[str]
) -> None:
    kinds = first
    ledger = Ledger()
    _walk(ledger, kinds)
    _check(ledger, kinds)
    # A second run over a longer log: earlier holes may be moved now, settled stay settled.
    again = [
        "moved" if (k == "hole" and s == "moved") else k
        for k, s in zip(kinds, second + ["hole"] * len(kinds), strict=False)
    ] + second
    decoded = Ledger.decode(ledger.floor, ledger.encode())
    _walk(decoded, again)
    _check(decoded, again)


def _walk(ledger: Ledger, kinds: list[str]) -> None:
    walk = PartitionPass(ledger, cursor=ledger.floor)
    for offset, kind in enumerate(kinds):
        if offset < ledger.floor:
            continue
        if kind == "none":
            continue
        if kind == "moved" or ledger.is_settled(offset):
            walk.settled(offset)
        else:
            walk.hole(offset)
    walk.reached(len(kinds))


def _check(ledger: Ledger, kinds: list[str]) -> None:
    bound = ledger._size_bound  # what `fits_after_settling` trusts without encoding
    assert bound >= len(ledger.encode())
    for offset, kind in enumerate(kinds):
        if kind == "moved":
            assert ledger.is_settled(offset), (offset, kinds, ledger)
        if kind == "hole":
            assert not ledger.is_settled(offset), (offset, kinds, ledger)
    assert all(low < high for low, high in ledger.ranges)
    assert all(a[1] < b[0] for a, b in zip(ledger.ranges, ledger.ranges[1:], strict=False))
    assert all(low > ledger.floor for low, _ in ledger.ranges)
