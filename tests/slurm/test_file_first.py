"""File-first state on the sandbox: what the job wrapper writes shows before Slurm is asked,
and what it cannot write (a cancel before the start, a kill, a time limit) ends with Slurm's
state; the site policy holds a user's 1 s floor; and an open TUI with a CLI loop stays within
the Slurm rate (the benchmark, run short)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.catalog.polls import claim_poll
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.cli import main
from nsml_hpc.config.settings import load_settings
from nsml_hpc.job.spec import Preemption, Resources, SessionSpec
from nsml_hpc.sessions.actions import sync_now
from nsml_hpc.slurm.states import session_state
from nsml_hpc.submit.create import prepare, submit
from nsml_hpc.sync.events_state import FROM_EVENTS_REASON, is_provisional
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script
from tests.slurm.test_sync_load import CountingRunner

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]
REPO = Path(__file__).resolve().parents[2]


def _accounting_state(job_id: str) -> str:
    done = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", job_id, "--format=State"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return session_state(done.stdout.strip().splitlines()[0]).value


def _wait_for_event(run_dir: Path, kind: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = run_dir / "events.jsonl"
        if path.exists() and any(
            json.loads(line).get("event") == kind for line in path.read_text().splitlines()
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {kind!r} event in {run_dir} after {timeout} s")


def test_completed_and_failed_exit_3_appear_from_events_before_any_sacct_call(
    workspace: Workspace, project_dir: Path
) -> None:
    runner = CountingRunner()
    workspace.use_backend("local", CliBackend("local", runner))
    # Slurm far away: another process "just asked", and neither clock allows another query.
    workspace.settings = replace(
        workspace.settings, poll_floor_seconds=3600.0, slurm_floor_seconds=3600.0
    )
    write_script(project_dir, "ok.py", "print('done')\n")
    write_script(project_dir, "bad.py", "import sys\nsys.exit(3)\n")
    ok = submit_script(workspace, project_dir, "ok.py")
    bad = submit_script(workspace, project_dir, "bad.py")
    assert claim_poll(workspace.catalog, "local", time.time(), 0.0)
    runner.calls.clear()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        sync_now(workspace)
        states = {get_session(workspace.catalog, s.name).state for s in (ok, bad)}
        if states == {"COMPLETED", "FAILED"}:
            break
        time.sleep(0.3)
    assert runner.calls["sacct"] == 0 and runner.calls["squeue"] == 0
    done, failed = get_session(workspace.catalog, ok.name), get_session(workspace.catalog, bad.name)
    assert (done.state, done.exit_code, done.reason) == ("COMPLETED", 0, FROM_EVENTS_REASON)
    assert (failed.state, failed.exit_code, failed.reason) == ("FAILED", 3, FROM_EVENTS_REASON)
    assert done.started_at is not None and done.ended_at is not None
    # Accounting confirms them at the next query (once it has their ends: slurmdbd records an
    # end a moment after the wrapper wrote it): one sacct, no disagreement, reasons cleared.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if {_accounting_state(s.job_id) for s in (ok, bad)} == {"COMPLETED", "FAILED"}:
            break
        time.sleep(0.3)
    workspace.settings = replace(
        workspace.settings, poll_floor_seconds=0.5, slurm_floor_seconds=0.5
    )
    report = sync_now(workspace)
    assert runner.calls["sacct"] == 1 and report.disagreements == [], (report, runner.calls)
    for submitted, state, code in ((ok, "COMPLETED", 0), (bad, "FAILED", 3)):
        record = get_session(workspace.catalog, submitted.name)
        assert (record.state, record.exit_code, record.reason) == (state, code, None)
        assert _accounting_state(submitted.job_id) == state


def _submit(
    workspace: Workspace, project_dir: Path, script: str, **resources: object
) -> tuple[str, str, Path]:
    spec = SessionSpec(
        project="killed",
        script=script,
        resources=Resources(**resources),  # type: ignore[arg-type]
        preemption=Preemption(grace_seconds=0, requeue=False),
    )
    done = submit(
        prepare(spec, workspace.settings, project_dir),
        workspace.catalog,
        workspace.settings,
        workspace.backend_for("local"),
    )
    return done.name, done.job_id, Path(done.run_dir)


def _ends_with_slurms_state(workspace: Workspace, name: str, job_id: str, state: str) -> None:
    record = wait_for_state(workspace, name, {state}, timeout=240)
    assert _accounting_state(job_id) == state
    assert not is_provisional(record.reason)


@pytest.mark.slow
def test_jobs_ended_outside_the_wrappers_view_end_with_slurms_state(
    workspace: Workspace, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scancelled while pending (the wrapper never ran), killed with ``scancel --signal=KILL``
    while running, past ``--time``, and a job whose processes all died at once (SIGKILL to the
    wrapper's process group, as a node failure or the OOM killer does: the wrapper writes
    nothing and its heartbeat stops): none is a user's action through nsml-hpc, and the Slurm
    clock (2 s here, heartbeat 1 s) brings each one's accounting state."""
    monkeypatch.setenv("NSML_HPC_HEARTBEAT", "1")  # the jobs inherit it
    workspace.settings = replace(workspace.settings, slurm_floor_seconds=2.0)
    write_script(project_dir, "long.py", "import time\ntime.sleep(600)\n")
    blocker, blocker_job, _ = _submit(workspace, project_dir, "long.py", gpus=4)
    pending, pending_job, pending_dir = _submit(workspace, project_dir, "long.py", gpus=4)
    killed, killed_job, killed_dir = _submit(workspace, project_dir, "long.py")
    late, late_job, _ = _submit(workspace, project_dir, "long.py", time="1")
    gone, gone_job, gone_dir = _submit(workspace, project_dir, "long.py")
    try:
        wait_for_state(workspace, pending, {"PENDING"}, timeout=120)
        _wait_for_event(killed_dir, "started", timeout=120)
        wait_for_state(workspace, killed, {"RUNNING"}, timeout=60)
        subprocess.run(["scancel", pending_job], check=True, timeout=60)
        subprocess.run(["scancel", "--signal=KILL", killed_job], check=True, timeout=60)
        _ends_with_slurms_state(workspace, pending, pending_job, "CANCELLED")
        assert not (pending_dir / "events.jsonl").exists()  # the wrapper never ran
        _ends_with_slurms_state(workspace, killed, killed_job, "CANCELLED")
        _wait_for_event(gone_dir, "started", timeout=120)
        wait_for_state(workspace, gone, {"RUNNING"}, timeout=60)
        started = next(
            json.loads(line)
            for line in (gone_dir / "events.jsonl").read_text().splitlines()
            if '"started"' in line
        )
        group = os.getpgid(started["pid"])
        assert group != os.getpgid(0)  # the job's own process group, never ours
        os.killpg(group, signal.SIGKILL)
        _ends_with_slurms_state(workspace, gone, gone_job, "FAILED")
        assert get_session(workspace.catalog, gone).exit_code == 0  # 0:9, killed by a signal
        _ends_with_slurms_state(workspace, late, late_job, "TIMEOUT")
    finally:
        subprocess.run(
            ["scancel", blocker_job, pending_job, killed_job, late_job, gone_job], timeout=60
        )
    wait_for_state(workspace, blocker, {"CANCELLED"}, timeout=120)


