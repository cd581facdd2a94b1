"""The layout is the architecture: which package may import which.

    hookstream.core         imports nothing of hookstream's outside itself
    ingest, streams, sinks  the services: the core only
    sandbox                 plays Intercom: the core only
    ops                     operator tools: the core, and the ingest's signature check and the
                            sandbox's signing that its commands drive, and the worker's route
                            table and dedup table that `contract asyncapi` describes
    devtools                dev mode and the local broker: anything but bench and tests
    hookstream.cli          the entrypoint: loads the others by name, lazily

Nothing under hookstream imports bench or tests, bench does not import tests, and nobody
imports the top-level folders (`ingest`, ...) by their own name: they are installed, and
imported, as `hookstream.ingest`, ...
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookstream.core.errors import HookstreamError
from hookstream.ingest.errors import IngestError
from hookstream.sandbox.errors import SandboxError
from hookstream.sinks.errors import SinkError
from hookstream.streams.errors import StreamsError

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("ingest", "streams", "sinks", "sandbox")

ALLOWED: dict[str, set[str]] = {
    "hookstream.core": {"hookstream.core"},
    "hookstream.ingest": {"hookstream.core"},
    "hookstream.streams": {"hookstream.core"},
    "hookstream.sinks": {"hookstream.core"},
    "hookstream.sandbox": {"hookstream.core"},
    "hookstream.ops": {
        "hookstream.core",
        "hookstream.ingest",
        "hookstream.sandbox",
        "hookstream.streams",
    },
    "hookstream.devtools": {
        "hookstream.core",
        "hookstream.ingest",
        "hookstream.streams",
        "hookstream.sinks",
        "hookstream.sandbox",
        "hookstream.ops",
    },
    "hookstream.cli": {"hookstream.core"},
    "hookstream": set(),
    "bench": {"hookstream.*"},
    "tests": {"hookstream.*", "bench"},
}


def _package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "hookstream":
        return parts[0]
    return ".".join(parts[:2]) if len(parts) > 1 else "hookstream"


def _source_files() -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) for every module of hookstream, bench and tests."""
    for top, folder in [("hookstream", ROOT / "hookstream"), ("bench", ROOT / "bench")]:
        yield from _walk(top, folder)
    for name in SERVICES:
        yield from _walk(f"hookstream.{name}", ROOT / name)
    yield from _walk("tests", ROOT / "tests")


def _walk(top: str, folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*.py")):
        relative = path.relative_to(folder).with_suffix("")
        if top == "hookstream" and relative.parts[0] in SERVICES:
            continue  # the symlinks to the service folders, walked under their own names
        parts = [p for p in relative.parts if p != "__init__"]
        yield ".".join([top, *parts]), path


def _imports(module: str, path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield node.lineno, f"{base}.{node.module}" if node.module else base
            elif node.module:
                yield node.lineno, node.module
                for alias in node.names:  # `from hookstream import sinks`
                    if node.module == "hookstream":
                        yield node.lineno, f"hookstream.{alias.name}"


def _ours(imported: str) -> bool:
    top = imported.split(".", maxsplit=1)[0]
    return top in {"hookstream", "bench", "tests", *SERVICES}


def _allowed(source_package: str, imported: str) -> bool:
    target = _package_of(imported)
    if target == source_package:
        return True
    rules = ALLOWED[source_package]
    if "hookstream.*" in rules and target.startswith("hookstream"):
        return True
    return target in rules or (imported == "hookstream" and source_package != "hookstream")


def test_every_import_between_packages_follows_the_rules() -> None:
    broken: list[str] = []
    for module, path in _source_files():
        source_package = _package_of(module)
        for line, imported in _imports(module, path):
            if not _ours(imported):
                continue
            if imported.split(".")[0] in SERVICES:
                broken.append(f"{path}:{line} imports {imported}: write hookstream.{imported}")
            elif not _allowed(source_package, imported):
                broken.append(f"{path}:{line}: {source_package} may not import {imported}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("source", "imported", "allowed"),
    [
        ("hookstream.ingest", "hookstream.core.settings", True),
        ("hookstream.ingest", "hookstream.ops.tail", False),
        ("hookstream.streams", "hookstream.devtools.localkafka", False),
        ("hookstream.sinks", "hookstream.ingest.spool", False),
        ("hookstream.core", "hookstream.streams.app", False),
        ("hookstream.ops", "hookstream.ingest.signature", True),
        ("hookstream.devtools", "hookstream.streams.app", True),
        ("hookstream.devtools", "bench.harness", False),
        ("bench", "tests.support.kafka", False),
        ("tests", "bench.report", True),
    ],
)
def test_the_rules_themselves(source: str, imported: str, allowed: bool) -> None:
    assert _allowed(source, imported) is allowed


def test_the_walk_sees_every_package() -> None:
    packages = {_package_of(module) for module, _path in _source_files()}
    assert set(ALLOWED) <= packages


def test_every_package_error_root_derives_from_hookstream_error() -> None:
    for root in (IngestError, StreamsError, SinkError, SandboxError):
        assert issubclass(root, HookstreamError), root
