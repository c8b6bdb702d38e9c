"""ONE contract, every backend: what nsml-hpc needs from a way of reaching Slurm.

Each test runs against the real sandbox Slurm through

- ``local``: Slurm's commands on this machine (the CLI backend),
- ``ssh-paramiko``: alice@127.0.0.1:2222 over paramiko (exec channels + SFTP),
- ``ssh-openssh``: the same account through the system ssh binary and a ControlMaster,
- ``pyslurm``: Slurm's C API through pyslurm 22.5.3, the release for the sandbox's Slurm 22.05
  (vendored in ../shared/vendor/pyslurm/, installed into .venv by scripts/setup.sh). It is
  never skipped: without a pyslurm that drives this Slurm its tests fail with the backend's
  one-line error, which says what to install.
"""

from __future__ import annotations

import itertools
import json
import posixpath
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.pyslurm_backend import PyslurmBackend
from nsml_hpc.backends.remote_shell import EnvChanges
from nsml_hpc.catalog.metrics import metric_lines, metric_rows
from nsml_hpc.catalog.sessions import get_session, list_sessions, state_history
from nsml_hpc.catalog.snapshots import job_runs_of
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.clusters_file import add_profile
from nsml_hpc.config.settings import load_settings
from nsml_hpc.errors import BackendError, SubmitRefused
from nsml_hpc.job.spec import Preemption, Resources, SessionSpec
from nsml_hpc.runfiles.scrape import complete_lines
from nsml_hpc.sessions.actions import follow_logs, read_logs, stop_session, sync_now
from nsml_hpc.sessions.views import session_detail, session_rows
from nsml_hpc.snapshots.actions import list_models, pull_model, remove_model
from nsml_hpc.snapshots.fork import ForkRequest, fork_session
from nsml_hpc.submit.create import prepare, submit
from nsml_hpc.sweeps.grid import expand, parse_grid
from nsml_hpc.sweeps.submit import submit_sweep
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script
from tests.remote import Sandbox

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

BACKENDS = ["local", "ssh-paramiko", "ssh-openssh", "pyslurm"]


@dataclass
class Contract:
    cluster: str
    workspace: Workspace

    def read(self, path: str) -> bytes:
        """A file of the cluster, read through the backend."""
        return self.workspace.backend_for(self.cluster).files.read_from(path, 0, 1 << 30)


@pytest.fixture(params=BACKENDS)
def contract(
    request: pytest.FixtureRequest,
    nsml_env: Path,
    sandbox: Sandbox,
    remote_root: str,
    control_dir: Path,
) -> Iterator[Contract]:
    kind = request.param
    if kind == "ssh-paramiko":
        cluster = sandbox.add("sandbox", remote_root).name
    elif kind == "ssh-openssh":
        cluster = sandbox.add(
            "sandbox-openssh", remote_root, transport="openssh", control_path=f"{control_dir}/%C"
        ).name
    elif kind == "pyslurm":
        add_profile(ClusterProfile(name="pyslurm", backend="pyslurm"))
        cluster = "pyslurm"
    else:
        cluster = "local"
    workspace = Workspace.open(load_settings())
    yield Contract(cluster, workspace)
    workspace.close()


DEVICES = """
    import os, nsml_hpc
    ids = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
    print("devices", os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
    nsml_hpc.report(step=0, visible_gpus=len(ids))
"""


def test_submit_with_gpus_gives_the_job_exactly_those_gpus(
    contract: Contract, project_dir: Path
) -> None:
    write_script(project_dir, "devices.py", DEVICES)
    done = submit_script(
        contract.workspace, project_dir, "devices.py", gpus=2, cluster=contract.cluster
    )
    record = wait_for_state(contract.workspace, done.name, {"COMPLETED", "FAILED"})
    assert (record.state, record.cluster) == ("COMPLETED", contract.cluster)
    assert json.loads(record.last_metrics_json) == {"visible_gpus": 2}
    started = [
        e
        for e in session_detail(contract.workspace.catalog, done.name)["events"]
        if e["event"] == "started"
    ]
    assert len(started[0]["cuda_visible_devices"].split(",")) == 2
    script = contract.read(posixpath.join(record.run_dir, "job.sbatch")).decode()
    assert "#SBATCH --gres=gpu:2" in script


