"""Multi-node sessions on the sandbox's two-node cluster ``duo`` (docs/sandbox.md): two slurmd
in their own network and UTS namespaces, ``duo1`` = 10.231.0.11 and ``duo2`` = 10.231.0.12,
2 fake GPUs each, reached with ``SLURM_CONF=/etc/slurm-duo/slurm.conf``. nsml-hpc targets it
through a cluster profile (``cluster add duo --backend local --slurm-conf ...``).

What is proven here: ranks on two different hosts find each other through the rendezvous (a
real TCP exchange; a torch.distributed gloo all-reduce with torchrun when torch can be
installed); rank 0 alone writes metrics and snapshots; a multi-node session warned with USR2
checkpoints, requeues and resumes as one session; ``--gpus-per-node 2 --nodes 2`` holds two
devices on each node; ``--after`` waits for its parent; every new flag reaches Slurm; and bad
input (too many nodes, a GPU type nobody has, ``--after`` across clusters) is one line with
nothing submitted. Slurm holds a requeued job ~120 s (BeginTime); the preemption test
releases it with ``scontrol update StartTime=now`` as tests/slurm/test_preemption.py does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nsml_hpc.catalog.metrics import metric_lines
from nsml_hpc.catalog.sessions import get_session, list_sessions
from nsml_hpc.catalog.snapshots import job_runs_of
from nsml_hpc.cli import main
from nsml_hpc.config.settings import load_settings
from nsml_hpc.sessions.views import session_detail
from nsml_hpc.workspace import Workspace
from tests.helpers import wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

DUO_CONF = "/etc/slurm-duo/slurm.conf"
DUO_UNAVAILABLE = Path("/var/lib/nsml-sandbox/duo.unavailable")
TORCH_VENV = Path(os.environ.get("NSML_HPC_TEST_TORCH_VENV", "/var/tmp/nsml-torch-venv"))


def duo(*argv: str, check: bool = True) -> str:
    """A Slurm command on the duo cluster; its stdout."""
    done = subprocess.run(
        list(argv),
        env={**os.environ, "SLURM_CONF": DUO_CONF},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture(scope="session")
def duo_nodes(slurm_sandbox: str) -> list[str]:
    """The two nodes of ``duo``, usable. Skipped only where the sandbox itself says it
    cannot make network namespaces (it writes why); a duo that should be up but does not
    answer fails the tests."""
    if DUO_UNAVAILABLE.is_file():
        pytest.skip(f"the sandbox has no duo cluster here: {DUO_UNAVAILABLE.read_text().strip()}")
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline:
        out = duo("sinfo", "--noheader", "--Node", "--format=%N %t", check=False)
        lines = sorted({line.strip() for line in out.splitlines() if line.strip()})
        if len(lines) == 2 and all(line.split()[1] in ("idle", "mix", "alloc") for line in lines):
            return [line.split()[0] for line in lines]
        time.sleep(1)
    pytest.fail(
        f"the duo cluster does not answer with two usable nodes (SLURM_CONF={DUO_CONF} sinfo: "
        f"{lines or 'no answer'}); bring it up with sandbox/slurm-sandbox.sh up"
    )


@pytest.fixture
def duo_cluster(nsml_env: Path, duo_nodes: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Cluster ``duo`` in this test's profiles, added the way a user adds it."""
    assert main(["cluster", "add", "duo", "--backend", "local", "--slurm-conf", DUO_CONF]) == 0
    capsys.readouterr()
    return "duo"


@pytest.fixture
def workspace_duo(duo_cluster: str) -> Iterator[Workspace]:
    ws = Workspace.open(load_settings())
    yield ws
    ws.close()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _submit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str, Path]:
    """``nsml-hpc submit --cluster duo ARGV``: (session, job id, run dir)."""
    code, out, err = _cli(capsys, "submit", "--cluster", "duo", *argv)
    assert code == 0, err
    words = out.split()
    name, job_id, run_dir = words[1], words[3].rstrip(")"), Path(words[-1])
    return name, job_id, run_dir


def _events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _sacct(job_id: str, fields: str) -> dict[str, str]:
    out = duo("sacct", "-X", "-n", "-P", "-j", job_id, f"--format={fields}")
    values = out.strip().splitlines()[0].split("|")
    return dict(zip(fields.split(","), values, strict=True))


def _scontrol_job(job_id: str, details: bool = False) -> str:
    return duo("scontrol", "show", "job", *(["-d"] if details else []), job_id)


def _node_addr(node: str) -> str:
    out = duo("scontrol", "show", "node", node)
    return next(w.split("=", 1)[1] for w in out.split() if w.startswith("NodeAddr="))


def _jobs_under(folder: Path) -> list[str]:
    """duo jobs whose working directory lies in ``folder`` (queued, or ran on a node)."""
    out = duo("sacct", "-a", "-X", "-n", "-P", "--starttime=now-1hours", "--format=JobID,WorkDir")
    queued = duo("squeue", "--noheader", "--format=%i|%Z")
    return [
        line.split("|")[0]
        for line in (out + queued).splitlines()
        if "|" in line and line.split("|")[1].startswith(str(folder))
    ]


