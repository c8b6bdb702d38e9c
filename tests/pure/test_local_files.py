"""Run-directory file access on this machine (the local and pyslurm backends' RunFiles)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.code.selection import CodeFile
from nsml_hpc.code.upload import local_files
from nsml_hpc.errors import BackendError
from nsml_hpc.submit.rundir import looks_like_run_dir, remove_run_dir


@pytest.fixture
def files() -> LocalFiles:
    return LocalFiles("here")


def test_write_bytes_replaces_atomically_and_keeps_the_usual_mode(
    files: LocalFiles, tmp_path: Path
) -> None:
    target = tmp_path / "session.json"
    files.write_bytes(str(target), b"old")
    files.write_bytes(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert [p.name for p in tmp_path.iterdir()] == ["session.json"]  # no temp left


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_rename_never_replaces_an_existing_folder(files: LocalFiles, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()  # even an empty one, which os.rename would replace
    with pytest.raises(BackendError, match="already exists"):
        files.rename(str(tmp_path / "src"), str(tmp_path / "dst"))


def test_errors_name_the_cluster_the_path_and_the_cause(files: LocalFiles, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(
        BackendError, match=r"cluster here: cannot create .*/file/sub: Not a directory"
    ):
        files.make_dirs(str(blocker / "sub"))


def test_remove_tree_refuses_a_symbolic_link_and_ignores_what_is_gone(
    files: LocalFiles, tmp_path: Path
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(BackendError, match="refusing to delete"):
        files.remove_tree(str(tmp_path / "link"), inside=str(tmp_path))
    files.remove_tree(str(tmp_path / "missing"), inside=str(tmp_path))
    assert (tmp_path / "real").is_dir()


def test_only_folders_shaped_like_run_directories_are_removed(
    files: LocalFiles, tmp_path: Path
) -> None:
    for name in ("3", ".4.tmp-12-ab", "precious"):
        (tmp_path / name).mkdir()
    assert remove_run_dir(files, str(tmp_path / "3"))
    assert remove_run_dir(files, str(tmp_path / ".4.tmp-12-ab"))
    assert not remove_run_dir(files, str(tmp_path / "precious"))
    assert [p.name for p in tmp_path.iterdir()] == ["precious"]
    assert not looks_like_run_dir("/runs/alice/p/.hidden")


def test_sizes_and_reads_of_missing_files_are_not_errors(files: LocalFiles, tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(b"one\ntwo\npart")
    paths = [str(tmp_path / "m"), str(tmp_path / "gone")]
    assert files.sizes(paths) == {paths[0]: 12, paths[1]: None}
    assert files.read_from(paths[0], 4, 100) == b"two\npart"
    assert files.read_from(paths[1], 0, 10) == b""
    assert files.list_dir(str(tmp_path / "gone")) is None
    assert files.stat(paths[1]) is None
    assert files.read_bytes(paths[1], 10) is None


def test_a_local_upload_copies_the_snapshot_and_reports_progress(
    files: LocalFiles, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "a.py").write_text("a" * 10)
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o755)
    snapshot = local_files(source, [CodeFile("pkg/a.py", 10), CodeFile("run.sh", 10)])
    seen: list[tuple[int, int]] = []
    stats = files.upload_tree(
        source, snapshot, str(tmp_path / "dest"), progress=lambda s, t: seen.append((s, t))
    )
    assert (stats.sent, stats.bytes_sent) == (2, 20)
    assert seen[-1] == (20, 20)
    assert (tmp_path / "dest" / "pkg" / "a.py").read_text() == "a" * 10
    assert os.access(tmp_path / "dest" / "run.sh", os.X_OK)
    assert set(stats.manifest) == {"pkg/a.py", "run.sh"}
