"""The in-job snapshot API: atomic save (context manager and callback), load by latest / tag /
best, damaged folders, the local fallback, should_checkpoint, the torch helpers, and a save
killed with SIGKILL at random instants (never a half snapshot that looks complete)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import nsml_hpc
from nsml_hpc.errors import NotFoundError, SnapshotError, SpecError
from nsml_hpc.job import api
from nsml_hpc.job import snapshots as snapshot_api
from nsml_hpc.job.snapshot_format import parse_selector
from nsml_hpc.job.snapshot_store import hidden_entries, list_snapshots, recover


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A session's run directory as the job wrapper sets it up (fresh API state)."""
    folder = tmp_path / "runs" / "alice" / "mnist" / "3"
    folder.mkdir(parents=True)
    (folder / "session.json").write_text(json.dumps({"name": "mnist/3", "spec": {"args": []}}))
    monkeypatch.setenv("NSML_HPC_RUN_DIR", str(folder))
    monkeypatch.setenv("NSML_HPC_SESSION", "mnist/3")
    monkeypatch.delenv("NSML_HPC_RUN_ROOT", raising=False)
    monkeypatch.setattr(api, "_writer", api._MetricWriter())
    monkeypatch.setattr(snapshot_api, "_request", snapshot_api._CheckpointRequest())
    yield folder


def _write(folder: Path, name: str = "model.bin", data: bytes = b"weights") -> None:
    (folder / name).write_bytes(data)


def test_context_manager_save_is_visible_only_when_complete(run_dir: Path) -> None:
    nsml_hpc.report(step=7, val_loss=0.25, acc=0.9)
    with nsml_hpc.save() as folder:
        assert folder.parent == run_dir / "snapshots"
        assert folder.name.startswith(".tmp-step-7-")
        _write(folder)
        (folder / "sub").mkdir()
        _write(folder / "sub", "opt.bin", b"1234")
        assert list_snapshots(run_dir / "snapshots").intact == []
    listing = list_snapshots(run_dir / "snapshots")
    [(manifest, path)] = listing.intact
    assert path == run_dir / "snapshots" / "step-7"
    assert manifest.step == 7
    assert manifest.metrics == {"val_loss": 0.25, "acc": 0.9}
    assert [(f.path, f.size) for f in manifest.files] == [("model.bin", 7), ("sub/opt.bin", 4)]
    assert manifest.session == "mnist/3"
    assert hidden_entries(run_dir / "snapshots") == []


def test_callback_save_returns_the_snapshot_path(run_dir: Path) -> None:
    path = nsml_hpc.save(lambda folder: _write(folder), tag="best", step=3)
    assert path == run_dir / "snapshots" / "best"
    assert (path / "model.bin").read_bytes() == b"weights"


def test_an_exception_in_the_block_leaves_nothing(run_dir: Path) -> None:
    with pytest.raises(RuntimeError), nsml_hpc.save(step=1) as folder:
        _write(folder)
        raise RuntimeError("disk full")
    assert not any((run_dir / "snapshots").iterdir())


def test_saving_a_tag_again_replaces_it(run_dir: Path) -> None:
    nsml_hpc.save(lambda folder: _write(folder, data=b"old"), tag="last", step=1)
    nsml_hpc.save(lambda folder: _write(folder, data=b"newer"), tag="last", step=2)
    [(manifest, path)] = list_snapshots(run_dir / "snapshots").intact
    assert (manifest.step, (path / "model.bin").read_bytes()) == (2, b"newer")
    assert hidden_entries(run_dir / "snapshots") == []


def test_load_picks_latest_tag_and_best(run_dir: Path) -> None:
    for step, loss, acc in ((1, 0.9, 0.5), (2, 0.3, 0.7), (3, 0.5, 0.8)):
        nsml_hpc.report(step=step, val_loss=loss, val_acc=acc)
        nsml_hpc.save(lambda folder: _write(folder), step=step)
    snapshots = run_dir / "snapshots"
    assert nsml_hpc.load() == snapshots / "step-3"
    assert nsml_hpc.load("step-1") == snapshots / "step-1"
    assert nsml_hpc.load("best:val_loss") == snapshots / "step-2"  # min for a loss
    assert nsml_hpc.load("best:val_acc") == snapshots / "step-3"  # max otherwise
    assert nsml_hpc.load("best:val_loss:max") == snapshots / "step-1"