RENDEZVOUS = """
    import json, os, socket, time, nsml_hpc
    s = nsml_hpc.session
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    me = socket.gethostname()
    seen = {}
    if s.rank == 0:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(s.world_size)
        server.settimeout(60)
        for _ in range(s.world_size - 1):
            conn, (peer_ip, _) = server.accept()
            seen[conn.recv(100).decode()] = peer_ip
            conn.sendall(me.encode())
            conn.close()
    else:
        for attempt in range(300):
            try:
                conn = socket.create_connection((addr, port), timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        conn.sendall(me.encode())
        seen[conn.recv(100).decode()] = addr
    result = {
        "rank": s.rank, "world": s.world_size, "local_rank": s.local_rank, "host": me,
        "node_rank": s.node_rank, "master": f"{addr}:{port}", "seen": seen,
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    (s.run_dir / f"rank-{s.rank}.json").write_text(json.dumps(result))
    nsml_hpc.report(step=0, value=100 + s.rank)
    nsml_hpc.report_rank(step=0, value=s.rank)
    with nsml_hpc.save(step=0) as folder:
        (folder / "who").write_text(str(s.rank))
    hold = s.run_dir / "release"
    while s.hyperparameters.get("hold") and not hold.exists():
        time.sleep(0.2)
"""


def _ranks(run_dir: Path) -> dict[int, dict[str, Any]]:
    return {
        int(path.stem.split("-")[1]): json.loads(path.read_text())
        for path in run_dir.glob("rank-*.json")
    }


def test_two_ranks_on_two_hosts_meet_through_the_rendezvous_and_rank_0_alone_records(
    workspace_duo: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "rdv.py", RENDEZVOUS)
    name, job_id, run_dir = _submit(
        capsys, "--nodes", "2", "--gpus-per-node", "2", "--launch", "srun", "rdv.py"
    )
    record = wait_for_state(workspace_duo, name, {"COMPLETED", "FAILED", "CANCELLED"}, 120)
    assert record.state == "COMPLETED", (run_dir / f"slurm-{job_id}.out").read_text()

    ranks = _ranks(run_dir)
    assert sorted(ranks) == [0, 1]
    assert {ranks[0]["host"], ranks[1]["host"]} == {"duo1", "duo2"}  # two different hosts
    first = ranks[0]["host"]
    assert first == "duo1" and ranks[0]["node_rank"] == 0 and ranks[1]["node_rank"] == 1
    # MASTER_ADDR is the first node's NodeAddr; rank 1 reached rank 0 there, and rank 0 saw
    # rank 1 arrive from the other node's address.
    master_addr = _node_addr(first)
    assert ranks[1]["master"].split(":")[0] == master_addr == "10.231.0.11"
    assert ranks[0]["seen"] == {"duo2": _node_addr("duo2")}
    assert ranks[1]["seen"] == {"duo1": master_addr}
    assert all(r["world"] == 2 and r["local_rank"] == 0 for r in ranks.values())

    # Rank 0 alone writes metrics and snapshots; per-rank lines are tagged and relayed.
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["value"] for line in lines if "value" in line] == [100]
    assert sorted(k for line in lines for k in line if k.startswith("value/")) == [
        "value/rank0",
        "value/rank1",
    ]
    assert [p.name for p in (run_dir / "snapshots").iterdir()] == ["step-0"]
    assert (run_dir / "snapshots" / "step-0" / "who").read_text() == "0"
    assert not list((run_dir / "snapshots").glob(".*"))

    # The wrapper ran once per node; each node's events came through the relay.
    events = _events(run_dir)
    started = [e for e in events if e["event"] == "task_started"]
    assert sorted((e["host"], e["node"], e["task"]) for e in started) == [
        ("duo1", 0, 0),
        ("duo2", 1, 1),
    ]
    assert [e["exit_code"] for e in events if e["event"] == "task_ended"] == [0, 0]
    launch = next(e for e in events if e["event"] == "started")
    assert (launch["launch"], launch["master_addr"]) == ("srun", master_addr)

    # Slurm agrees: two nodes, two GPUs on each.
    acct = _sacct(job_id, "NNodes,NodeList,AllocTRES,State")
    assert (acct["NNodes"], acct["State"]) == ("2", "COMPLETED")
    assert "gres/gpu=4" in acct["AllocTRES"] and "node=2" in acct["AllocTRES"]

    # ps and show name the nodes and how each did.
    code, out, _ = _cli(capsys, "ps", "--no-sync")
    assert code == 0 and "NODES" in out and "duo1 ok, duo2 ok" in out and "2x2" in out
    code, out, _ = _cli(capsys, "show", name, "--no-sync")
    assert code == 0
    assert "launch      srun on 2 node(s): duo[1-2]" in out
    assert "duo1             ok" in out and "duo2             ok" in out
    detail = session_detail(workspace_duo.catalog, name)
    assert [n["host"] for n in detail["node_states"]] == ["duo1", "duo2"]


