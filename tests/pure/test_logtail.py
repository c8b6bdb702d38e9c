"""Following Slurm output files by byte offsets."""

from __future__ import annotations

from pathlib import Path

from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.sessions.logtail import LogTail


def test_each_call_returns_only_what_was_appended(tmp_path: Path) -> None:
    first, second = tmp_path / "slurm-1.out", tmp_path / "slurm-2.out"
    first.write_bytes(b"one\n")
    tail = LogTail(LocalFiles())
    paths = [str(first), str(second)]
    assert tail.read_new(paths) == b"one\n"
    assert tail.read_new(paths) == b""
    with first.open("ab") as out:
        out.write(b"two\n")
    second.write_bytes(b"requeued\n")
    assert tail.read_new(paths) == b"two\nrequeued\n"


def test_a_huge_log_starts_at_a_line_near_its_end(tmp_path: Path) -> None:
    log = tmp_path / "slurm-1.out"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(10_000)))
    data = LogTail(LocalFiles(), initial_bytes=100).read_new([str(log)])
    note, _, rest = data.partition(b"\n")
    assert b"earlier bytes" in note
    assert rest.startswith(b"line ") and rest.endswith(b"line 9999\n")
    assert len(rest) <= 100


def test_a_truncated_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "slurm-1.out"
    log.write_bytes(b"a long first line\n")
    tail = LogTail(LocalFiles())
    tail.read_new([str(log)])
    log.write_bytes(b"new\n")
    assert tail.read_new([str(log)]) == b"new\n"