def test_states_go_from_submitted_through_running_to_completed(
    contract: Contract, project_dir: Path
) -> None:
    write_script(project_dir, "wait.py", "import time\ntime.sleep(4)\n")
    done = submit_script(contract.workspace, project_dir, "wait.py", cluster=contract.cluster)
    assert get_session(contract.workspace.catalog, done.name).state == "SUBMITTED"
    wait_for_state(contract.workspace, done.name, {"RUNNING"}, timeout=120)
    wait_for_state(contract.workspace, done.name, {"COMPLETED"}, timeout=120)
    record = get_session(contract.workspace.catalog, done.name)
    assert record.id is not None
    states = [change.state for change in state_history(contract.workspace.catalog, record.id)]
    assert states[0] == "SUBMITTED"
    assert states.index("RUNNING") < states.index("COMPLETED") == len(states) - 1


def test_pending_reason_is_shown_while_the_gpus_are_taken(
    contract: Contract, project_dir: Path
) -> None:
    write_script(project_dir, "hold.py", "import time\ntime.sleep(60)\n")
    write_script(project_dir, "quick.py", "print('ran')\n")
    ws = contract.workspace
    # Both want every GPU of the node: the second cannot start (not even by backfill on a GPU
    # another user's job left free) while the first runs or waits ahead of it.
    hold = submit_script(ws, project_dir, "hold.py", gpus=4, cluster=contract.cluster)
    waiting = submit_script(ws, project_dir, "quick.py", gpus=4, cluster=contract.cluster)
    record = wait_for_state(ws, waiting.name, {"PENDING"}, timeout=120)
    deadline = time.monotonic() + 60
    while record.reason is None and time.monotonic() < deadline:
        record = wait_for_state(ws, waiting.name, {"PENDING", "RUNNING"})
    # Resources while our 4-GPU job runs; Priority if other users' jobs queue ahead of it.
    assert record.reason in ("Resources", "Priority")
    row = next(row for row in session_rows(ws.catalog) if row.name == waiting.name)
    assert row.state_text == f"PENDING ({record.reason})"
    stop_session(ws, hold.name)
    assert wait_for_state(ws, waiting.name, {"COMPLETED"}, timeout=180).state == "COMPLETED"


def test_stop_cancels_a_running_session(contract: Contract, project_dir: Path) -> None:
    write_script(project_dir, "long.py", "import time\nprint('up', flush=True)\ntime.sleep(120)\n")
    done = submit_script(contract.workspace, project_dir, "long.py", cluster=contract.cluster)
    wait_for_state(contract.workspace, done.name, {"RUNNING"}, timeout=120)
    assert stop_session(contract.workspace, done.name) == [done.job_id]
    record = wait_for_state(contract.workspace, done.name, {"CANCELLED"}, timeout=120)
    assert record.ended_at is not None


METRICS = """
    import time, nsml_hpc
    for step in range(3):
        nsml_hpc.report(step=step, loss=1.0 / (step + 1), acc=step / 10)
    time.sleep(5)
    for step in range(3, 8):
        nsml_hpc.report(step=step, loss=1.0 / (step + 1), acc=step / 10)
"""