def test_typed_gpus_per_node_give_each_node_its_own_two_devices(
    workspace_duo: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "rdv.py", RENDEZVOUS)
    name, job_id, run_dir = _submit(
        capsys,
        "--nodes",
        "2",
        "--gpus-per-node",
        "a100:2",
        "--launch",
        "srun",
        "rdv.py",
        "--hold",
        "1",
    )
    other: str | None = None
    try:
        wait_for_state(workspace_duo, name, {"RUNNING"}, 120)
        deadline = time.monotonic() + 60
        while len(_ranks(run_dir)) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        detail = _scontrol_job(job_id, details=True)
        # The type reached Slurm: sbatch asked for gpu:a100:2 on each node.
        assert "TresPerNode=gres:gpu:a100:2" in detail, detail
        # Slurm lists nodes with the same allocation on one line: GPUs 0-1 of EACH node.
        assert "JOB_GRES=gpu:a100:4" in detail
        per_node = [line.strip() for line in detail.splitlines() if "GRES=gpu:" in line]
        assert any(
            line.startswith("Nodes=duo[1-2] ") and line.endswith("GRES=gpu:a100:2(IDX:0-1)")
            for line in per_node
        ), detail
        used = duo("sinfo", "-h", "-N", "-O", "NodeHost:|,GresUsed:|").split()
        assert sorted(used) == [
            "duo1|gpu:a100:2(IDX:0-1)|",
            "duo2|gpu:a100:2(IDX:0-1)|",
        ]  # all in use
        # Every GPU of both nodes is this job's: one more GPU job on duo has to wait.
        other = duo("sbatch", "--parsable", "--gres=gpu:1", "--output=/dev/null", "--wrap=true")
        other = other.strip().split(";")[0]
        deadline = time.monotonic() + 30
        reason = ""
        while time.monotonic() < deadline and reason != "Resources":
            reason = duo("squeue", "-h", "-j", other, "-o", "%r").strip()
            time.sleep(0.5)
        assert reason == "Resources"
    finally:
        (run_dir / "release").write_text("go")
    record = wait_for_state(workspace_duo, name, {"COMPLETED", "FAILED", "CANCELLED"}, 120)
    assert record.state == "COMPLETED"
    ranks = _ranks(run_dir)
    assert {(r["host"], r["cuda"]) for r in ranks.values()} == {("duo1", "0,1"), ("duo2", "0,1")}
    if other:
        duo("scancel", other, check=False)


