"""Which files of the user's project travel with a session (git's view, or .gitignore)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nsml_hpc.code.selection import CodeManifest, collect_code, copy_code
from nsml_hpc.errors import SpecError

MiB = 2**20
FILES = {
    "train.py": "print('train')\n",
    "model/net.py": "x = 1\n",
    "model/__pycache__/net.cpython-311.pyc": "compiled",
    "data/train.csv": "a,b\n",
    "sub/notes.log": "log in sub\n",
    "top.log": "log at top\n",
    "best.ckpt": "weights",
    "model/epoch1.ckpt": "weights",
    "runs/mnist/1/slurm-1.out": "output",
    ".nsmlignore": "*.ckpt\n",
    ".gitignore": "data/\n",
    "sub/.gitignore": "*.log\n",
}


def _write_tree(root: Path) -> None:
    for relative, text in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def no_outer_repo(tmp_path, monkeypatch):
    """Stop git from finding a repository above tmp_path."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return tmp_path


@pytest.fixture
def git_project(no_outer_repo):
    root = no_outer_repo / "project"
    root.mkdir()
    _write_tree(root)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "first")
    (root / "untracked.py").write_text("y = 2\n", encoding="utf-8")
    return root


@pytest.fixture
def plain_project(no_outer_repo):
    root = no_outer_repo / "plain"
    root.mkdir()
    _write_tree(root)
    (root / ".git").mkdir()  # a stray folder named .git, not a repository
    (root / ".git" / "config").write_text("junk", encoding="utf-8")
    return root


def _names(manifest: CodeManifest) -> set[str]:
    return {item.relative for item in manifest.files}


def test_git_snapshot_holds_tracked_and_untracked_files_but_not_ignored_ones(git_project):
    manifest = collect_code(git_project, max_bytes=MiB)
    assert _names(manifest) == {
        ".gitignore",
        ".nsmlignore",
        "sub/.gitignore",
        "train.py",
        "model/net.py",
        "top.log",
        "runs/mnist/1/slurm-1.out",
        "untracked.py",
    }


def test_git_snapshot_records_the_commit_and_that_the_tree_is_dirty(git_project):
    manifest = collect_code(git_project, max_bytes=MiB)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=git_project, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert manifest.git_commit == head
    assert manifest.git_dirty is True


def test_nested_gitignore_applies_only_below_its_folder(git_project):
    names = _names(collect_code(git_project, max_bytes=MiB))
    assert "sub/notes.log" not in names
    assert "top.log" in names


def test_plain_folder_reads_its_top_gitignore(plain_project):
    manifest = collect_code(plain_project, max_bytes=MiB)
    names = _names(manifest)
    assert "data/train.csv" not in names
    assert {"train.py", "model/net.py", "top.log", "runs/mnist/1/slurm-1.out"} <= names
    assert manifest.git_commit is None
    assert manifest.git_dirty is None


@pytest.mark.parametrize("project", ["git_project", "plain_project"])
def test_nsmlignore_removes_more_files(project, request):
    names = _names(collect_code(request.getfixturevalue(project), max_bytes=MiB))
    assert not any(name.endswith(".ckpt") for name in names)


@pytest.mark.parametrize("project", ["git_project", "plain_project"])
def test_git_metadata_and_bytecode_are_never_copied(project, request):
    names = _names(collect_code(request.getfixturevalue(project), max_bytes=MiB))
    assert not any(name.startswith(".git/") or "__pycache__" in name for name in names)
    assert not any(name.endswith(".pyc") for name in names)


@pytest.mark.parametrize("project", ["git_project", "plain_project"])
def test_excluded_folder_inside_the_root_is_dropped(project, request):
    root = request.getfixturevalue(project)
    names = _names(collect_code(root, max_bytes=MiB, exclude=[root / "runs"]))
    assert not any(name.startswith("runs/") for name in names)
    assert "train.py" in names


def test_exclude_outside_the_root_changes_nothing(git_project, tmp_path):
    assert (
        collect_code(git_project, MiB, exclude=[tmp_path / "elsewhere"]).files
        == collect_code(git_project, MiB).files
    )


@pytest.mark.parametrize("project", ["git_project", "plain_project"])
def test_size_guard_refuses_a_huge_snapshot_naming_the_largest_files(project, request):
    root = request.getfixturevalue(project)
    (root / "big.bin").write_bytes(b"\0" * (3 * MiB))
    (root / "model" / "medium.bin").write_bytes(b"\0" * (2 * MiB))
    with pytest.raises(SpecError) as caught:
        collect_code(root, max_bytes=4 * MiB)
    message = str(caught.value)
    assert "big.bin (3.0 MiB)" in message
    assert "model/medium.bin (2.0 MiB)" in message
    assert message.index("big.bin") < message.index("medium.bin")
    assert ".nsmlignore" in message


def test_size_guard_counts_only_files_that_would_be_copied(git_project):
    (git_project / "huge.ckpt").write_bytes(b"\0" * (2 * MiB))
    manifest = collect_code(git_project, max_bytes=MiB)
    assert manifest.total_bytes < MiB


def test_manifest_sizes_add_up(git_project):
    manifest = collect_code(git_project, max_bytes=MiB)
    assert manifest.total_bytes == sum(
        (git_project / f.relative).stat().st_size for f in manifest.files
    )


def test_copy_reproduces_the_manifest_files(git_project, tmp_path):
    manifest = collect_code(git_project, max_bytes=MiB)
    destination = tmp_path / "copy"
    copy_code(manifest, destination)
    copied = {p.relative_to(destination).as_posix() for p in destination.rglob("*") if p.is_file()}
    assert copied == _names(manifest)
    assert (destination / "model" / "net.py").read_text(encoding="utf-8") == "x = 1\n"


def test_deleted_tracked_file_is_skipped(git_project):
    (git_project / "model" / "net.py").unlink()
    assert "model/net.py" not in _names(collect_code(git_project, max_bytes=MiB))


def test_subfolder_of_a_repository_is_snapshotted_relative_to_itself(git_project):
    names = _names(collect_code(git_project / "model", max_bytes=MiB))
    assert "net.py" in names
    assert not any(name.startswith(("model/", "../")) for name in names)
    assert "train.py" not in names
