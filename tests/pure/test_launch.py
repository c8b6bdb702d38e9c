"""Multi-node launch pieces that need no Slurm: the rendezvous helper on captured scontrol
output, the array script's launch lines, the relay of task events and per-rank metrics, the
task wrapper's rank environment and command, and the whole wrapper -> task chain run
locally (the launcher standing in for srun). The Slurm paths are proven on the two-node
sandbox in tests/slurm/test_multinode.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nsml_hpc.job import rendezvous
from nsml_hpc.job.__main__ import main as job_main
from nsml_hpc.job.spec import Resources, SessionSpec
from nsml_hpc.job.task import rank_environment, task_command, tasks_on_this_node
from nsml_hpc.job.wrapper import Relay
from nsml_hpc.submit.render import ArrayContext, render_array_script

REPO = Path(__file__).resolve().parents[2]


def test_the_first_nodes_address_comes_from_scontrol_show_node(
    data_text: Callable[[str], str],
) -> None:
    assert rendezvous.parse_node_addr(data_text("scontrol_show_node_duo1.txt")) == "10.231.0.11"
    assert rendezvous.first_hostname(data_text("scontrol_show_hostnames_duo.txt")) == "duo1"
    assert rendezvous.parse_node_addr("NodeName=x NodeHostName=x") is None
    assert rendezvous.first_hostname("\n\n") is None


def test_a_free_port_is_one_nobody_listens_on() -> None:
    port = rendezvous.free_port()
    assert 1024 <= port <= 65535
    import socket

    with socket.socket() as probe:
        probe.bind(("", port))  # free: binding it works


def test_the_rendezvous_helper_fails_in_one_line_outside_a_job(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    monkeypatch.delenv("SLURM_NODELIST", raising=False)
    assert rendezvous.main(["addr"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not inside a Slurm job" in err
    assert rendezvous.main(["nonsense"]) == 2


def test_the_array_script_launches_each_task_in_its_own_run_directory(tmp_path: Path) -> None:
    spec = SessionSpec(
        project="mnist", script="train.py", resources=Resources(gpus=2, nodes=2), launch="torchrun"
    )
    script = render_array_script(
        spec,
        ArrayContext(
            sweep_name="mnist/sweep-1",
            sweep_dir="/shared/runs/alice/mnist/.sweeps/1",
            run_dirs=["/shared/runs/alice/mnist/1", "/shared/runs/alice/mnist/2"],
            session_names=["mnist/1", "mnist/2"],
            wrapper_python="/opt/nsml/bin/python",
            array="0-1",
            api_path="/shared/runs/alice/mnist/.sweeps/1/.nsml/python",
        ),
    )
    assert "#SBATCH --ntasks-per-node=1" in script
    assert 'python -m nsml_hpc.job "$NSML_HPC_RUN_DIR" -- \\\n' in script
    assert 'python -m nsml_hpc.job "$NSML_HPC_RUN_DIR" --task -- \\\n' in script
    assert "torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d" in script
    path = tmp_path / "array.sbatch"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], check=False).returncode == 0


def test_relay_copies_complete_lines_once_and_keeps_a_partial_one(tmp_path: Path) -> None:
    tasks = tmp_path / ".nsml" / "tasks"
    ranks = tmp_path / ".nsml" / "ranks"
    tasks.mkdir(parents=True)
    ranks.mkdir(parents=True)
    (tasks / "7-0-0.jsonl").write_bytes(b'{"event": "task_started", "task": 0}\n{"event": "ta')
    (tasks / "7-0-1.jsonl").write_bytes(b'{"event": "task_started", "task": 1}\n')
    (ranks / "7-0-1.jsonl").write_bytes(b'{"step":0,"loss/rank1":2.0}\n')
    relay = Relay(tmp_path)
    assert relay.poll(force=True) == 3
    assert relay.poll(force=True) == 0
    with open(tasks / "7-0-0.jsonl", "ab") as handle:
        handle.write(b'sk_ended", "task": 0}\n')
    assert relay.poll(force=True) == 1
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e["event"], e["task"]) for e in events] == [
        ("task_started", 0),
        ("task_started", 1),
        ("task_ended", 0),
    ]
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step":0,"loss/rank1":2.0}\n'
    relay.clear()
    assert not tasks.exists() and not ranks.exists()


def test_an_srun_task_gets_the_torch_rank_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SLURM_PROCID": "3",
        "SLURM_LOCALID": "1",
        "SLURM_STEP_NUM_TASKS": "4",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
        "SLURM_NODEID": "1",
    }.items():
        monkeypatch.setenv(name, value)
    assert tasks_on_this_node() == 2
    assert rank_environment() == {
        "RANK": "3",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "4",
        "LOCAL_WORLD_SIZE": "2",
        "NODE_RANK": "1",
    }


def test_torchrun_runs_with_the_sessions_interpreter(tmp_path: Path) -> None:
    document = {
        "interpreter": "/env/bin/python3",
        "spec": {"script": "train.py", "args": ["--lr", "1"]},
    }
    launcher = ["torchrun", "--nnodes=2", "--nproc-per-node=4"]
    assert task_command(document, tmp_path, launcher) == [
        "/env/bin/python3",
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=4",
        str(tmp_path / "train.py"),
        "--lr",
        "1",
    ]
    shell = {"interpreter": "/env/bin/python3", "spec": {"script": "run.sh", "args": []}}
    assert task_command(shell, tmp_path, launcher)[5:] == ["--no-python", str(tmp_path / "run.sh")]
    assert task_command(document, tmp_path, []) == [
        "/env/bin/python3",
        str(tmp_path / "train.py"),
        "--lr",
        "1",
    ]


def test_the_wrapper_entry_point_refuses_a_malformed_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert job_main([]) == 2
    assert job_main(["/run", "--"]) == 2
    assert job_main(["/run", "--bogus"]) == 2
    assert "usage: python -m nsml_hpc.job RUN_DIR" in capsys.readouterr().err


RANK_SCRIPT = """
import os, nsml_hpc
s = nsml_hpc.session
nsml_hpc.report(step=0, loss=1.0 + s.rank)
nsml_hpc.report_rank(step=0, loss=1.0 + s.rank)
with nsml_hpc.save(step=0) as folder:
    (folder / "who").write_text(str(s.rank))
