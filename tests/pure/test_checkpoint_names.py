"""Checkpoint files recognised by their names (pure): Lightning's ModelCheckpoint names,
torch.save files, steps and epochs, metrics in names, and found tags."""

from __future__ import annotations

import pytest

from nsml_hpc.capture.checkpoints import found_tag, is_checkpoint, parse_checkpoint_name
from nsml_hpc.job.snapshot_format import is_found_tag, parse_selector


@pytest.mark.parametrize(
    ("name", "kind", "step", "epoch", "metrics"),
    [
        ("epoch=3-step=400.ckpt", "lightning", 400, 3, {"epoch": 3.0}),
        ("epoch=1-step=100-v1.ckpt", "lightning", 100, 1, {"epoch": 1.0}),
        ("last.ckpt", "lightning", None, None, {}),
        ("last-v2.ckpt", "lightning", None, None, {}),
        ("epoch=2-val_loss=0.25.ckpt", "lightning", None, 2, {"epoch": 2.0, "val_loss": 0.25}),
        ("model_step_200.pt", "torch", 200, None, {}),
        ("ckpt-1000.pth", "torch", 1000, None, {}),
        ("iter_300.pt", "torch", 300, None, {}),
        ("checkpoint_epoch_5.pt", "torch", None, 5, {"epoch": 5.0}),
        ("global_step=77.ckpt", "torch", 77, None, {}),
        ("resnet50.pt", "torch", None, None, {}),
        ("model.safetensors", "safetensors", None, None, {}),
    ],
)
def test_names_give_kind_step_epoch_and_metrics(
    name: str, kind: str, step: int | None, epoch: int | None, metrics: dict[str, float]
) -> None:
    parsed = parse_checkpoint_name(name)
    assert parsed is not None
    assert (parsed.kind, parsed.step, parsed.epoch, parsed.metrics) == (kind, step, epoch, metrics)


@pytest.mark.parametrize("name", ["metrics.csv", ".pt", ".hidden.ckpt", "notes.txt", "x.pt.tmp"])
def test_other_files_are_no_checkpoints(name: str) -> None:
    assert parse_checkpoint_name(name) is None and not is_checkpoint(name)


def test_found_tags_are_paths_that_never_collide_with_saved_snapshot_tags() -> None:
    assert found_tag("code/ckpt/epoch=1-step=10.ckpt") == "code/ckpt/epoch=1-step=10.ckpt"
    long = "code/" + "deep/" * 40 + "epoch=1-step=10.ckpt"
    tag = found_tag(long)
    assert len(tag) <= 128 and tag.startswith("code/~") and tag.endswith("epoch=1-step=10.ckpt")
    assert found_tag(long) == tag and found_tag(long.replace("deep", "DEEP")) != tag
    assert is_found_tag(tag) and is_found_tag("code/ckpt/last.ckpt")
    for bad in ("last.ckpt", "/abs/x.pt", "code/../x.pt", "code//x.pt", "code/x\n.pt"):
        assert not is_found_tag(bad)
    selector = parse_selector("code/ckpt/epoch=1-step=10.ckpt")
    assert (selector.kind, selector.tag) == ("tag", "code/ckpt/epoch=1-step=10.ckpt")
