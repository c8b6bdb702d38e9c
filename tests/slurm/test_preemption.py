"""Preemption, time limits and forks on the real Slurm: a warned job checkpoints, requeues
itself, resumes from its snapshot and completes as ONE session with a continuous metric
history; a fork starts from a parent's best snapshot with a changed hyperparameter.

Slurm holds a requeued job for ``cred_expire`` (120 s by default) before it may start again
(Reason=BeginTime). The tests release it at once with ``scontrol update StartTime=now`` (what
an admin may do), so the suite stays quick; nothing else about the cluster is changed.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from nsml_hpc.catalog.metrics import metric_lines
from nsml_hpc.catalog.sessions import get_session, list_sessions
from nsml_hpc.catalog.snapshots import job_runs_of, snapshots_of
from nsml_hpc.cli import main
from nsml_hpc.sessions.actions import sync_now
from nsml_hpc.sessions.views import session_detail
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

# Saves every 5 steps. When warned it snapshots (once per warning) and waits up to --stall
# seconds to be stopped; with --lose-tail it first reports two more steps (work the requeue
# will lose). If the wrapper does not stop it (requeue capped), it trains on.
TRAIN = """
    import argparse, json, time, nsml_hpc
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--pause", type=float, default=0.2)
    parser.add_argument("--stall", type=float, default=60.0)
    parser.add_argument("--lose-tail", action="store_true")
    args = parser.parse_args()
    warned = False
    session = nsml_hpc.session
    start, weight = 0, 0.0
    if session.resume_from is not None:
        state = json.loads((session.resume_from / "state.json").read_text())
        start, weight = state["step"] + 1, state["weight"]
    with open(session.run_dir / f"seen-{session.restart_count}.json", "w") as out:
        json.dump({"lr": args.lr, "start": start, "resume_from": str(session.resume_from)}, out)
    step = start
    while step < args.steps:
        weight += args.lr
        nsml_hpc.report(step=step, val_loss=abs(step - 12) + args.lr, weight=weight)
        if nsml_hpc.should_checkpoint() and not warned:
            warned = True
            if args.lose_tail:
                for lost in (step + 1, step + 2):
                    nsml_hpc.report(step=lost, val_loss=-1.0, weight=-1.0)
            with nsml_hpc.save(step=step) as folder:
                (folder / "state.json").write_text(json.dumps({"step": step, "weight": weight}))
            time.sleep(args.stall)
        if step % 5 == 4:
            with nsml_hpc.save(step=step) as folder:
                (folder / "state.json").write_text(json.dumps({"step": step, "weight": weight}))
        step += 1
        time.sleep(args.pause)
"""


def _squeue(job_id: str) -> tuple[str, str]:
    done = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T|%r"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    state, _, reason = done.stdout.strip().partition("|")
    return state, reason


def _events(run_dir: Path) -> list[dict[str, object]]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for_event(run_dir: Path, kind: str, timeout: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in _events(run_dir):
            if event["event"] == kind:
                return event
        time.sleep(0.2)
    raise AssertionError(f"no {kind!r} event in {run_dir}: {_events(run_dir)}")


def _release_requeued(job_id: str, timeout: float = 120.0) -> None:
    """Start the requeued job now instead of after Slurm's 120 s credential hold."""
    deadline = time.monotonic() + timeout
    held_since: float | None = None
    while time.monotonic() < deadline:
        state, reason = _squeue(job_id)
        held = state == "PENDING" and reason == "BeginTime"
        held_since = (held_since or time.monotonic()) if held else None
        # Slurm revokes the previous run's credential at the requeue; a new start in that
        # same second is killed ("Job credential revoked", FAILED exit 1: seen here), which
        # is why Slurm itself holds a requeued job for cred_expire. Release after 2 s.
        if held_since is not None and time.monotonic() - held_since >= 2.0:
            subprocess.run(
                ["scontrol", "update", f"JobId={job_id}", "StartTime=now"],
                check=True,
                timeout=30,
                capture_output=True,
            )
            return
        if state in ("RUNNING", ""):
            return
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} was not requeued: {_squeue(job_id)}")


