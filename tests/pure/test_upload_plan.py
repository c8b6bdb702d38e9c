"""Planning a code upload: keep only what is provably unchanged on the cluster, send the rest."""

from __future__ import annotations

from pathlib import Path

from nsml_hpc.code.selection import CodeFile
from nsml_hpc.code.upload import (
    LocalFile,
    Recorded,
    RemoteFile,
    local_files,
    manifest_after,
    manifest_document,
    parse_manifest,
    plan_upload,
    seed_candidates,
)


def _local(
    name: str, size: int = 10, mtime: int = 100, mode: int = 0o644, sha: str = "s"
) -> LocalFile:
    return LocalFile(name, size, mtime, mode, sha)


RECORDED = {
    "a.py": Recorded(10, 50, 0o644, "s"),
    "pkg/b.py": Recorded(10, 50, 0o644, "s"),
    "run.sh": Recorded(10, 50, 0o644, "s"),
}


def test_seed_candidates_are_files_with_the_same_content_and_exec_bits():
    local = [
        _local("a.py"),  # same hash and size: copy it on the cluster
        _local("pkg/b.py", sha="other"),  # edited
        _local("run.sh", mode=0o755),  # made executable
        _local("new.py"),  # not in the seed
    ]
    assert seed_candidates(local, RECORDED) == ["a.py"]


def test_a_copied_file_is_kept_only_if_untouched_on_the_cluster():
    local = [_local("a.py"), _local("pkg/b.py"), _local("new.py")]
    present = {
        "a.py": RemoteFile("a.py", 10, 50),  # as recorded
        "pkg/b.py": RemoteFile("pkg/b.py", 10, 51),  # touched since: send again
        "stale.txt": RemoteFile("stale.txt", 1, 1),
    }
    plan = plan_upload(local, present, {"pkg", "old"}, RECORDED)
    assert [item.relative for item in plan.keep] == ["a.py"]
    assert [item.relative for item in plan.send] == ["pkg/b.py", "new.py"]
    assert plan.remove == ["stale.txt"]
    assert plan.directories == []  # pkg exists already
    assert plan.bytes_to_send == 20


def test_without_a_seed_everything_is_sent_and_folders_are_made_parents_first():
    local = [_local("x/y/z.py"), _local("x/w.py"), _local("top.py")]
    plan = plan_upload(local, {}, set(), {})
    assert [item.relative for item in plan.send] == ["x/y/z.py", "x/w.py", "top.py"]
    assert plan.directories == ["x", "x/y"]


def test_the_new_manifest_records_kept_files_as_they_are_and_sent_files_as_sent():
    local = [_local("a.py"), _local("new.py", size=3, mtime=7, mode=0o755, sha="n")]
    plan = plan_upload(local, {"a.py": RemoteFile("a.py", 10, 50)}, set(), RECORDED)
    manifest = manifest_after(plan, RECORDED)
    assert manifest == {"a.py": Recorded(10, 50, 0o644, "s"), "new.py": Recorded(3, 7, 0o755, "n")}
    assert parse_manifest(manifest_document(manifest)) == manifest


def test_a_malformed_manifest_reads_as_empty_so_everything_is_sent():
    malformed: tuple[object, ...] = (None, [], {"version": 2}, {"version": 1, "files": []}, "x")
    for data in malformed:
        assert parse_manifest(data) == {}
    partly = {
        "version": 1,
        "files": {"ok": [1, 2, 420, "h"], "bad": [1, "2", 3, "h"], "short": [1]},
    }
    assert list(parse_manifest(partly)) == ["ok"]


def test_local_files_are_hashed_as_they_are_now(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("print(1)\n")
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "tool").chmod(0o750)
    found = local_files(tmp_path, [CodeFile("a.py", 0), CodeFile("tool", 0)])
    assert [(f.relative, f.size, f.mode & 0o111) for f in found] == [
        ("a.py", 9, 0),
        ("tool", 10, 0o110),
    ]
    assert found[0].sha256 == "cc42155088fca5730758db72b2a5bca33112a941dfaa2d43098ec422ce4ea213"
