"""Node-local copies of a dataset made by the job wrapper (single node, pure file work):
where scratch is, the copy checked against the manifest, and cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsml_hpc.job.staging import StagingError, scratch_root, stage, unstage


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    version = tmp_path / "datasets" / "mnist" / "1"
    (version / "data" / "sub").mkdir(parents=True)
    (version / "data" / "a.txt").write_text("hello")
    (version / "data" / "sub" / "b.bin").write_bytes(b"\0" * 10)
    files = {"a.txt": [5, 0, 0o444, "x"], "sub/b.bin": [10, 0, 0o444, "y"]}
    (version / "manifest.json").write_text(json.dumps({"name": "mnist", "files": files}))
    for path in (version / "data").rglob("*"):
        if path.is_file():
            path.chmod(0o444)
    return version / "data"


def test_scratch_is_slurm_tmpdir_then_tmpdir(tmp_path: Path) -> None:
    slurm, tmp = tmp_path / "slurm", tmp_path / "tmp"
    slurm.mkdir()
    tmp.mkdir()
    assert scratch_root({"SLURM_TMPDIR": str(slurm), "TMPDIR": str(tmp)}) == slurm
    assert scratch_root({"SLURM_TMPDIR": str(tmp_path / "gone"), "TMPDIR": str(tmp)}) == tmp


def test_a_dataset_is_copied_checked_and_removed(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.delenv("SLURM_TMPDIR", raising=False)
    staged = stage(dataset, "mnist-1", "42")
    assert staged.path == scratch / "nsml-hpc-data-42" / "mnist-1"
    assert (staged.path / "sub" / "b.bin").read_bytes() == b"\0" * 10
    assert (staged.files, staged.bytes, staged.method) == (2, 15, "copy")
    unstage(staged)
    assert list(scratch.iterdir()) == []


def test_a_copy_that_does_not_match_the_manifest_is_refused(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    manifest = dataset.parent / "manifest.json"
    document = json.loads(manifest.read_text())
    document["files"]["a.txt"][0] = 6
    manifest.write_text(json.dumps(document))
    with pytest.raises(StagingError, match=r"a\.txt has 5 bytes"):
        stage(dataset, "mnist-1", "43")
    with pytest.raises(StagingError, match="not there"):
        stage(tmp_path / "missing", "x", "44")
