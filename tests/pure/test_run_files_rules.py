"""The rules of the run-directory file seam, checked the same way on the local file system
and on the in-memory fake that tests above the seam use (the SSH implementations are held to
them against the sandbox in tests/slurm/test_backend_contract.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.backends.fake import MemoryFiles
from nsml_hpc.backends.files import LocalFiles, RunFiles
from nsml_hpc.errors import BackendError


@pytest.fixture(params=["local", "memory"])
def seam(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RunFiles, str]]:
    """The files and a folder in them to work in."""
    if request.param == "local":
        yield LocalFiles("here"), str(tmp_path)
    else:
        files = MemoryFiles("here")
        files.make_dirs("/work")
        yield files, "/work"


def test_written_files_read_back_and_missing_ones_are_not_errors(
    seam: tuple[RunFiles, str],
) -> None:
    files, root = seam
    files.write_files(root, {"a/metrics.jsonl": b"one\ntwo\npart", "b.txt": b"b"})
    path, gone = f"{root}/a/metrics.jsonl", f"{root}/gone"
    assert files.exists(path) and not files.exists(gone)
    assert files.sizes([path, gone]) == {path: 12, gone: None}
    assert files.size(gone) is None
    assert files.read_from(path, 4, 4) == b"two\n"
    assert files.read_many([(path, 0, 3), (gone, 0, 3), (path, 8, 100)]) == [b"one", b"", b"part"]
    assert files.read_bytes(path, 3) == b"one\n"  # at most limit + 1: "too big" is visible
    assert files.read_bytes(gone, 3) is None
    assert files.read_from(gone, 0, 3) == b""
    stat = files.stat(path)
    assert stat is not None and (stat.size, stat.is_dir) == (12, False)
    assert files.stat(gone) is None
    listed = files.list_dir(root)
    assert listed is not None
    assert sorted((entry.name, entry.is_dir) for entry in listed) == [("a", True), ("b.txt", False)]
    assert files.list_dir(gone) is None
    assert files.list_dir(f"{root}/b.txt") is None


def test_write_bytes_replaces_a_file(seam: tuple[RunFiles, str]) -> None:
    files, root = seam
    files.write_bytes(f"{root}/session.json", b"old")
    with files.batch():  # each write is in place when its call returns, batch or not
        files.write_bytes(f"{root}/session.json", b"new")
        assert files.read_bytes(f"{root}/session.json", 100) == b"new"
    assert files.read_bytes(f"{root}/session.json", 100) == b"new"
    listed = files.list_dir(root)
    assert listed is not None and [entry.name for entry in listed] == ["session.json"]


def test_errors_name_the_cluster_the_path_and_the_cause(seam: tuple[RunFiles, str]) -> None:
    files, root = seam
    files.write_bytes(f"{root}/file", b"")
    with pytest.raises(BackendError, match=r"cluster here: cannot create .*/file/sub: Not a dir"):
        files.make_dirs(f"{root}/file/sub")
    with pytest.raises(BackendError, match=r"cluster here: cannot write .*/missing/x"):
        files.write_bytes(f"{root}/missing/x", b"")


def test_rename_moves_a_tree_and_never_replaces(seam: tuple[RunFiles, str]) -> None:
    files, root = seam
    files.write_files(f"{root}/.3.tmp", {"code/train.py": b"x"})
    files.make_dirs(f"{root}/taken")
    with pytest.raises(BackendError, match="already exists"):
        files.rename(f"{root}/.3.tmp", f"{root}/taken")
    files.rename(f"{root}/.3.tmp", f"{root}/3")
    assert files.read_bytes(f"{root}/3/code/train.py", 10) == b"x"
    assert not files.exists(f"{root}/.3.tmp")


def test_remove_tree_deletes_only_a_folder_directly_inside(seam: tuple[RunFiles, str]) -> None:
    files, root = seam
    files.write_files(f"{root}/runs/3", {"metrics.jsonl": b"{}\n"})
    files.write_bytes(f"{root}/runs/note", b"")
    for path, inside in (
        (f"{root}/runs/3", root),  # not directly in it
        (f"{root}/runs/note", f"{root}/runs"),  # not a folder
        (f"{root}/runs", f"{root}/runs"),
    ):
        with pytest.raises(BackendError, match="refusing to delete"):
            files.remove_tree(path, inside=inside)
    files.remove_tree(f"{root}/runs/gone", inside=f"{root}/runs")
    files.remove_tree(f"{root}/runs/3", inside=f"{root}/runs")
    assert not files.exists(f"{root}/runs/3") and files.exists(f"{root}/runs/note")


def test_copy_out_copies_a_folder_to_a_new_local_one(
    seam: tuple[RunFiles, str], tmp_path: Path
) -> None:
    files, root = seam
    files.write_files(f"{root}/snapshots/best", {"model.pt": b"w", "sub/opt.pt": b"o"})
    destination = tmp_path / "pulled" / "best"
    files.copy_out(f"{root}/snapshots/best", destination)
    assert (destination / "model.pt").read_bytes() == b"w"
    assert (destination / "sub" / "opt.pt").read_bytes() == b"o"
    with pytest.raises(BackendError):
        files.copy_out(f"{root}/snapshots/best", destination)  # must not exist
    with pytest.raises(BackendError, match="is not a folder"):
        files.copy_out(f"{root}/snapshots/best/model.pt", tmp_path / "other")


def test_make_read_only_takes_write_permission_off_files_not_folders(
    seam: tuple[RunFiles, str],
) -> None:
    files, root = seam
    folder = f"{root}/version/data"
    files.write_files(folder, {"a.txt": b"a", "sub/b.txt": b"b"})
    files.make_read_only(folder)
    for name in ("a.txt", "sub/b.txt"):
        if isinstance(files, LocalFiles):
            assert Path(folder, name).stat().st_mode & 0o222 == 0
        assert files.read_bytes(f"{folder}/{name}", 10) is not None
    files.remove_tree(f"{root}/version", inside=root)  # folders stay writable: it can go
    assert files.stat(f"{root}/version") is None
    with pytest.raises(BackendError):
        files.make_read_only(f"{root}/gone")


def test_linked_files_read_back_the_source_and_get_their_folders(
    seam: tuple[RunFiles, str],
) -> None:
    files, root = seam
    files.write_files(root, {"shared/array-0.sbatch": b"#!/bin/bash\n"})
    source = f"{root}/shared/array-0.sbatch"
    files.link_files(f"{root}/7", {"job.sbatch": source, ".nsml/same.sbatch": source})
    assert files.read_bytes(f"{root}/7/job.sbatch", 100) == b"#!/bin/bash\n"
    assert files.read_bytes(f"{root}/7/.nsml/same.sbatch", 100) == b"#!/bin/bash\n"
    with pytest.raises(BackendError):
        files.link_files(f"{root}/8", {"job.sbatch": f"{root}/gone"})


def test_local_links_are_hard_links_and_a_copy_where_the_file_system_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    files = LocalFiles("here")
    source = tmp_path / "array-0.sbatch"
    source.write_bytes(b"#!/bin/bash\n")
    files.link_files(str(tmp_path / "1"), {"job.sbatch": str(source)})
    assert (tmp_path / "1" / "job.sbatch").samefile(source)

    def no_links(_source: object, _target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    files.link_files(str(tmp_path / "2"), {"sub/job.sbatch": str(source)})
    copied = tmp_path / "2" / "sub" / "job.sbatch"
    assert copied.read_bytes() == b"#!/bin/bash\n" and not copied.samefile(source)