def test_a_multi_node_session_warned_with_usr2_resumes_as_one_session(
    workspace_duo: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(
        project_dir,
        "train.py",
        """
        import json, time, nsml_hpc
        s = nsml_hpc.session
        start, weight = 0, 0.0
        if s.resume_from is not None:
            state = json.loads((s.resume_from / "state.json").read_text())
            start, weight = state["step"] + 1, state["weight"]
        (s.run_dir / f"seen-{s.restart_count}-{s.rank}.json").write_text(
            json.dumps({"start": start, "host": __import__("socket").gethostname()})
        )
        warned = False
        for step in range(start, 30):
            weight += 0.5
            nsml_hpc.report(step=step, weight=weight)
            if nsml_hpc.should_checkpoint() and not warned:
                warned = True
                with nsml_hpc.save(step=step) as folder:
                    (folder / "state.json").write_text(json.dumps({"step": step, "weight": weight}))
                time.sleep(60)  # the wrapper stops every rank once the snapshot is in
            time.sleep(0.2)
        """,
    )
    name, job_id, run_dir = _submit(
        capsys, "--nodes", "2", "--gpus", "1", "--launch", "srun", "--grace", "40", "train.py"
    )
    wait_for_state(workspace_duo, name, {"RUNNING"}, 120)
    deadline = time.monotonic() + 60
    while len(list(run_dir.glob("seen-0-*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(1.0)  # a few steps in
    duo("scancel", "--signal=USR2", "--batch", job_id)
    _release_requeued(job_id)
    record = wait_for_state(workspace_duo, name, {"COMPLETED", "FAILED", "CANCELLED"}, 180)
    assert record.state == "COMPLETED", (run_dir / f"slurm-{job_id}.out").read_text()

    assert [s.name for s in list_sessions(workspace_duo.catalog)] == [name]  # one session
    events = _events(run_dir)
    kinds = [e["event"] for e in events]
    assert kinds.count("started") == 2 and "checkpointed" in kinds and "requeued" in kinds
    checkpoint = next(e for e in events if e["event"] == "checkpointed")
    first_run = kinds.index("requeued")
    stopped = [e for e in events[:first_run] if e["event"] == "task_ended"]
    assert sorted(e["host"] for e in stopped) == ["duo1", "duo2"]  # both nodes' ranks stopped
    assert all(e["exit_code"] == 143 for e in stopped)  # by SIGTERM, not killed
    resumed = [json.loads(p.read_text()) for p in sorted(run_dir.glob("seen-1-*.json"))]
    assert [r["start"] for r in resumed] == [checkpoint["step"] + 1] * 2  # every rank resumed
    assert {r["host"] for r in resumed} == {"duo1", "duo2"}
    assert record.id is not None
    assert len(job_runs_of(workspace_duo.catalog, [record.id])[record.id]) == 2
    steps = [line["step"] for line in metric_lines(workspace_duo.catalog, record.id)]
    assert sorted(set(steps)) == list(range(30))  # one continuous history, from rank 0
    assert get_session(workspace_duo.catalog, name).last_step == 29


def _release_requeued(job_id: str, timeout: float = 120.0) -> None:
    """Start the requeued job now instead of after Slurm's ~120 s hold (after 2 s: a start in
    the second of the requeue is killed for a revoked credential)."""
    deadline = time.monotonic() + timeout
    held_since: float | None = None
    while time.monotonic() < deadline:
        state, _, reason = duo("squeue", "-h", "-j", job_id, "-o", "%T|%r").strip().partition("|")
        held = state == "PENDING" and reason == "BeginTime"
        held_since = (held_since or time.monotonic()) if held else None
        if held_since is not None and time.monotonic() - held_since >= 2.0:
            duo("scontrol", "update", f"JobId={job_id}", "StartTime=now")
            return
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} was not requeued")


def test_after_waits_for_its_parent(
    workspace_duo: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(
        project_dir,
        "step.py",
        """
        import time, nsml_hpc
        gate = nsml_hpc.session.run_dir / "release"
        while nsml_hpc.session.hyperparameters.get("hold") and not gate.exists():
            time.sleep(0.2)
        nsml_hpc.report(step=0, done=1)
        """,
    )
    parent, parent_job, parent_dir = _submit(capsys, "--nodes", "2", "step.py", "--hold", "1")
    wait_for_state(workspace_duo, parent, {"RUNNING"}, 120)
    child, child_job, _ = _submit(capsys, "--after", parent, "step.py")
    try:
        assert f"Dependency=afterok:{parent_job}" in _scontrol_job(child_job)
        wait_for_state(workspace_duo, child, {"PENDING"}, 60)
        time.sleep(3)  # the scheduler runs every 2 s: the child still waits
        assert duo("squeue", "-h", "-j", child_job, "-o", "%T|%r").strip() == "PENDING|Dependency"
    finally:
        (parent_dir / "release").write_text("go")
    done = wait_for_state(workspace_duo, child, {"COMPLETED", "FAILED", "CANCELLED"}, 120)
    assert done.state == "COMPLETED"
    parent_end = get_session(workspace_duo.catalog, parent).ended_at
    assert parent_end is not None and done.started_at is not None
    assert done.started_at >= parent_end
    code, out, _ = _cli(capsys, "show", child, "--no-sync")
    assert code == 0 and f"after       {parent} (--dependency=afterok:{parent_job})" in out


@pytest.fixture
def reservation(duo_nodes: list[str]) -> Iterator[str]:
    """A short reservation of both duo nodes for root (removed afterwards)."""
    name = f"nsml-test-{uuid.uuid4().hex[:8]}"
    duo(
        "scontrol",
        "create",
        "reservation",
        f"ReservationName={name}",
        "Users=root",
        f"Nodes={','.join(duo_nodes)}",
        "StartTime=now",
        "Duration=5",
        "Flags=IGNORE_JOBS",
    )
    yield name
    jobs = duo("squeue", "-h", f"--reservation={name}", "-o", "%i", check=False).split()
    if jobs:
        duo("scancel", *jobs, check=False)  # a job left in it would hold the reservation
    duo("scontrol", "delete", "reservation", name, check=False)


def test_every_new_flag_reaches_slurm(
    workspace_duo: Workspace,
    project_dir: Path,
    reservation: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # held, so the session is still waiting for it when scontrol is asked
    before = duo(
        "sbatch",
        "--parsable",
        "--hold",
        f"--reservation={reservation}",
        "--output=/dev/null",
        "--wrap=true",
    ).strip()
    write_script(project_dir, "noop.py", "import nsml_hpc; nsml_hpc.report(step=0, ok=1)\n")
    name, job_id, run_dir = _submit(
        capsys,
        "--nodes=2",
        "--gpus-per-node=1",
        "--ntasks-per-node=2",
        "--cpus-per-task=1",
        "--exclusive",
        f"--reservation={reservation}",
        "--mail-type=end,fail",
        "--mail-user=alice@example.org",
        f"--dependency=afterany:{before}",
        "--sbatch-arg",
        "--comment=nightly",
        "--sbatch-arg=--nice=7",
        "noop.py",
    )
    script = (run_dir / "job.sbatch").read_text()
    for directive in (
        "--nodes=2",
        "--gres=gpu:1",
        "--ntasks-per-node=2",
        "--cpus-per-task=1",
        "--exclusive",
        f"--reservation={reservation}",
        "--mail-type=END,FAIL",
        "--mail-user=alice@example.org",
        f"--dependency=afterany:{before}",
        "--comment=nightly",
        "--nice=7",
    ):
        assert f"#SBATCH {directive}\n" in script
    deadline = time.monotonic() + 30  # the scheduler names the reason on its next pass
    waiting = _scontrol_job(job_id)
    while "Reason=Dependency" not in waiting and time.monotonic() < deadline:
        time.sleep(1)
        waiting = _scontrol_job(job_id)
    assert "JobState=PENDING Reason=Dependency" in waiting, waiting
    assert f"Dependency=afterany:{before}(unfulfilled)" in waiting, waiting
    duo("scontrol", "release", before)
    record = wait_for_state(workspace_duo, name, {"COMPLETED", "FAILED", "CANCELLED"}, 120)
    assert record.state == "COMPLETED"
    job = _scontrol_job(job_id)
    for expected in (
        "NumNodes=2",
        "NtasksPerN:B:S:C=2:0:*:*",
        "CPUs/Task=1",
        "OverSubscribe=NO",  # --exclusive
        f"Reservation={reservation}",
        "MailUser=alice@example.org MailType=END,FAIL",
        "Comment=nightly",
        "Nice=7",
        "TresPerNode=gres:gpu:1",
    ):
        assert expected in job, (expected, job)
    assert _sacct(before, "State")["State"] == "COMPLETED"  # it ran first, once released
    assert "NodeList=duo[1-2]" in job
    # (sacct's NodeList reads only duo1 for a moment after a multi-node job ends)
    # slurmdbd fills in the requested TRES a moment after the job's end record
    deadline = time.monotonic() + 30
    acct = _sacct(job_id, "NNodes,AllocCPUS,ReqTRES")
    while "gres/gpu" not in acct["ReqTRES"] and time.monotonic() < deadline:
        time.sleep(1)
        acct = _sacct(job_id, "NNodes,AllocCPUS,ReqTRES")
    assert acct["NNodes"] == "2"
    assert acct["AllocCPUS"] == "8"  # --exclusive: both whole 4-CPU nodes
    assert "gres/gpu=2" in acct["ReqTRES"]  # one on each node
    detail = session_detail(workspace_duo.catalog, name)
    assert detail["spec"]["resources"]["sbatch_args"] == ["--comment=nightly", "--nice=7"]
    assert detail["spec"]["resources"]["exclusive"] is True


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--nodes", "3"], "--nodes 3: partition debug has 2 node(s) (duo1, duo2)"),
        (
            ["--nodes", "2", "--gpus", "h100:2"],
            "--gpus h100:2: no node of partition debug has GPUs of type h100 (types there: a100)",
        ),
        (["--nodes", "2", "--gpus-per-node", "3"], "--nodes 2 with 3 GPU(s) each"),
    ],
    ids=["too-many-nodes", "unknown-gpu-type", "too-many-gpus-per-node"],
)
def test_a_job_the_cluster_cannot_hold_is_one_line_and_nothing_is_submitted(
    flags: list[str],
    message: str,
    duo_cluster: str,
    nsml_env: Path,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_script(project_dir, "noop.py", "print('never runs')\n")
    code, out, err = _cli(capsys, "submit", "--cluster", "duo", *flags, "noop.py")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and message in err, err
    _assert_nothing_created(nsml_env)


def _assert_nothing_created(nsml_env: Path) -> None:
    settings = load_settings()
    runs = settings.run_root
    assert not runs.exists() or not [p for p in runs.rglob("*") if p.name[:1].isdigit()]
    ws = Workspace.open(settings)
    try:
        assert list_sessions(ws.catalog) == []
    finally:
        ws.close()
    assert _jobs_under(nsml_env) == []


def test_after_a_session_on_another_cluster_is_refused(
    workspace_duo: Workspace,
    nsml_env: Path,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_script(project_dir, "noop.py", "import time; time.sleep(1)\n")
    code, out, err = _cli(capsys, "submit", "noop.py")  # on the one-node cluster nsml (local)
    assert code == 0, err
    parent = out.split()[1]
    code, out, err = _cli(capsys, "submit", "--cluster", "duo", "--after", parent, "noop.py")
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"nsml-hpc: error: --after {parent}: that session is on cluster local, this one goes "
        "to duo (Slurm dependencies work within one cluster)"
    )
    assert [s.name for s in list_sessions(workspace_duo.catalog)] == [parent]
    assert _jobs_under(nsml_env) == []


def test_a_sweep_runs_every_session_on_both_nodes(
    workspace_duo: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "rdv.py", RENDEZVOUS)
    code, _, err = _cli(
        capsys,
        "sweep",
        "--cluster",
        "duo",
        "--nodes",
        "2",
        "--launch",
        "srun",
        "--grid",
        "x=1,2",
        "--max-parallel",
        "1",
        "rdv.py",
    )
    assert code == 0, err
    names = [s.name for s in list_sessions(workspace_duo.catalog)]
    assert len(names) == 2
    for name in names:
        record = wait_for_state(workspace_duo, name, {"COMPLETED", "FAILED", "CANCELLED"}, 180)
        assert record.state == "COMPLETED"
        ranks = _ranks(Path(record.run_dir))
        assert {r["host"] for r in ranks.values()} == {"duo1", "duo2"}
        assert ranks[1]["seen"] == {"duo1": "10.231.0.11"}


SWEEP_FLAGS = (
    "--exclusive",
    "--mail-type",
    "END",
    "--gpus-per-node",
    "1",
    "--nodes",
    "2",
    "--launch",
    "srun",
)
SWEEP_DIRECTIVES = (
    "--nodes=2",
    "--gres=gpu:1",
    "--exclusive",
    "--mail-type=END",
    "--comment=x",
    "--ntasks-per-node=1",
)


def test_a_sweep_with_the_new_flags_renders_them_and_records_them_in_every_spec(
    workspace_duo: Workspace,
    nsml_env: Path,
    project_dir: Path,
    reservation: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_script(project_dir, "noop.py", "import nsml_hpc; nsml_hpc.report(step=0, ok=1)\n")
    flags = (*SWEEP_FLAGS, "--reservation", reservation, "--grid", "x=1,2")
    # --dry-run: the array script carries every directive; nothing is created
    code, out, err = _cli(
        capsys,
        "sweep",
        "--dry-run",
        "--cluster",
        "duo",
        *flags,
        "--sbatch-arg",
        "--comment=x",
        "noop.py",
    )
    assert code == 0, err
    for directive in (*SWEEP_DIRECTIVES, f"--reservation={reservation}", "--array=0-1"):
        assert f"#SBATCH {directive}\n" in out, (directive, out)
    assert "srun " in out and "2 session(s) in one job array (not submitted)" in err
    _assert_nothing_created(nsml_env)

    # submitted: each session's recorded spec holds them, and Slurm got them
    code, out, err = _cli(
        capsys,
        "sweep",
        "--cluster",
        "duo",
        *flags,
        "--max-parallel",
        "1",
        "noop.py",
        "--sbatch-arg",  # the space form among the sweep options after the script
        "--comment=x",
    )
    assert code == 0, err
    names = sorted(s.name for s in list_sessions(workspace_duo.catalog))
    assert len(names) == 2
    for name in names:
        record = wait_for_state(workspace_duo, name, {"COMPLETED", "FAILED", "CANCELLED"}, 180)
        assert record.state == "COMPLETED"
        detail = session_detail(workspace_duo.catalog, name)
        asked = detail["spec"]["resources"]
        assert detail["spec"]["launch"] == "srun"
        assert (asked["nodes"], asked["gpus"], asked["exclusive"]) == (2, 1, True)
        assert (asked["reservation"], asked["mail_type"]) == (reservation, "END")
        assert asked["sbatch_args"] == ["--comment=x"]
        job = _scontrol_job(detail["jobs"][-1]["job_id"])  # an array task: 123_0
        for expected in (
            "NumNodes=2",
            "OverSubscribe=NO",
            f"Reservation={reservation}",
            "MailType=END",
            "Comment=x",
            "TresPerNode=gres:gpu:1",
        ):
            assert expected in job, (expected, job)


ALL_REDUCE = """
    import os, socket
    import torch, torch.distributed as dist
    import nsml_hpc
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    total = torch.tensor([float(rank + 1)])
    dist.all_reduce(total)
    print(f"rank {rank}/{world} host={socket.gethostname()} "
          f"session_rank={nsml_hpc.session.rank} sum={total.item()}", flush=True)
    nsml_hpc.report(step=0, total=total.item(), world=world)
    dist.destroy_process_group()
"""


@pytest.fixture(scope="session")
def torch_venv() -> Path:
    """A virtualenv with CPU torch (built once, kept in /var/tmp; ~45 s from a local wheel).
    Skipped, with pip's own last line as the reason, where torch cannot be installed."""
    python = TORCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TORCH_VENV)], check=True, timeout=120)
    probe = subprocess.run(
        [str(python), "-c", "import torch.distributed as d; assert d.is_gloo_available()"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "torch"],
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"torch could not be installed into {TORCH_VENV}: {last}")
    return TORCH_VENV


@pytest.mark.slow
def test_torchrun_ranks_on_two_nodes_all_reduce_over_gloo(
    workspace_duo: Workspace,
    project_dir: Path,
    torch_venv: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_script(project_dir, "allreduce.py", ALL_REDUCE)
    name, job_id, run_dir = _submit(
        capsys,
        "--nodes",
        "2",
        "--gpus-per-node",
        "2",
        "--launch",
        "torchrun",
        "--venv",
        str(torch_venv),
        "allreduce.py",
    )
    assert (
        'torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d --rdzv-id="$SLURM_JOB_ID"'
        in (run_dir / "job.sbatch").read_text()
    )
    record = wait_for_state(workspace_duo, name, {"COMPLETED", "FAILED", "CANCELLED"}, 300)
    output = (run_dir / f"slurm-{job_id}.out").read_text()
    assert record.state == "COMPLETED", output
    ranks = {}
    for line in output.replace("rank ", "\nrank ").splitlines():
        if line.startswith("rank ") and " sum=" in line:
            words = dict(word.split("=", 1) for word in line.split()[2:])
            ranks[int(line.split()[1].split("/")[0])] = words
    assert sorted(ranks) == [0, 1, 2, 3]
    assert all(r["sum"] == "10.0" for r in ranks.values())  # 1 + 2 + 3 + 4 over gloo
    assert {ranks[0]["host"], ranks[1]["host"]} == {"duo1"}  # rank 0 on the rendezvous host
    assert {ranks[2]["host"], ranks[3]["host"]} == {"duo2"}
    assert all(r["session_rank"] == str(rank) for rank, r in ranks.items())
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(line["total"], line["world"]) for line in lines] == [(10.0, 4)]  # rank 0 only
    hosts = sorted(e["host"] for e in _events(run_dir) if e["event"] == "task_started")
    assert hosts == ["duo1", "duo2"]  # one wrapper (one torchrun) per node


def test_an_ssh_profile_with_slurm_conf_reaches_the_two_node_cluster(
    nsml_env: Path,
    duo_nodes: list[str],
    sandbox: Any,
    remote_root: str,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """alice over the sandbox's sshd: every Slurm command runs as ``env SLURM_CONF=... cmd``
    on the login node, so the session lands on duo, not on the login node's own cluster."""
    sandbox.add("duo-ssh", remote_root, slurm_conf=DUO_CONF)
    write_script(project_dir, "rdv.py", RENDEZVOUS)
    code, out, err = _cli(
        capsys, "submit", "--cluster", "duo-ssh", "--nodes", "2", "--launch", "srun", "rdv.py"
    )
    assert code == 0, err
    name, job_id = out.split()[1], out.split()[3].rstrip(")")
    with Workspace.open(load_settings()) as ws:
        record = wait_for_state(ws, name, {"COMPLETED", "FAILED", "CANCELLED"}, 120)
    assert record.state == "COMPLETED"
    assert _sacct(job_id, "User,Cluster")["Cluster"] == "duo"
    ranks = _ranks(Path(record.run_dir))
    assert {r["host"] for r in ranks.values()} == {"duo1", "duo2"}


def test_gpus_counts_each_node_of_duo_in_the_table_and_in_json(
    duo_cluster: str, duo_nodes: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # one GPU of duo1 held by a job, so the per-node counts have something to count
    holder = duo(
        "sbatch",
        "--parsable",
        "--gres=gpu:1",
        "-w",
        "duo1",
        "--output=/dev/null",
        "--wrap=sleep 120",
    ).strip()
    try:
        deadline = time.monotonic() + 120
        while "JobState=RUNNING" not in _scontrol_job(holder) and time.monotonic() < deadline:
            time.sleep(1)
        assert "JobState=RUNNING" in _scontrol_job(holder)

        code, out, err = _cli(capsys, "gpus", "--cluster", "duo", "--nodes")
        assert code == 0, err
        partitions, nodes = out.split("\n\n")
        header = partitions.splitlines()[0].split()
        assert header[:4] == ["PARTITION", "TYPES", "NODES", "PER"]  # PER NODE
        debug = next(line.split() for line in partitions.splitlines() if line.startswith("debug"))
        assert debug[:5] == ["debug*", "a100", "2", "2", "4"]  # 2 nodes, 2 a100 on each, 4 in all
        rows = {line.split()[0]: line.split() for line in nodes.strip().splitlines()}
        assert rows["NODE"] == ["NODE", "PARTITIONS", "STATE", "TYPES", "GPUS", "USED", "FREE"]
        assert sorted(set(rows) - {"NODE"}) == duo_nodes == ["duo1", "duo2"]
        for node in duo_nodes:
            _, partitions_of, _, types, total, used, free = rows[node]
            assert (partitions_of, types, total) == ("debug", "a100", "2")
            assert int(used) + int(free) == 2
        assert int(rows["duo1"][5]) >= 1  # the holder's GPU

        code, out, err = _cli(capsys, "gpus", "--cluster", "duo", "--nodes", "--json")
        assert code == 0, err
        document = json.loads(out)
        assert set(document) == {"partitions", "nodes"}
        (part,) = document["partitions"]
        assert (part["partition"], part["default"], part["nodes"], part["per_node"]) == (
            "debug",
            True,
            2,
            "2",
        )
        assert part["total"] == 4 and part["allocated"] >= 1 and part["types"] == ["a100"]
        assert part["allocated"] + part["idle"] + part["unavailable"] == 4
        by_node = {row["node"]: row for row in document["nodes"]}
        assert sorted(by_node) == ["duo1", "duo2"]
        assert all(row["total"] == 2 and row["partitions"] == ["debug"] for row in by_node.values())
        assert all(row["types"] == ["a100"] for row in by_node.values())
        assert by_node["duo1"]["used"] >= 1
        assert all(row["used"] + row["free"] == 2 for row in by_node.values())

        code, out, err = _cli(capsys, "gpus", "--cluster", "duo", "--json")  # without --nodes
        assert code == 0, err
        assert [p["partition"] for p in json.loads(out)] == ["debug"]
    finally:
        duo("scancel", holder, check=False)


WAIT_FOR_FILE = """
    import time, nsml_hpc
    go = nsml_hpc.session.run_dir / "go"
    while not go.exists():
        time.sleep(0.2)
"""


def test_the_notebook_client_launches_waits_and_checks_like_the_cli(
    workspace_duo: Workspace,
    nsml_env: Path,
    project_dir: Path,
) -> None:
    """Client.submit takes launch, after, gpus="TYPE:N" and the resource keywords through
    the CLI's own parser and pre-submit path: the fit check refuses what duo cannot hold."""
    from nsml_hpc.client import Client
    from nsml_hpc.errors import SpecError

    write_script(project_dir, "rdv.py", RENDEZVOUS)
    write_script(project_dir, "wait.py", WAIT_FOR_FILE)
    client = Client(workspace_duo)
    for resources, message in (
        ({"nodes": 3}, "--nodes 3: partition debug has 2 node(s) (duo1, duo2)"),
        ({"nodes": 2, "gpus": "h100:2"}, "no node of partition debug has GPUs of type h100"),
        ({"gpus_per_node": 3, "nodes": 2}, "--nodes 2 with 3 GPU(s) each"),
        ({"gpus": "a100:0"}, "gpus TYPE:N needs N >= 1"),
        ({"launch": "mpirun"}, "valid modes are plain, srun, srun-per-gpu, torchrun"),
        ({"sbatch_args": ["--nodes=2"]}, "use --nodes"),
    ):
        with pytest.raises(SpecError, match=re.escape(message)):
            client.submit("rdv.py", cluster="duo", **resources)
    _assert_nothing_created(nsml_env)

    parent = client.submit("wait.py", cluster="duo", project="nb")
    child = client.submit(
        "rdv.py",
        cluster="duo",
        project="nb",
        launch="srun",
        after=[parent.name],
        nodes=2,
        gpus_per_node=1,
        exclusive=True,
        sbatch_args=["--comment=notebook"],
    )
    job_id = child.job_ids[-1]
    deadline = time.monotonic() + 30
    waiting = _scontrol_job(job_id)
    while "Reason=Dependency" not in waiting and time.monotonic() < deadline:
        time.sleep(1)
        waiting = _scontrol_job(job_id)
    assert f"Dependency=afterok:{parent.job_ids[-1]}(unfulfilled)" in waiting, waiting
    assert "Comment=notebook" in waiting and "OverSubscribe=NO" in waiting
    (Path(parent.run_dir) / "go").write_text("")
    parent.wait(timeout=120, interval=0.6)
    child.wait(timeout=180, interval=0.6)
    assert (parent.state, child.state) == ("COMPLETED", "COMPLETED")
    spec = child.spec
    assert (spec.launch, spec.after) == ("srun", [parent.name])
    assert (spec.resources.nodes, spec.resources.gpus, spec.resources.exclusive) == (2, 1, True)
    assert spec.resources.dependency == f"afterok:{parent.job_ids[-1]}"
    ranks = _ranks(Path(child.run_dir))
    assert {r["host"] for r in ranks.values()} == {"duo1", "duo2"}


def test_a_fork_the_cluster_cannot_hold_is_one_line_and_nothing_is_submitted(
    workspace_duo: Workspace,
    nsml_env: Path,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_script(
        project_dir,
        "saves.py",
        "import nsml_hpc\nwith nsml_hpc.save(step=1) as folder:\n"
        "    (folder / 'w.txt').write_text('1')\n",
    )
    parent, parent_job, _run_dir = _submit(capsys, "saves.py")
    wait_for_state(workspace_duo, parent, {"COMPLETED"})
    code, out, err = _cli(capsys, "fork", parent, "--nodes", "3")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert "--nodes 3: partition debug has 2 node(s) (duo1, duo2)" in err
    assert [s.name for s in list_sessions(workspace_duo.catalog)] == [parent]
    # no job but the parent's (which the queue may still list while it completes)
    assert set(_jobs_under(nsml_env)) <= {parent_job}
