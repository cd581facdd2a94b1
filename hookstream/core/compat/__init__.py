"""The one place hookstream touches private names of the libraries it builds on.

`compat.faust` holds those of faust-streaming and mode, `compat.aiokafka` those of aiokafka.
Each lists, in its docstring, every private name it reaches (why, the upstream issue, what
would let it go) and, in `PRIVATE_NAMES` and `COPIED`, what `tests/compat` checks against
the installed libraries: that each name still exists with the expected parameters, and that
each upstream method hookstream copied still has the source it was copied from.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Copied", "Private"]


@dataclass(frozen=True)
class Private:
    """A private name of a library: `owner` is `module:Qualified.Name` (a class or module),
    `params` the expected parameter list of a method ("self, tp"), None for an attribute."""

    owner: str
    name: str
    params: str | None = None


@dataclass(frozen=True)
class Copied:
    """An upstream method (`module:Qualified.name`) that hookstream copied or replaced,
    with the digest of its source when it was last read, and where the copy lives."""

    upstream: str
    sha256: str
    copy: str