print("rank", s.rank, s.world_size, s.local_rank, s.node_rank, flush=True)
"""


def _run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    (run_dir / "code").mkdir(parents=True)
    (run_dir / "code" / "train.py").write_text(RANK_SCRIPT)
    (run_dir / "session.json").write_text(
        json.dumps(
            {
                "name": "p/1",
                "interpreter": sys.executable,
                "spec": {"project": "p", "script": "train.py", "args": [], "launch": "srun"},
            }
        )
    )
    return run_dir


def test_the_wrapper_relays_what_its_tasks_and_ranks_wrote(tmp_path: Path) -> None:
    """Two tasks (rank 0 and rank 1) started by a stand-in for srun: only rank 0's report
    and snapshot count, per-rank lines of both arrive in metrics.jsonl, and the tasks' events
    arrive in events.jsonl through the one writer."""
    run_dir = _run_dir(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "WORLD"))}
    env.update(
        NSML_HPC_RUN_DIR=str(run_dir),
        PYTHONPATH=str(REPO),
        SLURM_JOB_ID="42",
        SLURM_STEP_NUM_TASKS="2",
        SLURM_STEP_TASKS_PER_NODE="2",
    )
    task = f"{sys.executable} -m nsml_hpc.job {run_dir} --task"
    both = (
        f"SLURM_STEP_ID=0 SLURM_PROCID=0 SLURM_LOCALID=0 {task} && "
        f"SLURM_STEP_ID=0 SLURM_PROCID=1 SLURM_LOCALID=1 {task}"
    )
    done = subprocess.run(
        [sys.executable, "-m", "nsml_hpc.job", str(run_dir), "--", "sh", "-c", both],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "rank 0 2 0 0" in done.stdout and "rank 1 2 1 0" in done.stdout
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m for m in metrics if "loss" in m] == [
        {"step": 0, "time": metrics[0]["time"], "loss": 1.0}
    ]
    assert sorted(key for m in metrics for key in m if key.startswith("loss/")) == [
        "loss/rank0",
        "loss/rank1",
    ]
    assert [p.name for p in (run_dir / "snapshots").iterdir()] == ["step-0"]
    assert (run_dir / "snapshots" / "step-0" / "who").read_text() == "0"
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [(e["event"], e.get("task")) for e in events]
    assert kinds[0] == ("started", None)
    assert ("task_started", 0) in kinds and ("task_ended", 1) in kinds
    assert kinds[-1] == ("ended", None)
    assert all(e["exit_code"] == 0 for e in events if e["event"] == "task_ended")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (0, 1, 0, 0)),
        ({"SLURM_PROCID": "3", "SLURM_NTASKS": "4"}, (0, 1, 0, 0)),  # the batch script: no step
        (
            {"SLURM_STEP_ID": "0", "SLURM_PROCID": "3", "SLURM_LOCALID": "1"}
            | {"SLURM_STEP_NUM_TASKS": "4", "SLURM_NODEID": "1"},
            (3, 4, 1, 1),
        ),
        (
            {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "GROUP_RANK": "2"}
            | {"SLURM_STEP_ID": "0", "SLURM_PROCID": "2"},
            (5, 8, 1, 2),
        ),
    ],
    ids=["alone", "batch-script", "srun-step", "torchrun"],
)
def test_session_knows_its_rank_from_torch_then_slurm_variables(
    env: dict[str, str], expected: tuple[int, int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nsml_hpc.job.api import SessionInfo

    for name in list(os.environ):
        if name.startswith("SLURM_") or name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("GROUP_RANK", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    info = SessionInfo(None)
    assert (info.rank, info.world_size, info.local_rank, info.node_rank) == expected
    assert info.is_primary == (expected[0] == 0)
