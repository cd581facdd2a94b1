"""The lock: uv.lock agrees with pyproject.toml, the requirements files that the installs use
are exactly its exports, every dependency has hashes, and nothing is declared that nothing
imports. Offline: uv checks the lock against its own metadata."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.deploy._manifests import REPO

EXPORTS = {
    "requirements.txt": ["--no-dev"],
    "requirements-dev.txt": ["--no-dev", "--extra", "dev"],
    "requirements-build.txt": ["--only-group", "image-build"],
}
# Declared for what they do at run time without an import of ours.
NOT_IMPORTED = {
    "sniffio": "httpcore imports it on every request; missing, that is a slow failed import",
    "rocksdict": "faust's rocksdb:// table store imports it",
}
SOURCES = ("hookstream", "ingest", "streams", "sinks", "sandbox")


def _uv(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    uv = Path(sys.executable).parent / "uv"
    command = str(uv) if uv.is_file() else shutil.which("uv")
    if command is None:
        pytest.fail("uv is not installed: run scripts/bootstrap")
    return subprocess.run(
        [command, *args, "--offline"], cwd=cwd, capture_output=True, text=True, check=False
    )


def _pyproject() -> dict[str, object]:
    loaded: dict[str, object] = tomllib.loads((REPO / "pyproject.toml").read_text())
    return loaded


def test_the_lock_is_up_to_date_with_pyproject() -> None:
    result = _uv("lock", "--check")
    assert result.returncode == 0, result.stderr + "\nrun scripts/lock"


def test_the_lock_check_fails_when_pyproject_gains_a_dependency(tmp_path: Path) -> None:
    # The control for the check above.
    for name in ("pyproject.toml", "uv.lock", "README.md", "LICENSE"):
        shutil.copy(REPO / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"click>=8.1",', '"click>=8.1", "attrs",'))
    result = _uv("lock", "--check", cwd=tmp_path)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_requirements_files_are_the_locks_exports(name: str, tmp_path: Path) -> None:
    exported = tmp_path / name
    result = _uv(
        "export", "--frozen", "--no-emit-project", "--format", "requirements-txt", "--quiet",
        *EXPORTS[name], "-o", str(exported),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    def body(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if not line.startswith("#")]

    assert body(REPO / name) == body(exported), f"{name} is stale: run scripts/lock"


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_every_locked_requirement_is_pinned_with_a_hash(name: str) -> None:
    text = (REPO / name).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert len(entries) > 1
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9._-]+==\S+", entry), entry
        assert "--hash=sha256:" in entry, entry


def _imported_top_level_names() -> set[str]:
    names = set()
    for folder in SOURCES:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


def _import_names(distribution: str) -> set[str]:
    normal = re.sub(r"[-_.]+", "-", distribution).lower()
    return {
        module
        for module, owners in packages_distributions().items()
        if normal in {re.sub(r"[-_.]+", "-", owner).lower() for owner in owners}
    }


def test_every_declared_dependency_is_imported() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    imported = _imported_top_level_names()
    unused = []
    for spec in project["dependencies"]:
        name = Requirement(spec).name
        provides = _import_names(name)
        assert provides, f"{name} is not installed"
        if not provides & imported and name not in NOT_IMPORTED:
            unused.append(name)
    assert unused == [], "declared but never imported: drop them or say why in NOT_IMPORTED"


def test_the_unused_dependency_check_notices_one() -> None:
    # The control: a distribution that is installed but that the sources never import.
    assert _import_names("hypothesis")
    assert not _import_names("hypothesis") & _imported_top_level_names()
    assert "aiolimiter" not in str(_pyproject()["project"])
