"""Following a session (``logs -f``, ``submit --follow``): its output on stdout, and on
stderr what it is waiting for whenever that changes, so following a pending session is
never silent. Ctrl-C stops following, not the session, and says so."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, BinaryIO, TextIO

if TYPE_CHECKING:
    from nsml_hpc.sessions.actions import StateNote
    from nsml_hpc.workspace import Workspace

INTERRUPTED = 130


def note_line(note: StateNote) -> str:
    """One stderr line for a state note."""
    jobs = f"job {note.job_ids[-1]}" if note.job_ids else "no job yet"
    if note.problem:
        return f"nsml-hpc: {note.session}: {note.text} (retrying)"
    if note.state in ("PENDING", "SUBMITTED", "REQUEUED"):
        waiting = f": waiting for {note.reason}" if note.reason else ""
        return f"nsml-hpc: {note.session} is {note.text} ({jobs}){waiting}"
    return f"nsml-hpc: {note.session} is {note.text} ({jobs})"


class Follower:
    """Writes what :meth:`Workspace.follow` yields; remembers the last state for Ctrl-C."""

    def __init__(self, name: str, out: BinaryIO | None = None, err: TextIO | None = None) -> None:
        self.name = name
        self.out = out or sys.stdout.buffer
        self.err = err or sys.stderr
        self.last: StateNote | None = None

    def run(self, workspace: Workspace) -> None:
        for item in workspace.follow(self.name):
            if isinstance(item, bytes):
                self.out.write(item)
                self.out.flush()
                continue
            if not item.problem:
                self.last = item
            self.out.flush()
            print(note_line(item), file=self.err, flush=True)

    def interrupted(self) -> int:
        """What Ctrl-C prints: the session goes on, and how to follow it again."""
        state = (
            f" ({self.last.text}, job {self.last.job_ids[-1]})"
            if self.last and self.last.job_ids
            else ""
        )
        print(
            f"\nnsml-hpc: stopped following {self.name}; the session keeps running{state}. "
            f"Follow it again: nsml-hpc logs -f {self.name}  (stop it: nsml-hpc stop {self.name})",
            file=self.err,
            flush=True,
        )
        return INTERRUPTED