def _finish_releasing_requeues(
    workspace: Workspace, name: str, job_id: str, timeout: float = 240.0
) -> str:
    """Sync until the session ends, releasing every requeue hold on the way."""
    deadline = time.monotonic() + timeout
    held_since: float | None = None
    while time.monotonic() < deadline:
        state, reason = _squeue(job_id)
        held = state == "PENDING" and reason == "BeginTime"
        held_since = (held_since or time.monotonic()) if held else None
        # Slurm revokes the previous run's credential at the requeue; a new start in that
        # same second is killed ("Job credential revoked", FAILED exit 1: seen here), which
        # is why Slurm itself holds a requeued job for cred_expire. Release after 2 s.
        if held_since is not None and time.monotonic() - held_since >= 2.0:
            subprocess.run(
                ["scontrol", "update", f"JobId={job_id}", "StartTime=now"],
                timeout=30,
                capture_output=True,
                check=False,
            )
        sync_now(workspace)
        record = get_session(workspace.catalog, name)
        if record.state in ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED"):
            return record.state
        time.sleep(0.5)
    raise AssertionError(f"{name} did not end in time")


def _assert_continuous(workspace: Workspace, name: str, steps: int) -> list[dict[str, object]]:
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    lines = metric_lines(workspace.catalog, record.id)
    seen = [line["step"] for line in lines]
    assert seen == list(range(steps)), seen  # continuous, and no step twice
    assert all(line["val_loss"] != -1.0 for line in lines)  # the lost tail is superseded
    return lines


