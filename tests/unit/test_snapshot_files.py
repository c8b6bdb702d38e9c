"""Snapshots as run directories hold them: listing, pinning and guarded deletion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsml_hpc.errors import NotFoundError, SpecError
from nsml_hpc.snapshot_files import list_snapshots, remove_snapshot, set_pinned


def _snapshot(run_dir: Path, tag: str, **manifest: object) -> Path:
    folder = run_dir / "snapshots" / tag
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"x" * 100)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "alice" / "mnist" / "1"
    _snapshot(run, "ep2", step=2, metrics={"val_loss": 0.5, "note": "x"}, created_at=10.0)
    _snapshot(run, "ep1", step=1, files={"model.pt": 100}, pinned=True)
    _snapshot(run, "nostep")
    (run / "snapshots" / ".ep3.tmp-42").mkdir()  # being written: not listed
    (run / "snapshots" / "broken").mkdir()  # no manifest: not a snapshot
    return run


def test_listing_is_ordered_by_step_and_skips_incomplete_folders(run_dir: Path) -> None:
    found = list_snapshots(run_dir)
    assert [info.tag for info in found] == ["ep1", "ep2", "nostep"]
    ep1, ep2, nostep = found
    assert ep1.pinned and not ep2.pinned
    assert ep2.metrics == {"val_loss": 0.5, "note": None}
    assert (ep1.files, ep1.size_bytes) == (1, 100)
    assert (ep2.files, ep2.size_bytes) == (1, 100)  # counted from the folder
    assert nostep.step is None
    assert list_snapshots(run_dir.parent / "nope") == []


def test_pin_rewrites_the_manifest_and_keeps_its_content(run_dir: Path) -> None:
    info = set_pinned(run_dir, "ep2", True)
    assert info.pinned
    manifest = json.loads((run_dir / "snapshots" / "ep2" / "manifest.json").read_text())
    assert manifest["pinned"] is True and manifest["step"] == 2
    assert not set_pinned(run_dir, "ep2", False).pinned


def test_delete_removes_an_unpinned_snapshot_whole(run_dir: Path) -> None:
    removed = remove_snapshot(run_dir, "ep2")
    assert not removed.exists()
    assert [info.tag for info in list_snapshots(run_dir)] == ["ep1", "nostep"]
    assert not any(p.name.startswith(".deleting") for p in (run_dir / "snapshots").iterdir())


def test_a_pinned_snapshot_is_not_deleted(run_dir: Path) -> None:
    with pytest.raises(SpecError, match="pinned"):
        remove_snapshot(run_dir, "ep1")
    assert (run_dir / "snapshots" / "ep1" / "model.pt").exists()


@pytest.mark.parametrize("tag", ["../ep1", "..", ".ep3.tmp-42", "a/b", "", "x\ny"])
def test_tags_that_escape_or_are_hidden_are_refused(run_dir: Path, tag: str) -> None:
    with pytest.raises(SpecError):
        remove_snapshot(run_dir, tag)


def test_unknown_and_manifestless_snapshots_are_not_found(run_dir: Path) -> None:
    with pytest.raises(NotFoundError):
        remove_snapshot(run_dir, "ep9")
    with pytest.raises(NotFoundError):
        remove_snapshot(run_dir, "broken")
    assert (run_dir / "snapshots" / "broken").is_dir()


def test_a_symlinked_snapshot_is_refused(run_dir: Path, tmp_path: Path) -> None:
    outside = _snapshot(tmp_path / "elsewhere", "victim", step=1)
    (run_dir / "snapshots" / "link").symlink_to(outside)
    with pytest.raises(SpecError):
        remove_snapshot(run_dir, "link")
    assert outside.exists()
