"""Idle-GPU detection with a stand-in ``nvidia-smi`` on PATH (our machines have no GPU): the
sampler's output, time-boxing of a hanging or garbage-printing nvidia-smi, and the pure
idle policy."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from nsml_hpc.job import gpu_monitor
from nsml_hpc.job.gpu_monitor import GpuMonitor, parse_nvidia_smi, query_command, sample_once
from nsml_hpc.runfiles.idle import IdleState, advance, idle_for, is_idle


def stand_in_nvidia_smi(folder: Path, body: str) -> None:
    """An executable ``nvidia-smi`` in ``folder`` (put first on PATH by the test)."""
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    return folder


def test_samples_of_each_visible_gpu_are_read(fake_bin: Path) -> None:
    stand_in_nvidia_smi(fake_bin, 'echo "0, 90, 10240, 81920"; echo "1, 88, 10000, 81920"')
    samples = sample_once("0,1")
    assert [(s.index, s.util) for s in samples] == [(0, 90.0), (1, 88.0)]
    assert query_command("0,1")[-1] == "--id=0,1"


def test_a_hanging_nvidia_smi_is_cut_off(fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in_nvidia_smi(fake_bin, "sleep 30")
    monkeypatch.setattr(gpu_monitor, "CALL_TIMEOUT", 0.5)
    started = time.monotonic()
    with pytest.raises(Exception, match="timed out"):
        sample_once(None)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("output", ["garbage", "", "0, 1, 2", "a, b, c, d"])
def test_garbage_output_is_refused(output: str) -> None:
    with pytest.raises(ValueError):
        parse_nvidia_smi(output)


def test_monitor_writes_samples_and_a_single_warning_for_garbage(
    fake_bin: Path, tmp_path: Path
) -> None:
    stand_in_nvidia_smi(fake_bin, "echo not a gpu")
    monitor = GpuMonitor(tmp_path, interval=0.05, visible_devices=None)
    monitor.thread.start()
    time.sleep(0.5)
    monitor.stop()
    monitor.thread.join(timeout=5)
    lines = [json.loads(line) for line in (tmp_path / "gpu.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and "warning" in lines[0]


def _lines(*utils: tuple[float, list[float]]) -> bytes:
    return b"".join(
        (
            json.dumps({"time": when, "gpus": [{"index": i, "util": u} for i, u in enumerate(us)]})
            + "\n"
        ).encode()
        for when, us in utils
    )


def test_gpus_at_zero_for_longer_than_the_threshold_are_idle() -> None:
    state = advance(IdleState(), _lines((0, [0.0, 0.0]), (1800, [0.0, 0.0]), (3700, [0.0, 0.0])))
    assert state.idle_since == 0 and state.samples == 3
    assert is_idle(state, now=3700, threshold_seconds=3600)
    early = advance(IdleState(), _lines((0, [0.0, 0.0]), (1800, [0.0, 0.0])))
    assert not is_idle(early, now=1900, threshold_seconds=3600)


def test_gpus_at_ninety_percent_are_never_idle() -> None:
    state = advance(IdleState(), _lines((0, [90.0]), (5000, [91.0]), (9000, [90.0])))
    assert state.idle_since is None
    assert not is_idle(state, now=20_000, threshold_seconds=3600)
    assert idle_for(state, 20_000) == 0.0


def test_one_busy_gpu_resets_the_idle_stretch() -> None:
    state = advance(IdleState(), _lines((0, [0.0]), (100, [0.0, 50.0]), (200, [0.0])))
    assert state.idle_since == 200


def test_bad_sample_lines_are_counted_not_fatal() -> None:
    chunk = b'garbage\n{"time": 1, "warning": "nvidia-smi hung"}\n{"time": "x", "gpus": []}\n'
    state = advance(IdleState(), chunk + _lines((5, [0.0])))
    assert (state.warnings, state.samples, state.idle_since) == (3, 1, 5)