def test_load_of_another_session_resolves_through_the_run_root(
    run_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "runs" / "bob" / "mnist" / "1"
    (other / "snapshots").mkdir(parents=True)
    (other / "session.json").write_text(json.dumps({"name": "mnist/1"}))
    nsml_hpc.save(lambda folder: _write(folder), step=1)
    os.rename(run_dir / "snapshots" / "step-1", other / "snapshots" / "step-1")
    assert nsml_hpc.load(session="mnist/1") == other / "snapshots" / "step-1"
    assert nsml_hpc.load(session="bob/mnist/1") == other / "snapshots" / "step-1"
    with pytest.raises(NotFoundError, match="no session 'mnist/9'"):
        nsml_hpc.load(session="mnist/9")
    with pytest.raises(SpecError):
        nsml_hpc.load(session="../../etc/1")


@pytest.mark.parametrize(
    ("selector", "error", "message"),
    [
        ("step-9", NotFoundError, "has no snapshot 'step-9'"),
        ("best:bleu", NotFoundError, "recorded metric 'bleu'"),
        ("best:", SpecError, "invalid selector"),
        ("best:loss:up", SpecError, "invalid selector"),
        ("../x", SpecError, "invalid snapshot"),
    ],
)
def test_bad_selectors_are_clear_errors(
    run_dir: Path, selector: str, error: type[Exception], message: str
) -> None:
    nsml_hpc.report(step=1, val_loss=0.5)
    nsml_hpc.save(lambda folder: _write(folder), step=1)
    with pytest.raises(error, match=message):
        nsml_hpc.load(selector)


def test_a_hand_edited_snapshot_is_skipped_with_a_warning_and_refused_by_tag(run_dir: Path) -> None:
    nsml_hpc.save(lambda folder: _write(folder), step=1)
    nsml_hpc.save(lambda folder: _write(folder), step=2)
    (run_dir / "snapshots" / "step-2" / "model.bin").unlink()
    with pytest.warns(nsml_hpc.SnapshotWarning, match="mnist/3:step-2 is damaged"):
        assert nsml_hpc.load() == run_dir / "snapshots" / "step-1"
    with pytest.raises(SnapshotError, match=r"mnist/3:step-2 is damaged \(missing model.bin\)"):
        nsml_hpc.load("step-2")


@pytest.mark.parametrize("tag", ["latest", "../up", ".hidden", "a/b", "", "x" * 200, "a..b"])
def test_bad_tags_are_refused_before_anything_is_written(run_dir: Path, tag: str) -> None:
    with pytest.raises(SpecError):
        nsml_hpc.save(lambda folder: _write(folder), tag=tag)
    assert not (run_dir / "snapshots").exists() or not any((run_dir / "snapshots").iterdir())


def test_links_and_a_manifest_of_our_own_are_refused(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="regular files only"), nsml_hpc.save(step=1) as folder:
        (folder / "data").symlink_to(tmp_path)
    with (
        pytest.raises(SnapshotError, match=r"manifest\.json is written by nsml-hpc"),
        nsml_hpc.save(step=2) as folder,
    ):
        (folder / "manifest.json").write_text("{}")
    assert not any((run_dir / "snapshots").iterdir())


def test_outside_a_session_snapshots_go_to_a_local_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NSML_HPC_RUN_DIR", raising=False)
    monkeypatch.delenv("NSML_HPC_LOCAL_SNAPSHOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(api, "_writer", api._MetricWriter())
    monkeypatch.setattr(snapshot_api, "_request", snapshot_api._CheckpointRequest())
    path = nsml_hpc.save(lambda folder: _write(folder), step=4)
    assert path == tmp_path / "nsml-snapshots" / "step-4"
    assert nsml_hpc.load() == path
    assert nsml_hpc.should_checkpoint() is False


def test_should_checkpoint_sees_the_wrappers_flag_file(run_dir: Path) -> None:
    assert nsml_hpc.should_checkpoint() is False
    flag = run_dir / ".nsml" / "checkpoint-requested"
    flag.parent.mkdir()
    flag.write_text(json.dumps({"time": time.time(), "restart_count": 0}))
    snapshot_api._request.next_check = 0.0
    assert nsml_hpc.should_checkpoint() is True


def test_a_flag_from_an_earlier_run_is_ignored(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NSML_HPC_RESTART_COUNT", "2")
    flag = run_dir / ".nsml" / "checkpoint-requested"
    flag.parent.mkdir()
    flag.write_text(json.dumps({"time": time.time(), "restart_count": 1}))
    assert nsml_hpc.should_checkpoint() is False


def test_should_checkpoint_installs_a_usr2_handler_unless_the_script_has_one(
    run_dir: Path,
) -> None:
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)
        assert nsml_hpc.should_checkpoint() is False
        os.kill(os.getpid(), signal.SIGUSR2)
        assert nsml_hpc.should_checkpoint() is True

        own_calls: list[int] = []
        signal.signal(signal.SIGUSR2, lambda signum, frame: own_calls.append(signum))
        snapshot_api._request = snapshot_api._CheckpointRequest()
        nsml_hpc.should_checkpoint()
        os.kill(os.getpid(), signal.SIGUSR2)
        assert own_calls == [signal.SIGUSR2]  # the script's own handler stays in place
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_resume_information_comes_from_the_wrapper(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NSML_HPC_RESUME_FROM", str(run_dir / "snapshots" / "step-4"))
    monkeypatch.setenv("NSML_HPC_RESUME_STEP", "4")
    monkeypatch.setenv("NSML_HPC_RESTART_COUNT", "1")
    info = api.SessionInfo(run_dir)
    assert (info.resume_from, info.resume_step, info.restart_count) == (
        run_dir / "snapshots" / "step-4",
        4,
        1,
    )
    writer = api._MetricWriter()
    assert writer.next_step == 5  # report() without a step continues after the snapshot


def test_non_finite_metrics_are_stored_as_null(run_dir: Path) -> None:
    nsml_hpc.report(step=1, loss=float("nan"), acc=0.5)
    path = nsml_hpc.save(lambda folder: _write(folder))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["metrics"] == {"loss": None, "acc": 0.5}


def test_torch_helpers_save_and_load_state_dicts(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    fake = types.ModuleType("torch")
    fake.save = lambda obj, path: Path(path).write_bytes(pickle.dumps(obj))  # type: ignore[attr-defined]
    fake.load = lambda path, map_location=None: pickle.loads(Path(path).read_bytes())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)

    class Model:
        def __init__(self, weight: float) -> None:
            self.weight = weight

        def state_dict(self) -> dict[str, float]:
            return {"weight": self.weight}

        def load_state_dict(self, state: dict[str, float]) -> None:
            self.weight = state["weight"]

    path = nsml_hpc.save_torch(step=5, model=Model(1.5), epoch=5)
    assert sorted(p.name for p in path.iterdir()) == ["epoch.pt", "manifest.json", "model.pt"]
    restored = Model(0.0)
    loaded = nsml_hpc.load_torch("latest", model=restored, epoch=None)
    assert restored.weight == 1.5
    assert loaded["epoch"] == 5
    with pytest.raises(SnapshotError, match=r"has no optimizer\.pt"):
        nsml_hpc.load_torch(path, optimizer=Model(0.0))


def test_torch_helpers_without_torch_are_a_clear_error(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(SnapshotError, match="need PyTorch"):
        nsml_hpc.save_torch(step=1, model=object())


def test_selector_directions() -> None:
    assert parse_selector("best:train_error").maximize is False
    assert parse_selector("best:f1").maximize is True
    assert parse_selector("best:f1:min").maximize is False
    assert str(parse_selector("latest")) == "latest"


def _fid_snapshots() -> None:
    for step, fid in [(1, 30.0), (2, 12.5), (3, 20.0)]:
        nsml_hpc.report(step=step, **{"val/fid": fid})
        nsml_hpc.save(lambda folder: _write(folder), step=step)


def test_best_fid_is_the_lowest_as_everywhere_else(run_dir: Path) -> None:
    _fid_snapshots()
    assert nsml_hpc.load("best:val/fid") == run_dir / "snapshots" / "step-2"


def test_load_follows_the_metrics_overrides_of_its_session(run_dir: Path) -> None:
    document = {"name": "mnist/3", "spec": {"args": []}, "metric_directions": {"fid": "max"}}
    (run_dir / "session.json").write_text(json.dumps(document))
    _fid_snapshots()
    assert api.SessionInfo(run_dir).metric_directions.as_dict() == {"fid": "max"}
    assert nsml_hpc.load("best:val/fid") == run_dir / "snapshots" / "step-1"
    assert nsml_hpc.load("best:val/fid:min") == run_dir / "snapshots" / "step-2"


SAVER = """
import os, sys, nsml_hpc
step = 0
while True:
    nsml_hpc.report(step=step, loss=1.0 / (step + 1))
    with nsml_hpc.save(step=step) as folder:
        for index in range(8):
            (folder / f"part{index}.bin").write_bytes(os.urandom(64 * 1024))
    step += 1
"""


def test_saves_killed_at_random_instants_never_leave_a_half_snapshot(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {**os.environ, "NSML_HPC_RUN_DIR": str(run_dir)}
    rng = random.Random(4242)
    snapshots = run_dir / "snapshots"
    for _ in range(15):
        saver = subprocess.Popen([sys.executable, "-c", SAVER], env=env)
        time.sleep(rng.uniform(0.15, 0.6))
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        listing = list_snapshots(snapshots)
        assert listing.damaged == {}  # every visible snapshot is complete
        for manifest, path in listing.intact:
            assert len(manifest.files) == 8
            assert all((path / f.path).stat().st_size == f.size for f in manifest.files)
    assert list_snapshots(snapshots).intact
    recover(snapshots, drop_temp=True)  # what the wrapper does when the job starts again
    assert hidden_entries(snapshots) == []
