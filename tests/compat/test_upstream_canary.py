"""The canary of the compatibility seam (`hookstream.core.compat`), without a broker.

It fails, naming what to re-read, when an installed faust-streaming, mode or aiokafka no
longer has a private name hookstream uses (or has it with other parameters), when an upstream
method hookstream copied no longer has the source it was copied from, and when a service
module reaches a private name of those libraries other than through the seam.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookstream.core.compat import Copied, Private
from hookstream.core.compat import aiokafka as aiokafka_compat
from hookstream.core.compat import faust as faust_compat

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "streams", "sinks", "sandbox")
LIBRARIES = ("faust", "mode", "aiokafka")
PRIVATE_NAMES = faust_compat.PRIVATE_NAMES + aiokafka_compat.PRIVATE_NAMES
COPIED = faust_compat.COPIED + aiokafka_compat.COPIED
SHIMS = (
    faust_compat.App,
    faust_compat.Worker,
    faust_compat.Consumer,
    faust_compat.Recovery,
    faust_compat.TableManager,
)


def resolve(dotted: str) -> Any:
    """The object `module:Qualified.name` names."""
    module_name, _, qualname = dotted.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = inspect.getattr_static(obj, part)
    return obj


def parameters(function: Any) -> str:
    """The parameter list of `function` as "self, tp, *, title=None" (no annotations)."""
    shown = []
    star_done = False
    for parameter in inspect.signature(function).parameters.values():
        kind = parameter.kind
        if kind is parameter.VAR_POSITIONAL:
            star_done = True
            shown.append(f"*{parameter.name}")
            continue
        if kind is parameter.VAR_KEYWORD:
            shown.append(f"**{parameter.name}")
            continue
        if kind is parameter.KEYWORD_ONLY and not star_done:
            star_done = True
            shown.append("*")
        default = "" if parameter.default is parameter.empty else f"={parameter.default!r}"
        shown.append(f"{parameter.name}{default}")
    return ", ".join(shown)


def source_digest(function: Any) -> str:
    """sha256 of `function`'s source as its syntax tree, without docstrings: a change of
    comments or layout keeps it, a change of code does not."""
    if isinstance(function, property):
        function = function.fget
    function = inspect.unwrap(getattr(function, "__func__", function))
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def _methods(cls: type) -> list[str]:
    """The names of the methods and properties `cls` defines itself (not the attributes
    that mode and abc set on every class, such as `logger` and `_abc_impl`)."""
    kinds = (property, classmethod, staticmethod)
    return [
        name
        for name, value in vars(cls).items()
        if inspect.isfunction(value) or isinstance(value, kinds)
    ]


def _has_attribute(owner: type, name: str) -> bool:
    """Whether instances of `owner` have `name`: a class attribute, an annotation, or an
    assignment `self.<name> = ` in the source of a class of its MRO."""
    for cls in owner.__mro__:
        if name in vars(cls) or name in getattr(cls, "__annotations__", {}):
            return True
        if cls.__module__.split(".")[0] in LIBRARIES:
            try:
                source = inspect.getsource(cls)
            except (OSError, TypeError):
                continue
            if f"self.{name} =" in source:
                return True
    return False


@pytest.mark.parametrize("private", PRIVATE_NAMES, ids=lambda p: f"{p.owner}.{p.name}")
def test_each_private_name_still_exists_with_its_parameters(private: Private) -> None:
    where = f"{private.owner}.{private.name}"
    hint = "re-read it upstream and update hookstream/core/compat (its table and PRIVATE_NAMES)"
    owner = resolve(private.owner)
    if private.params is None:
        assert _has_attribute(owner, private.name), f"{where} is gone: {hint}"
        return
    try:
        method = getattr(owner, private.name)
    except AttributeError:
        pytest.fail(f"{where} is gone: {hint}")
    found = parameters(method)
    assert found == private.params, f"{where} now takes ({found}), not ({private.params}): {hint}"


@pytest.mark.parametrize("copied", COPIED, ids=lambda c: c.upstream)
def test_each_copied_upstream_method_still_has_the_source_it_was_copied_from(
    copied: Copied,
) -> None:
    digest = source_digest(resolve(copied.upstream))
    assert digest == copied.sha256, (
        f"{copied.upstream} changed upstream: re-read it against its copy in {copied.copy}, "
        f"carry the change over (or drop the copy), then record sha256 {digest} in "
        "hookstream/core/compat"
    )


@pytest.mark.parametrize("shim", SHIMS, ids=lambda cls: cls.__name__)
def test_the_public_hooks_of_the_shims_are_not_names_upstream_has(shim: type) -> None:
    upstream = shim.__mro__[1]
    taken = sorted(
        name
        for name in _methods(shim)
        if not name.startswith("_") and name != "recovery" and hasattr(upstream, name)
    )
    assert not taken, (
        f"{upstream.__module__}.{upstream.__qualname__} now has {taken}: the hooks of "
        f"hookstream.core.compat.faust.{shim.__name__} would override them; rename the hooks"
    )


def _service_files() -> Iterator[Path]:
    for name in SERVICES:
        yield from sorted((ROOT / name).rglob("*.py"))


def test_no_service_module_names_a_private_name_of_the_libraries_but_through_the_seam() -> None:
    names = {private.name for private in PRIVATE_NAMES}
    found = []
    for path in _service_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            name = None
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = node.name
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            if name in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not found, "use hookstream.core.compat for:\n" + "\n".join(found)


def _imports_a_library(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(
            name.split(".")[0] in LIBRARIES or name.startswith("hookstream.core.compat")
            for name in names
        ):
            return True
    return False


def _service_classes() -> Iterator[type]:
    """The classes of the service modules that import a library or the seam (only those can
    subclass a class of a library)."""
    for path in _service_files():
        if not _imports_a_library(path):
            continue
        relative = path.relative_to(ROOT).with_suffix("")
        parts = [part for part in relative.parts if part != "__init__"]
        module = importlib.import_module(".".join(["hookstream", *parts]))
        for value in vars(module).values():
            if inspect.isclass(value) and value.__module__ == module.__name__:
                yield value


def test_no_service_class_overrides_a_private_method_of_the_libraries() -> None:
    found = []
    for cls in _service_classes():
        upstream = [base for base in cls.__mro__ if base.__module__.split(".")[0] in LIBRARIES]
        for name in _methods(cls):
            if name.startswith("_") and not name.startswith("__"):
                found += [
                    f"{cls.__module__}.{cls.__qualname__}.{name} overrides "
                    f"{base.__module__}.{base.__qualname__}.{name}"
                    for base in upstream[:1]
                    if hasattr(base, name)
                ]
    assert not found, "override the public hook of hookstream.core.compat:\n" + "\n".join(found)
