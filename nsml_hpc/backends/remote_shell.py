"""Command lines for a remote login shell, built from argv with every word quoted.

An SSH server hands the command line to the account's login shell, so each word is
``shlex.quote``d (single quotes, which sh, bash, zsh, fish and csh all read the same way) and
nothing a user typed is ever interpreted. Scripts that need shell syntax run under an explicit
``sh -c`` with their values passed as positional arguments, never pasted into the script.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Mapping, Sequence

# What a command's environment should be: a value to set, or None to remove the variable.
EnvChanges = Mapping[str, str | None]


def remote_command(
    argv: list[str], remote_path: str | None = None, env: EnvChanges | None = None
) -> str:
    """``sbatch --parsable /r/job.sbatch``; with ``remote_path``, run with that PATH; with
    ``env``, under ``env -u NAME ... NAME=VALUE ...`` (the login shell's own environment, its
    time zone included, is kept for everything else)."""
    changes = dict(env or {})
    if remote_path:
        changes["PATH"] = remote_path
    if not changes:
        return shlex.join(argv)
    unset = [word for name, value in changes.items() if value is None for word in ("-u", name)]
    assign = [f"{name}={value}" for name, value in changes.items() if value is not None]
    return shlex.join(["env", *unset, *assign, *argv])


# Copy the files named on stdin (NUL-separated, relative to $1) into $2, keeping their
# relative paths, mtimes and modes; a file that vanished from $1 is left out (tar warns).
COPY_LISTED_FILES = (
    'mkdir -p -- "$2" && cd -- "$1" && tar --null -T - -cf - | (cd -- "$2" && tar -xpf -)'
)


def sh_script(script: str, *args: str) -> str:
    """Run ``script`` under POSIX sh with ``args`` as ``$1``, ``$2``, ... (never interpolated)."""
    return shlex.join(["sh", "-c", script, "sh", *args])


# Sizes of many files in one command (GNU stat; a missing file is just not in the output).
SIZES = 'stat -L --printf "%s %n\\0" -- "$@" 2>/dev/null; exit 0'
# The bytes of many files from their offsets (tail seeks: only the new bytes are read), each
# followed by a random separator ($1) that the reader checks.
READ_MANY = (
    't=$1; shift; while [ "$#" -gt 0 ]; do '
    'tail -c +"$2" -- "$1" 2>/dev/null | head -c "$3"; printf %s "$t"; shift 3; done'
)


def sizes_command(paths: Sequence[str]) -> str:
    return sh_script(SIZES, *paths)


def parse_sizes(out: bytes, paths: Sequence[str]) -> dict[str, int | None]:
    found: dict[str, int | None] = dict.fromkeys(paths)
    for record in out.split(b"\0"):
        size, _, name = record.decode("utf-8", "surrogateescape").partition(" ")
        if name in found and size.isdigit():
            found[name] = int(size)
    return found


def read_many_command(requests: Sequence[tuple[str, int, int]]) -> tuple[str, bytes]:
    """The command line and the separator it will use."""
    token = secrets.token_hex(16)
    args = [str(part) for path, offset, limit in requests for part in (path, offset + 1, limit)]
    return sh_script(READ_MANY, token, *args), token.encode()


def split_read_many(
    out: bytes, token: bytes, requests: Sequence[tuple[str, int, int]]
) -> list[bytes] | None:
    """The chunks, or None when they do not line up (then read the files one by one)."""
    chunks = out.split(token)
    if len(chunks) != len(requests) + 1 or chunks[-1] != b"":
        return None
    result = chunks[:-1]
    if any(len(chunk) > limit for chunk, (_, _, limit) in zip(result, requests, strict=True)):
        return None
    return result


# Delete folder $1 if it is a real folder (not a link) whose real parent is the real $2;
# exit 0 when it is already gone, 2 (with a line on stderr) when it is refused.
REMOVE_TREE = (
    '[ -e "$1" ] || [ -L "$1" ] || exit 0; '
    'if [ -L "$1" ] || [ ! -d "$1" ]; then echo "not a folder" >&2; exit 2; fi; '
    'p="$(cd -P -- "$1/.." && pwd -P)" && i="$(cd -P -- "$2" && pwd -P)" || exit 1; '
    'if [ "$p" != "$i" ]; then echo "not directly in $2" >&2; exit 2; fi; '
    'rm -rf -- "$1"'
)
REFUSED = 2

# Take the write permission off every regular file under folder $1 (folders keep theirs).
READ_ONLY = 'find "$1" -type f -exec chmod a-w -- {} +'


def read_only_command(path: str) -> str:
    return sh_script(READ_ONLY, path)


def remove_tree_command(path: str, inside: str) -> str:
    return sh_script(REMOVE_TREE, path, inside)