def test_the_site_policy_caps_a_user_config_that_asks_for_a_1_s_floor(
    nsml_env: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = nsml_env / "site.toml"  # NSML_HPC_SITE_CONFIG (tests/conftest.py)
    site.write_text("[slurm]\nfloor_seconds = 30\naction_floor_seconds = 20\n", encoding="utf-8")
    (nsml_env / "config.toml").write_text(
        "slurm_floor_seconds = 1\npoll_floor_seconds = 0.5\n", encoding="utf-8"
    )
    assert main(["cluster", "test", "local"]) in (0, 4)
    out = capsys.readouterr().out
    assert "Slurm asked every 30 s while sessions wait" in out
    assert "20 s after an action" in out and str(site) in out

    runner = CountingRunner()
    with Workspace.open(load_settings()) as workspace:
        assert workspace.slurm_policy().floor_seconds == 30.0
        workspace.use_backend("local", CliBackend("local", runner))
        write_script(project_dir, "long.py", "import time\ntime.sleep(60)\n")
        done = submit_script(workspace, project_dir, "long.py")
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # ten seconds of 1 s syncs and refreshes
                workspace.sync(refresh=True)
                time.sleep(1.0)
        finally:
            subprocess.run(["scancel", done.job_id], timeout=60)
        assert runner.calls["sacct"] == 1  # the first query; the next waits 20 s at least


@pytest.mark.slow
def test_an_open_tui_and_a_cli_loop_stay_within_the_slurm_rate(tmp_path: Path) -> None:
    """The benchmark, run short: counting wrappers around sacct/squeue/scontrol/sinfo, an open
    TUI and a ``watch``-style ``ps`` loop, sessions pending, running, finishing, failing and
    killed, over one simulated hour of a clock shortened twentyfold (three real minutes)."""
    out = tmp_path / "rate.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_slurm_rate.py"),
            "--minutes",
            "60",
            "--scale",
            "0.05",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert figures["queries_per_user_hour"] <= 60, figures["commands"]
    assert figures["disagreements_left"] == 0, figures["disagreement_lines"]
    assert figures["tui_rounds"] > 0 and figures["cli_rounds"] > 0
    # Kills outside the wrapper's view end with Slurm's state, and what a wrapper writes reaches
    # the TUI and ``ps``. How fast (one Slurm floor; 2 s) is the benchmark's to print, not a
    # test's to assert: on a shared 2-core machine a time says more about the machine.
    for key in ("kill_to_cancelled_simulated_s", "silent_kill_to_slurm_state_simulated_s"):
        assert figures[key] is not None, (key, figures)
    assert figures["silent_kill_state"] == "FAILED"
    for key in ("delay_event_to_tui_s", "delay_event_to_ps_s"):
        assert figures[key]["n"] > 0, (key, figures[key])
