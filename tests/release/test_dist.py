"""`python -m build` makes an sdist and a wheel that install into an empty virtualenv (the
locked dependencies, then each artefact in turn) and run `hookstream --help`."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from hookstream.core.build_info import VERSION
from tests.deploy._manifests import REPO


def _run(*args: str | Path, cwd: Path = REPO) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_sdist_and_wheel_build_install_into_an_empty_venv_and_run(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", dist, REPO)
    (sdist,) = dist.glob(f"hookstream-{VERSION}.tar.gz")
    (wheel,) = dist.glob(f"hookstream-{VERSION}-py3-none-any.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "hookstream/ingest/app.py" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
    assert not [name for name in names if name.startswith(("tests/", "bench/"))]
    with tarfile.open(sdist) as archive:
        assert f"hookstream-{VERSION}/LICENSE" in archive.getnames()

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps"]
    _run(*pip, "--require-hashes", "-r", REPO / "requirements.txt")
    hookstream = venv / "bin" / "hookstream"
    for artefact in (wheel, sdist):
        _run(*pip, "--force-reinstall", artefact)
        assert "ingest" in _run(hookstream, "--help", cwd=tmp_path)
        assert _run(hookstream, "--version", cwd=tmp_path).strip().endswith(f"version {VERSION}")