def test_preempted_session_checkpoints_requeues_resumes_and_completes_as_one_session(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(project_dir, "train.py", TRAIN)
    done = submit_script(
        workspace, project_dir, "train.py", ["--steps", "40", "--lose-tail"], project="preempt"
    )
    wait_for_state(workspace, done.name, {"RUNNING"})
    while not (done.run_dir / "snapshots" / "step-9").exists():
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR2", "--batch", done.job_id], check=True, timeout=30)
    checkpointed = _wait_for_event(done.run_dir, "checkpointed")
    _wait_for_event(done.run_dir, "requeued")
    _release_requeued(done.job_id)
    record = wait_for_state(workspace, done.name, {"COMPLETED", "FAILED"}, timeout=180)
    assert record.state == "COMPLETED"
    sync_now(workspace)
    assert record.id is not None

    # One session, one job id, two job runs; the second resumed from the warned snapshot.
    assert [s.name for s in list_sessions(workspace.catalog, project="preempt")] == [done.name]
    runs = job_runs_of(workspace.catalog, [record.id])[record.id]
    assert [(run.job_id, run.restart_count) for run in runs] == [
        (done.job_id, 0),
        (done.job_id, 1),
    ]
    assert runs[0].outcome == "requeued"
    assert runs[1].resume_tag == checkpointed["snapshot"]
    resumed_step = runs[1].resume_step
    assert resumed_step is not None and resumed_step == checkpointed["step"]
    seen = json.loads((done.run_dir / "seen-1.json").read_text())
    assert seen["start"] == resumed_step + 1
    assert seen["resume_from"].endswith(f"snapshots/{checkpointed['snapshot']}")

    # The metric history is continuous: the two lost steps are in the file, not in the catalog.
    lines = _assert_continuous(workspace, done.name, 40)
    weights = [line["weight"] for line in lines]
    assert weights == pytest.approx([0.1 * (i + 1) for i in range(40)])
    in_file = (done.run_dir / "metrics.jsonl").read_text().splitlines()
    lost = len(in_file) - 40  # the two steps reported after the warning, before the snapshot
    assert lost == 2
    detail = session_detail(workspace.catalog, done.name)
    assert detail["requeues"] == 1
    assert detail["superseded_points"] == 2 * lost
    assert [job["job_id"] for job in detail["jobs"]] == [done.job_id]
    # Sync ingested the snapshots by itself (manifests read through the files seam).
    assert detail["snapshots"]["count"] >= 8
    assert detail["snapshots"]["latest"]["tag"] == "step-39"
    kinds = [event["event"] for event in detail["events"]]
    for kind in ("signal", "checkpointed", "requeued", "resumed"):
        assert kind in kinds


def test_requeue_cap_stops_a_crash_loop(workspace: Workspace, project_dir: Path) -> None:
    write_script(project_dir, "train.py", TRAIN)
    spec_args = ["--steps", "30"]
    from dataclasses import replace

    from nsml_hpc.job.spec import Preemption, Resources, SessionSpec
    from nsml_hpc.submit.create import prepare, submit

    spec = SessionSpec(
        project="capped",
        script="train.py",
        args=spec_args,
        resources=Resources(),
    )
    spec = replace(spec, preemption=Preemption(max_requeues=0))
    prepared = prepare(spec, workspace.settings, project_dir)
    done = submit(prepared, workspace.catalog, workspace.settings, workspace.backend_for("local"))
    wait_for_state(workspace, done.name, {"RUNNING"})
    while not (done.run_dir / "snapshots" / "step-4").exists():
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR2", "--batch", done.job_id], check=True, timeout=30)
    refused = _wait_for_event(done.run_dir, "requeue_refused")
    assert "max_requeues 0" in str(refused["reason"])
    subprocess.run(["scancel", done.job_id], check=True, timeout=30)
    record = wait_for_state(workspace, done.name, {"CANCELLED", "COMPLETED"}, timeout=120)
    assert record.state == "CANCELLED"
    assert "requeued" not in [event["event"] for event in _events(done.run_dir)]


def test_fork_from_best_snapshot_starts_there_with_the_new_hyperparameter(
    workspace: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "train.py", TRAIN)
    parent = submit_script(
        workspace,
        project_dir,
        "train.py",
        ["--lr", "0.5", "--steps", "25", "--pause", "0"],
        project="forks",
    )
    wait_for_state(workspace, parent.name, {"COMPLETED"}, timeout=120)
    capsys.readouterr()
    assert (
        main(
            ["fork", parent.name, "--snapshot", "best:val_loss", "--set", "lr=0.01", "--gpus", "1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"from {parent.name}:step-14 (step 14)" in out  # |14 - 12| + lr is the least loss
    assert "lr: 0.5 -> 0.01" in out
    child_name = out.split()[1]
    child = wait_for_state(workspace, child_name, {"COMPLETED", "FAILED"}, timeout=120)
    assert child.state == "COMPLETED"
    seen = json.loads((Path(child.run_dir) / "seen-0.json").read_text())
    assert seen == {
        "lr": 0.01,
        "start": 15,
        "resume_from": f"{parent.run_dir}/snapshots/step-14",
    }
    assert child.gpus == 1
    detail = session_detail(workspace.catalog, child_name)
    assert detail["lineage"]["parent"]["session"] == parent.name
    assert detail["lineage"]["parent"]["snapshot"] == "step-14"
    assert detail["lineage"]["parent"]["overrides"] == {"lr": "0.01"}
    assert detail["hyperparameters"]["lr"] == 0.01
    parent_detail = session_detail(workspace.catalog, parent.name)
    assert parent_detail["lineage"]["children"] == [{"session": child_name, "snapshot": "step-14"}]
    parent_record = get_session(workspace.catalog, parent.name)
    assert parent_record.id is not None
    rows = {r.tag: r for r in snapshots_of(workspace.catalog, [parent_record.id])[parent_record.id]}
    assert rows["step-14"].forked_from
    assert main(["model", "rm", parent.name, "step-14"]) == 2
    assert main(["rm", parent.name, "--purge"]) == 2  # would delete the child's start snapshot
    assert Path(parent.run_dir, "snapshots", "step-14", "manifest.json").is_file()


@pytest.mark.slow
def test_time_limit_warning_checkpoints_requeues_and_completes(
    workspace: Workspace, project_dir: Path
) -> None:
    from dataclasses import replace

    from nsml_hpc.job.spec import Preemption, Resources, SessionSpec
    from nsml_hpc.submit.create import prepare, submit

    write_script(project_dir, "train.py", TRAIN)
    spec = SessionSpec(
        project="timelimit",
        script="train.py",
        args=["--steps", "160", "--pause", "0.25", "--stall", "3"],  # ~40 s of work
        resources=Resources(time="1"),
    )
    spec = replace(spec, preemption=Preemption(grace_seconds=30, max_requeues=2))
    prepared = prepare(spec, workspace.settings, project_dir)
    done = submit(prepared, workspace.catalog, workspace.settings, workspace.backend_for("local"))
    assert "#SBATCH --signal=B:USR2@30" in (done.run_dir / "job.sbatch").read_text()
    _wait_for_event(done.run_dir, "checkpointed", timeout=150)
    _wait_for_event(done.run_dir, "requeued", timeout=60)
    assert _finish_releasing_requeues(workspace, done.name, done.job_id) == "COMPLETED"
    sync_now(workspace)
    _assert_continuous(workspace, done.name, 160)
    record = get_session(workspace.catalog, done.name)
    assert record.id is not None
    runs = job_runs_of(workspace.catalog, [record.id])[record.id]
    assert [run.restart_count for run in runs][:2] == [0, 1]