def test_metrics_are_scraped_from_the_stored_offset_and_match_the_file(
    contract: Contract, project_dir: Path
) -> None:
    ws = contract.workspace
    write_script(project_dir, "metrics.py", METRICS)
    done = submit_script(ws, project_dir, "metrics.py", cluster=contract.cluster)
    files = ws.backend_for(contract.cluster).files
    reads: list[tuple[str, int, int]] = []
    original = files.read_many

    def logged(requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        chunks = original(requests)
        for (path, offset, _), raw in zip(requests, chunks, strict=True):
            reads.append((path, offset, complete_lines(raw, offset)[1]))
        return chunks

    files.read_many = logged  # type: ignore[method-assign]
    record = wait_for_state(ws, done.name, {"RUNNING"}, timeout=120)
    deadline = time.monotonic() + 60
    while record.metric_count < 6 and record.state == "RUNNING" and time.monotonic() < deadline:
        record = wait_for_state(ws, done.name, {"RUNNING", "COMPLETED"})
    record = wait_for_state(ws, done.name, {"COMPLETED"}, timeout=120)
    assert record.id is not None
    in_file = [
        json.loads(line)
        for line in contract.read(posixpath.join(record.run_dir, "metrics.jsonl")).splitlines()
    ]
    assert metric_lines(ws.catalog, record.id) == in_file
    assert [line["step"] for line in in_file] == list(range(8))
    metric_reads = [(offset, new) for path, offset, new in reads if path.endswith("metrics.jsonl")]
    assert len(metric_reads) >= 2  # ingested in more than one sync ...
    for (_, previous_end), (start, _) in itertools.pairwise(metric_reads):
        assert start == previous_end  # ... each one reading on from where the last stopped


LOGS = """
    import time
    for i in range(4):
        print(f"line {i}", flush=True)
        time.sleep(0.5)
"""


def test_logs_are_read_and_followed_until_the_session_ends(
    contract: Contract, project_dir: Path
) -> None:
    ws = contract.workspace
    write_script(project_dir, "talk.py", LOGS)
    done = submit_script(ws, project_dir, "talk.py", cluster=contract.cluster)
    followed = b"".join(follow_logs(ws, done.name, interval=0.3))
    assert [f"line {i}".encode() for i in range(4)] == followed.splitlines()
    record = get_session(ws.catalog, done.name)
    assert record.state == "COMPLETED"
    assert b"".join(read_logs(ws, done.name)) == contract.read(
        posixpath.join(record.run_dir, f"slurm-{done.job_id}.out")
    )


def test_a_refused_submission_records_nothing_and_leaves_no_run_directory(
    contract: Contract, project_dir: Path
) -> None:
    write_script(project_dir, "train.py", "print('never runs')\n")
    with pytest.raises(SubmitRefused, match="Requested node configuration is not available"):
        submit_script(contract.workspace, project_dir, "train.py", gpus=5, cluster=contract.cluster)
    assert list_sessions(contract.workspace.catalog) == []
    backend = contract.workspace.backend_for(contract.cluster)
    sessions = backend.files.list_dir(_project_folder(contract)) or []
    assert [entry.name for entry in sessions] == []


def _project_folder(contract: Contract) -> str:
    from nsml_hpc.submit.rundir import project_dir, run_root_for

    backend = contract.workspace.backend_for(contract.cluster)
    settings = contract.workspace.settings
    root = run_root_for(settings.profile(contract.cluster), settings.run_root, backend.files)
    return project_dir(root, backend.user, "itest")


def test_run_directory_files_read_list_copy_and_delete_through_every_backend(
    contract: Contract, tmp_path: Path
) -> None:
    """The file methods snapshots, capture and gc use (stat, list_dir, read_bytes, copy_out,
    remove_tree) behave the same on every transport."""
    files = contract.workspace.backend_for(contract.cluster).files
    base = posixpath.join(_project_folder(contract), "files-contract")
    folder = posixpath.join(base, "snap")
    files.make_dirs(posixpath.join(folder, "sub"))
    files.write_files(folder, {"a.txt": b"alpha\n", "sub/b.bin": b"\0" * 10})
    info = files.stat(posixpath.join(folder, "a.txt"))
    assert info is not None and (info.size, info.is_dir) == (6, False)
    folder_info = files.stat(folder)
    assert folder_info is not None and folder_info.is_dir
    assert files.stat(posixpath.join(folder, "gone")) is None
    entries = files.list_dir(folder)
    assert entries is not None
    assert sorted((e.name, e.is_dir) for e in entries) == [("a.txt", False), ("sub", True)]
    assert all(e.mtime_ns > 0 for e in entries)
    assert files.list_dir(posixpath.join(folder, "gone")) is None
    assert files.read_bytes(posixpath.join(folder, "a.txt"), 100) == b"alpha\n"
    assert files.read_bytes(posixpath.join(folder, "a.txt"), 2) == b"alp"  # limit + 1: too big
    assert files.read_bytes(posixpath.join(folder, "gone"), 100) is None
    files.copy_out(folder, tmp_path / "copy")
    assert (tmp_path / "copy" / "a.txt").read_bytes() == b"alpha\n"
    assert (tmp_path / "copy" / "sub" / "b.bin").read_bytes() == b"\0" * 10
    with pytest.raises(BackendError, match="refusing to delete"):
        files.remove_tree(folder, inside=_project_folder(contract))  # not directly in there
    with pytest.raises(BackendError, match="refusing to delete"):
        files.remove_tree(posixpath.join(folder, "a.txt"), inside=folder)  # a file
    files.remove_tree(folder, inside=base)
    assert files.stat(folder) is None
    files.remove_tree(folder, inside=base)  # already gone: fine
    files.remove_tree(base, inside=_project_folder(contract))


SWEEP = """
    import nsml_hpc
    nsml_hpc.report(step=0, lr=nsml_hpc.session.hyperparameters["lr"])
"""


def test_a_sweep_is_one_job_array_on_every_backend(contract: Contract, project_dir: Path) -> None:
    ws = contract.workspace
    write_script(project_dir, "sweep.py", SWEEP)
    spec = SessionSpec(project="itest", script="sweep.py", cluster=contract.cluster)
    done = submit_sweep(
        prepare(spec, ws.settings, project_dir),
        expand([parse_grid("lr=0.1,0.2")]),
        ws.catalog,
        ws.settings,
        ws.backend_for(contract.cluster),
    )
    assert len(done.array_ids) == 1
    seen = set()
    for name in done.sessions:
        record = wait_for_state(ws, name, {"COMPLETED", "FAILED"}, timeout=180)
        assert (record.state, record.cluster) == ("COMPLETED", contract.cluster)
        seen.add(json.loads(record.last_metrics_json)["lr"])
        member = json.loads(contract.read(posixpath.join(record.run_dir, "session.json")))["sweep"]
        table = json.loads(contract.read(posixpath.join(member["dir"], "sweep.json")))
        assert table["sessions"][member["index"]]["session"] == name
    assert seen == {0.1, 0.2}


# Writes a CSV log of its own (zero-code capture) and two snapshots; a fork resumes from one.
SNAPSHOTTING = """
    import argparse, json, os, nsml_hpc
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    session = nsml_hpc.session
    start = 0
    if session.resume_from is not None:
        start = json.loads((session.resume_from / "state.json").read_text())["step"] + 1
    with open(session.run_dir / "seen.json", "w") as out:
        json.dump({"lr": args.lr, "start": start}, out)
    os.makedirs("logs", exist_ok=True)
    with open("logs/metrics.csv", "w") as out:
        out.write("step,train_loss\\n")
        for step in range(start, start + 3):
            out.write(f"{step},{1.0 / (step + 1)}\\n")
    for step in range(start, start + 2):
        with nsml_hpc.save(step=step) as folder:
            (folder / "state.json").write_text(json.dumps({"step": step}))
"""


def test_capture_snapshots_and_forks_work_on_every_backend(
    contract: Contract, project_dir: Path, tmp_path: Path
) -> None:
    ws = contract.workspace
    write_script(project_dir, "snap.py", SNAPSHOTTING)
    parent = submit_script(ws, project_dir, "snap.py", ["--lr", "0.5"], cluster=contract.cluster)
    record = wait_for_state(ws, parent.name, {"COMPLETED", "FAILED"}, timeout=180)
    assert record.state == "COMPLETED" and record.id is not None
    sync_now(ws)  # the final look for captured logs
    losses = sorted(
        (p.step, p.value) for p in metric_rows(ws.catalog, record.id) if p.name == "train_loss"
    )
    assert [step for step, _ in losses] == list(range(3))
    assert [value for _, value in losses] == pytest.approx([1.0 / (step + 1) for step in range(3)])
    tags = [row.tag for row in list_models(ws, parent.name).snapshots]
    assert tags == ["step-0", "step-1"]
    pulled = pull_model(ws, parent.name, "step-1", tmp_path / "pulled")
    assert json.loads((pulled / "state.json").read_text()) == {"step": 1}
    forked = fork_session(ws, ForkRequest(parent=parent.name, snapshot="step-1", sets=["lr=0.01"]))
    assert forked.submitted is not None
    child = wait_for_state(ws, forked.submitted.name, {"COMPLETED", "FAILED"}, timeout=180)
    assert (child.state, child.cluster) == ("COMPLETED", contract.cluster)
    seen = json.loads(contract.read(posixpath.join(child.run_dir, "seen.json")))
    assert seen == {"lr": 0.01, "start": 2}
    remove_model(ws, parent.name, "step-0")  # not forked from: deleted through the backend
    assert [row.tag for row in list_models(ws, parent.name).snapshots] == ["step-1"]
    files = ws.backend_for(contract.cluster).files
    assert files.stat(posixpath.join(record.run_dir, "snapshots", "step-0")) is None


def _count_accounting_queries(contract: Contract, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one for each accounting query the backend makes: each
    ``pyslurm.db.Jobs.load`` (pyslurm), each ``sacct`` run (the command backends)."""
    calls: list[int] = []
    backend = contract.workspace.backend_for(contract.cluster)
    if isinstance(backend, PyslurmBackend):
        real_db = backend.api.module.db

        def load(*args: Any) -> Any:
            calls.append(1)
            return real_db.Jobs.load(*args)

        counted = SimpleNamespace(JobFilter=real_db.JobFilter, Jobs=SimpleNamespace(load=load))
        monkeypatch.setattr(backend.api.module, "db", counted)
        return calls
    assert isinstance(backend, CliBackend)
    runner = backend.runner
    real_run = runner.run

    def run(argv: list[str], *, timeout: float, env: EnvChanges | None = None) -> Any:
        if argv[0] == "sacct":
            calls.append(1)
        return real_run(argv, timeout=timeout, env=env)

    monkeypatch.setattr(runner, "run", run)
    return calls


def test_one_accounting_query_per_sync_however_many_sessions(
    contract: Contract, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = contract.workspace
    write_script(project_dir, "nap.py", "import time\ntime.sleep(2)\n")
    names = [
        submit_script(ws, project_dir, "nap.py", cluster=contract.cluster).name for _ in range(4)
    ]
    spec = SessionSpec(project="itest", script="nap.py", cluster=contract.cluster)
    sweep = submit_sweep(
        prepare(spec, ws.settings, project_dir),
        expand([parse_grid("lr=0.1,0.2,0.3")]),
        ws.catalog,
        ws.settings,
        ws.backend_for(contract.cluster),
    )
    names += sweep.sessions
    queries = _count_accounting_queries(contract, monkeypatch)
    asked = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        before = len(queries)
        report = sync_now(ws)
        if contract.cluster in report.queried:
            assert len(queries) - before == 1  # ONE query for all 7 sessions
            asked += 1
        if {get_session(ws.catalog, name).state for name in names} == {"COMPLETED"}:
            break
        time.sleep(0.6)  # past the 0.5 s poll floor
    assert {get_session(ws.catalog, name).state for name in names} == {"COMPLETED"}
    assert asked >= 2


# Trains ~40 s; the 1-minute limit's warning (30 s before it) makes it snapshot and the
# wrapper requeue the job, which then resumes from that snapshot and completes (a second run
# that the warning reaches again is requeued once more: max_requeues=2).
REQUEUED = """
    import json, time, nsml_hpc
    session = nsml_hpc.session
    step = 0
    if session.resume_from is not None:
        step = json.loads((session.resume_from / "state.json").read_text())["step"] + 1
    warned = False
    while step < 160:
        nsml_hpc.report(step=step, loss=1.0 / (step + 1))
        if nsml_hpc.should_checkpoint() and not warned:
            warned = True
            with nsml_hpc.save(step=step) as folder:
                (folder / "state.json").write_text(json.dumps({"step": step}))
            time.sleep(60)  # the wrapper requeues the job meanwhile
        step += 1
        time.sleep(0.25)
"""


def _squeue_state(job_id: str) -> tuple[str, str]:
    done = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T|%r"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    state, _, reason = done.stdout.strip().partition("|")
    return state, reason


def test_a_time_limit_warning_requeues_the_job_and_the_session_completes(
    contract: Contract, project_dir: Path
) -> None:
    """The ``--signal`` directive reaches Slurm (pyslurm before 24.5 drops it unless applied),
    ``--requeue`` holds, and sync follows the same job id through its second run."""
    ws = contract.workspace
    write_script(project_dir, "requeued.py", REQUEUED)
    spec = SessionSpec(
        project="itest",
        script="requeued.py",
        cluster=contract.cluster,
        resources=Resources(time="1"),
        preemption=Preemption(grace_seconds=30, max_requeues=2),
    )
    done = submit(
        prepare(spec, ws.settings, project_dir),
        ws.catalog,
        ws.settings,
        ws.backend_for(contract.cluster),
    )
    deadline = time.monotonic() + 300
    held_since: float | None = None
    record = get_session(ws.catalog, done.name)
    while time.monotonic() < deadline and record.state not in ("COMPLETED", "FAILED", "TIMEOUT"):
        # Slurm holds a requeued job for 120 s (BeginTime); start it 2 s into that instead.
        state, reason = _squeue_state(done.job_id)
        held = state == "PENDING" and reason == "BeginTime"
        held_since = (held_since or time.monotonic()) if held else None
        if held_since is not None and time.monotonic() - held_since >= 2.0:
            subprocess.run(
                ["scontrol", "update", f"JobId={done.job_id}", "StartTime=now"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        sync_now(ws)
        record = get_session(ws.catalog, done.name)
        time.sleep(0.5)
    assert record.state == "COMPLETED" and record.id is not None
    sync_now(ws)
    events = [
        json.loads(line)["event"]
        for line in contract.read(posixpath.join(record.run_dir, "events.jsonl")).splitlines()
    ]
    assert "signal" in events and "requeued" in events and "resumed" in events
    runs = job_runs_of(ws.catalog, [record.id])[record.id]
    assert [(run.job_id, run.restart_count) for run in runs][:2] == [
        (done.job_id, 0),
        (done.job_id, 1),
    ]
    assert {run.job_id for run in runs} == {done.job_id}  # one job id through every run
    steps = [line["step"] for line in metric_lines(ws.catalog, record.id)]
    assert steps == list(range(160))  # continuous across the requeue, no step twice


def test_stopping_one_task_of_a_sweep_cancels_that_task_only(
    contract: Contract, project_dir: Path
) -> None:
    ws = contract.workspace
    write_script(project_dir, "long.py", "import time\ntime.sleep(120)\n")
    spec = SessionSpec(project="itest", script="long.py", cluster=contract.cluster)
    sweep = submit_sweep(
        prepare(spec, ws.settings, project_dir),
        expand([parse_grid("lr=0.1,0.2")]),
        ws.catalog,
        ws.settings,
        ws.backend_for(contract.cluster),
    )
    first, second = sweep.sessions
    wait_for_state(ws, first, {"RUNNING"}, timeout=120)
    stopped = stop_session(ws, first)
    assert stopped[0].endswith("_0")  # an array task, named as Slurm names it
    assert wait_for_state(ws, first, {"CANCELLED"}, timeout=120).state == "CANCELLED"
    assert get_session(ws.catalog, second).state in ("PENDING", "RUNNING")
    stop_session(ws, second)
    assert wait_for_state(ws, second, {"CANCELLED"}, timeout=120).state == "CANCELLED"


ISSUE12 = """
    import os, time, nsml_hpc
    folder = nsml_hpc.session.dataset
    lines = len((folder / "train.txt").read_text().splitlines())
    os.makedirs("checkpoints", exist_ok=True)
    step, changed = 0, None
    while step < 300:
        lr = nsml_hpc.hparam("lr", 0.1)
        if lr != 0.1 and changed is None:
            changed = step
        nsml_hpc.report(step=step, lr=lr)  # the step an hparam event records comes from here
        print(f"epoch 0 step {step} loss={1.0 / (step + 1):.4f} lines={lines}", flush=True)
        if changed is not None and step >= changed + 3:
            break
        step += 1
        time.sleep(0.2)
    with open(f"checkpoints/epoch=0-step={step}.ckpt", "wb") as out:
        out.write(b"ckpt")
"""


def test_datasets_live_changes_printed_metrics_and_found_checkpoints_on_every_backend(
    contract: Contract, project_dir: Path, tmp_path: Path
) -> None:
    """Issue 12's paths through each backend's files: a dataset pushed and staged, a change
    set while the job runs (written through the backend), metrics read from the printed
    output, and a checkpoint file the script wrote, listed, pulled and removed."""
    from nsml_hpc.job.spec import DatasetUse

    ws = contract.workspace
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("a\nb\nc\n")
    pushed = ws.push_dataset("tiny", data, contract.cluster)
    assert pushed.created and pushed.version.label == "tiny:1"
    assert [v.label for v in ws.datasets(contract.cluster)] == ["tiny:1"]
    write_script(project_dir, "train.py", ISSUE12)
    spec = SessionSpec(
        project="contract12",
        script="train.py",
        args=["--lr", "0.1"],
        cluster=contract.cluster,
        dataset=DatasetUse("tiny", None, True),
        capture_stdout=True,
    )
    prepared = prepare(ws.resolve_dataset(spec), ws.settings, project_dir)
    done = ws.submit(prepared)
    wait_for_state(ws, done.name, {"RUNNING"}, timeout=180)
    deadline = time.monotonic() + 120
    while get_session(ws.catalog, done.name).last_step is None:
        assert time.monotonic() < deadline
        sync_now(ws)
        time.sleep(0.5)
    changed = ws.set_hyperparameters(done.name, ["lr=0.01"])
    assert changed.version == 1
    record = wait_for_state(ws, done.name, {"COMPLETED", "FAILED"}, timeout=180)
    assert record.state == "COMPLETED" and record.id is not None
    sync_now(ws)
    (change,) = ws.hyperparameter_changes([done.name])[done.name]
    assert change.changes == {"lr": 0.01} and change.step is not None
    points = [p for p in metric_rows(ws.catalog, record.id) if p.name == "loss"]
    assert sorted(p.step or 0 for p in points) == list(range(change.step + 4))
    assert {p.value for p in metric_rows(ws.catalog, record.id) if p.name == "lines"} == {3.0}
    tag = f"code/checkpoints/epoch=0-step={change.step + 3}.ckpt"
    deadline = time.monotonic() + 30
    while True:
        rows = {row.tag: row for row in list_models(ws, done.name).snapshots}
        if tag in rows and not rows[tag].writing:
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.5)
    assert (rows[tag].found, rows[tag].step) == ("lightning", change.step + 3)
    pulled = pull_model(ws, done.name, tag, tmp_path)
    assert pulled.read_bytes() == b"ckpt"
    files = ws.backend_for(contract.cluster).files
    assert files.stat(posixpath.join(record.run_dir, tag)) is not None
    removed = ws.remove_dataset(contract.cluster, "tiny:1")
    assert [v.label for v in removed] == ["tiny:1"]
