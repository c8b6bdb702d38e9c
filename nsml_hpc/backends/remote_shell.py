"""Command lines for a remote login shell, built from argv with every word quoted.

An SSH server hands the command line to the account's login shell, so each word is
``shlex.quote``d (single quotes, which sh, bash, zsh, fish and csh all read the same way) and
nothing a user typed is ever interpreted. Scripts that need shell syntax run under an explicit
``sh -c`` with their values passed as positional arguments, never pasted into the script.
"""

from __future__ import annotations

import shlex


def remote_command(argv: list[str], remote_path: str | None = None) -> str:
    """``sbatch --parsable /r/job.sbatch``; with ``remote_path``, run with that PATH."""
    words = ["env", f"PATH={remote_path}", *argv] if remote_path else list(argv)
    return shlex.join(words)


# Copy the files named on stdin (NUL-separated, relative to $1) into $2, keeping their
# relative paths, mtimes and modes; a file that vanished from $1 is left out (tar warns).
COPY_LISTED_FILES = (
    'mkdir -p -- "$2" && cd -- "$1" && tar --null -T - -cf - | (cd -- "$2" && tar -xpf -)'
)


def sh_script(script: str, *args: str) -> str:
    """Run ``script`` under POSIX sh with ``args`` as ``$1``, ``$2``, ... (never interpolated)."""
    return shlex.join(["sh", "-c", script, "sh", *args])
