"""Session names, as users type them (pure: the catalog's modules and its SQLite fast path,
:mod:`nsml_hpc.catalog.quickread`, share them). A session is ``project/N`` to its owner;
``owner/project/N`` names anyone's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nsml_hpc.errors import SpecError
from nsml_hpc.job.text import printable

OWNER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")


def session_name(project: str, number: int) -> str:
    """The owner's own name of a session: ``project/N``."""
    return f"{project}/{number}"


def full_name(record: Any) -> str:
    """``owner/project/N``: unambiguous in any catalog."""
    return f"{record.owner}/{record.name}"


@dataclass(frozen=True)
class SessionRef:
    """A session as a user names it: ``project/N`` or ``owner/project/N``."""

    owner: str | None
    project: str
    number: int

    @property
    def text(self) -> str:
        short = session_name(self.project, self.number)
        return f"{self.owner}/{short}" if self.owner else short


def parse_session_ref(name: str) -> SessionRef:
    """``project/N`` or ``owner/project/N`` (projects never hold a ``/``)."""
    parts = name.split("/")
    if len(parts) in (2, 3) and parts[-1].isdigit() and parts[-1].isascii() and all(parts):
        owner = parts[0] if len(parts) == 3 else None
        if owner is None or OWNER_NAME.fullmatch(owner):
            return SessionRef(owner, parts[-2], int(parts[-1]))
    raise SpecError(
        f"a session is named PROJECT/NUMBER or USER/PROJECT/NUMBER (e.g. mnist/3, alice/mnist/3), "
        f"got {printable(name)!r}"
    )
