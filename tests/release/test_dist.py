"""`python -m build` makes an sdist and a wheel that install into an empty virtualenv (the
locked dependencies, then each artefact in turn) and run `hookstream --help`.

Where scripts/build-wheelhouse has cached the lock's wheels (the image test does, earlier in
the session), every install and isolated build takes them from there, without an index."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from hookstream.core.build_info import VERSION
from tests.deploy._manifests import REPO

REQUIREMENTS = ("requirements.txt", "requirements-build.txt")


def _pip_env() -> dict[str, str]:
    """The environment, pointed at the cached wheelhouse of the current lock when there is one
    (its key as scripts/build-wheelhouse computes it)."""
    locked = b"".join((REPO / name).read_bytes() for name in REQUIREMENTS)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hookstream"
    wheelhouse = cache / f"wheelhouse-{hashlib.sha256(locked).hexdigest()[:16]}"
    if not (wheelhouse / ".complete").is_file():
        return dict(os.environ)
    return {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}


def _run(*args: str | Path, env: dict[str, str], cwd: Path = REPO) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_sdist_and_wheel_build_install_into_an_empty_venv_and_run(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    env = _pip_env()
    _run(sys.executable, "-m", "build", "--outdir", dist, REPO, env=env)
    (sdist,) = dist.glob(f"hookstream-{VERSION}.tar.gz")
    (wheel,) = dist.glob(f"hookstream-{VERSION}-py3-none-any.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "hookstream/ingest/app.py" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
    # Every module is under hookstream/: no generic top-level name (ingest, streams, sinks,
    # sandbox, tests, bench) that another distribution could also claim.
    top_level = {name.split("/", 1)[0] for name in names if not name.startswith("hookstream-")}
    assert top_level == {"hookstream"}, top_level
    with tarfile.open(sdist) as archive:
        assert f"hookstream-{VERSION}/LICENSE" in archive.getnames()

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, env=env)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps"]
    _run(*pip, "--require-hashes", "-r", REPO / "requirements.txt", env=env)
    hookstream = venv / "bin" / "hookstream"
    for artefact in (wheel, sdist):
        _run(*pip, "--force-reinstall", artefact, env=env)
        assert "ingest" in _run(hookstream, "--help", cwd=tmp_path, env=env)
        assert (
            _run(hookstream, "--version", cwd=tmp_path, env=env)
            .strip()
            .endswith(f"version {VERSION}")
        )
