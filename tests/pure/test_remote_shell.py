"""Command lines for a remote shell: hostile values stay single words, never code. Checked by
running the very command lines through a real POSIX shell (what sshd hands them to)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nsml_hpc.backends.remote_shell import (
    COPY_LISTED_FILES,
    parse_sizes,
    read_many_command,
    remote_command,
    sh_script,
    sizes_command,
    split_read_many,
)

HOSTILE = [
    "a'; echo PWNED; '",
    "a\n0",
    "$(echo PWNED)",
    "`echo PWNED`",
    "x; rm -rf /tmp/should-not-happen",
    '"quoted" \\ back',
    "--option-looking",
    "ünïcode ☃",
    "",
]


def _sh(command: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["sh", "-c", command], input=stdin, capture_output=True, timeout=30, check=False
    )


@pytest.mark.parametrize("value", HOSTILE)
def test_every_word_arrives_unchanged(value: str) -> None:
    done = _sh(remote_command(["printf", "%s|", value, "second"]))
    assert done.returncode == 0
    assert done.stdout.decode() == f"{value}|second|"


def test_remote_path_sets_path_for_the_command_only():
    done = _sh(remote_command(["sh", "-c", 'printf %s "$PATH"'], "/opt/slurm/bin:/usr/bin:/bin"))
    assert done.stdout == b"/opt/slurm/bin:/usr/bin:/bin"
    missing = _sh(remote_command(["sbatch-nowhere"], "/nonexistent"))
    assert missing.returncode == 127


@pytest.mark.parametrize("value", HOSTILE)
def test_script_arguments_are_positional_never_pasted(value: str) -> None:
    done = _sh(sh_script('printf "%s|" "$1" "$2"', value, "two"))
    assert done.stdout.decode() == f"{value}|two|"


def test_listed_files_are_copied_with_their_paths_and_others_are_not(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    (seed / "pkg").mkdir(parents=True)
    (seed / "pkg" / "a.py").write_text("a")
    (seed / "b.py").write_text("b")
    (seed / "output.bin").write_text("not listed")
    dest = tmp_path / "new" / "code"
    names = b"\0".join([b"pkg/a.py", b"b.py", b"vanished.py"]) + b"\0"
    _sh(sh_script(COPY_LISTED_FILES, str(seed), str(dest)), names)
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert copied == ["b.py", "pkg/a.py"]


def test_sizes_of_many_files_in_one_command(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"12345")
    (tmp_path / "b").write_bytes(b"")
    paths = [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "gone")]
    done = _sh(sizes_command(paths))
    assert done.returncode == 0
    assert parse_sizes(done.stdout, paths) == {paths[0]: 5, paths[1]: 0, paths[2]: None}


def test_many_files_are_read_from_their_offsets_in_one_command(tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(b"line0\nline1\npart")
    (tmp_path / "e").write_bytes(b"\x00binary\xff")
    requests = [
        (str(tmp_path / "m"), 6, 100),
        (str(tmp_path / "e"), 1, 3),
        (str(tmp_path / "gone"), 0, 10),
        (str(tmp_path / "m"), 17, 10),
    ]
    command, token = read_many_command(requests)
    done = _sh(command)
    assert split_read_many(done.stdout, token, requests) == [b"line1\npart", b"bin", b"", b""]


def test_an_answer_that_does_not_line_up_is_rejected():
    requests = [("a", 0, 4), ("b", 0, 4)]
    assert split_read_many(b"xxTOKyyTOK", b"TOK", requests) == [b"xx", b"yy"]
    assert split_read_many(b"xxTOKyy", b"TOK", requests) is None  # cut short
    assert split_read_many(b"xxxxxTOKyyTOK", b"TOK", requests) is None  # longer than asked
    assert split_read_many(b"xxTOKyyTOKzz", b"TOK", requests) is None
