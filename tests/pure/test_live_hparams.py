"""The job's side of ``nsml-hpc set`` (pure, no Slurm): a look costs at most one stat per
interval, a new version is taken once with the step that first uses it, callbacks run (also
from report()), malformed files are ignored, and session.hyperparameters follows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nsml_hpc.job import api, live_hparams, progress
from nsml_hpc.job.hparams import HParamValue
from nsml_hpc.job.layout import HPARAM_INTERVAL_ENV, HPARAMS_FILE, RUN_DIR_ENV, SESSION_FILE
from nsml_hpc.job.live_hparams import LiveHyperparameters, interval_from_env, read_overlay


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / SESSION_FILE).write_text(
        json.dumps({"spec": {"args": ["--lr", "0.1", "--epochs", "3", "--amp"]}})
    )
    monkeypatch.setenv(RUN_DIR_ENV, str(folder))
    monkeypatch.setenv(HPARAM_INTERVAL_ENV, "5")
    monkeypatch.setattr(progress, "after_report", None)
    return folder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _write(run_dir: Path, version: int, values: dict[str, object]) -> None:
    temp = run_dir / ".hparams.tmp"
    temp.write_text(json.dumps({"version": version, "values": values}))
    temp.replace(run_dir / HPARAMS_FILE)


def _events(run_dir: Path) -> list[dict[str, object]]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_change_is_taken_at_the_first_look_after_the_interval_with_its_step(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(live_hparams, "_monotonic", clock)
    stats: list[str] = []

    def counting_stat(path: Path) -> os.stat_result:
        stats.append(str(path))
        return os.stat(path)

    monkeypatch.setattr(live_hparams, "_stat", counting_stat)
    monkeypatch.setattr(progress, "next_step", lambda: 41)
    watcher = LiveHyperparameters()
    assert watcher.get("lr") == 0.1 and watcher.get("amp") is True
    assert watcher.get("missing", 7) == 7
    assert len(stats) == 1  # one stat, then nothing until the interval has passed
    _write(run_dir, 1, {"lr": 0.01})
    for _ in range(100):
        assert watcher.get("lr") == 0.1
    assert len(stats) == 1
    clock.now += 5.0
    assert watcher.get("lr") == 0.01
    assert len(stats) == 2
    (event,) = _events(run_dir)
    assert event["event"] == "hparam" and event["step"] == 41 and event["version"] == 1
    assert event["changes"] == {"lr": 0.01} and event["previous"] == {"lr": 0.1}
    clock.now += 5.0
    assert watcher.look() == {}  # the same version is not taken twice
    assert len(_events(run_dir)) == 1


def test_callbacks_run_once_per_change_also_from_report(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(live_hparams, "_monotonic", clock)
    watcher = LiveHyperparameters()
    seen: list[dict[str, HParamValue]] = []
    watcher.subscribe(seen.append)
    assert progress.after_report is not None
    _write(run_dir, 1, {"lr": 0.01, "epochs": 3})  # epochs unchanged: not a change
    clock.now += 5.0
    progress.after_report()
    assert seen == [{"lr": 0.01}]
    _write(run_dir, 2, {"lr": 0.01, "warmup": 5})
    clock.now += 5.0
    progress.after_report()
    assert seen == [{"lr": 0.01}, {"warmup": 5}]
    assert watcher.current()["warmup"] == 5


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"version": "2", "values": {}}', b"[1, 2]", b'{"values": {"lr": 1}}'],
)
def test_a_malformed_file_is_ignored(run_dir: Path, content: bytes) -> None:
    (run_dir / HPARAMS_FILE).write_bytes(content)
    assert read_overlay(run_dir / HPARAMS_FILE) is None
    watcher = LiveHyperparameters()
    assert watcher.look() == {} and watcher.get("lr") == 0.1


def test_session_hyperparameters_and_hparam_see_the_live_values(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HPARAM_INTERVAL_ENV, "0.01")
    monkeypatch.setattr(live_hparams, "live", LiveHyperparameters())
    _write(run_dir, 3, {"lr": 0.02})
    info = api.SessionInfo(run_dir)
    assert info.hyperparameters["lr"] == 0.02
    assert info.submitted_hyperparameters["lr"] == 0.1
    assert live_hparams.hparam("lr", 1.0) == 0.02


def test_a_forks_live_values_are_its_starting_values(run_dir: Path) -> None:
    document = json.loads((run_dir / SESSION_FILE).read_text())
    document["live_hyperparameters"] = {"warmup": 10}
    (run_dir / SESSION_FILE).write_text(json.dumps(document))
    assert LiveHyperparameters().get("warmup") == 10


def test_outside_a_session_values_come_from_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    monkeypatch.setattr("sys.argv", ["train.py", "--lr", "0.3"])
    watcher = LiveHyperparameters()
    assert watcher.get("lr") == 0.3 and watcher.look() == {}


@pytest.mark.parametrize(("text", "seconds"), [("", 2.0), ("0.5", 0.5), ("x", 2.0), ("0", 0.01)])
def test_the_interval_comes_from_the_environment(
    text: str, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HPARAM_INTERVAL_ENV, text)
    assert interval_from_env() == seconds
