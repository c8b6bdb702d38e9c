"""Regression tests for the defects of issue 15's walkthrough that live in the catalog and the
CLI: requeue counts, elapsed time of a requeued session, ``show``'s job table per run, session
numbers after ``rm --purge``, ``model`` selectors, malformed and non-finite metric values, and
where gc's lock and log are. Each failed before its fix.

Slurm's answers come from a backend above the seam (the real CLI backend with ``query``
answering what sacct answered in the sandbox for a requeued job: tests/data and
docs/sandbox.md); the run directories and the catalog are real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.cli import main
from nsml_hpc.config.identity import current_user
from nsml_hpc.job.snapshot_format import MANIFEST_FILE
from nsml_hpc.job.snapshot_store import PendingSnapshot
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.submit.rundir import json_bytes
from nsml_hpc.workspace import Workspace


@dataclass
class AnsweringBackend(CliBackend):
    """The local CLI backend whose sacct answers are set by the test."""

    records: list[JobRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        CliBackend.__init__(self, "local")

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        return [record for record in self.records if record.job_id in job_ids]

    def queue(self, job_ids: Sequence[str]) -> list[JobRecord]:
        return []


def _session(
    workspace: Workspace, project: str = "rq", *, job_id: str = "77", created: float | None = None
) -> tuple[str, Path]:
    runs = workspace.settings.run_root
    user = current_user()
    spec = SessionSpec(project=project, script="train.py", args=["--lr", "0.1"])
    record = reserve_session(
        workspace.catalog,
        spec=spec,
        user=user,
        run_dir_for=lambda n: str(runs / user / project / str(n)),
        is_free=lambda n: not (runs / user / project / str(n)).exists(),
        now=created or time.time(),
    )
    assert record.id is not None
    mark_submitted(workspace.catalog, record.id, job_id=job_id, cluster="local", now=time.time())
    run_dir = Path(record.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "session.json").write_bytes(
        json_bytes({"name": record.name, "spec": spec.to_dict()})
    )
    return record.name, run_dir


def _event(run_dir: Path, kind: str, at: float, **data: object) -> None:
    line = {"event": kind, "time": at, "job_id": "77", **data}
    with (run_dir / "events.jsonl").open("a") as out:
        out.write(json.dumps(line) + "\n")


def _sync(workspace: Workspace, backend: AnsweringBackend) -> None:
    time.sleep(0.55)  # the test config's poll floor
    workspace.sync()


@pytest.fixture
def answering(workspace: Workspace) -> AnsweringBackend:
    backend = AnsweringBackend()
    workspace.use_backend("local", backend)
    return backend


def _ps(capsys: pytest.CaptureFixture[str], name: str) -> str:
    assert main(["ps", "--no-sync"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(name))
    return line


# --- requeues, elapsed, the job table ---------------------------------------------------------


def test_requeues_count_from_the_requeue_through_the_hold_and_elapsed_is_one_rule(
    workspace: Workspace, answering: AnsweringBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    name, run_dir = _session(workspace)
    t0 = time.time() - 600
    pending = JobRecord("77", SessionState.PENDING, "PENDING", "BeginTime", started_at=t0)
    running = JobRecord("77", SessionState.RUNNING, "RUNNING", started_at=t0 + 300)

    # first run, then the wrapper requeues it: Slurm holds the job (PENDING, BeginTime)
    _event(run_dir, "started", t0, restart_count=0, host="vm")
    _event(run_dir, "ended", t0 + 100, exit_code=0, requeue=True)
    _event(run_dir, "requeued", t0 + 100, restart_count=1)
    answering.records = [pending]
    _sync(workspace, answering)
    assert workspace.session(name).requeues == 1  # during the hold (was 0)
    assert "[requeued 1x]" in _ps(capsys, name)

    # second run, requeued again; held again
    _event(run_dir, "started", t0 + 200, restart_count=1, host="vm")
    _event(run_dir, "ended", t0 + 250, exit_code=0, requeue=True)
    _event(run_dir, "requeued", t0 + 250, restart_count=2)
    _sync(workspace, answering)
    assert workspace.session(name).requeues == 2  # after two requeues (was 1)
    assert "[requeued 2x]" in _ps(capsys, name)

    # third run: Slurm's Elapsed counts only this run
    _event(run_dir, "started", t0 + 300, restart_count=2, host="vm")
    answering.records = [running]
    _sync(workspace, answering)
    end = time.time()
    while_running = workspace.session(name).elapsed_at(end)
    finished = JobRecord(
        "77",
        SessionState.COMPLETED,
        "COMPLETED",
        exit_code=0,
        started_at=t0 + 300,
        ended_at=end,
        elapsed_s=end - (t0 + 300),
    )
    _event(run_dir, "ended", end, exit_code=0)
    answering.records = [finished]
    _sync(workspace, answering)
    row = workspace.session(name)
    assert row.state == "COMPLETED" and row.requeues == 2
    assert while_running is not None and row.elapsed_s is not None
    assert abs(row.elapsed_s - while_running) < 1.0  # was: 600 s running, 300 s finished

    # show: one line per run, not per job id
    detail = workspace.show(name)
    assert [(run["job_id"], run["run"]) for run in detail["runs"]] == [
        ("77", 0),
        ("77", 1),
        ("77", 2),
    ]
    assert [run["state"] for run in detail["runs"]] == ["requeued", "requeued", "COMPLETED"]
    assert main(["show", name, "--no-sync"]) == 0
    out = capsys.readouterr().out
    jobs = out.split("jobs (one line per run")[1].split("state history")[0]
    assert [line.split()[:3] for line in jobs.strip().splitlines()[1:]] == [
        ["77", "run", "0"],
        ["77", "run", "1"],
        ["77", "run", "2"],
    ]


# --- session numbers ----------------------------------------------------------------------


def test_rm_purge_never_frees_a_session_number(
    workspace: Workspace, answering: AnsweringBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import update

    from nsml_hpc.catalog.models import SessionRecord
    from nsml_hpc.catalog.sessions import next_number

    first, _ = _session(workspace, "nums", job_id="1")
    second, second_dir = _session(workspace, "nums", job_id="2")
    assert second == "nums/2"
    with workspace.catalog.session() as db:
        db.execute(update(SessionRecord).values(state="COMPLETED", ended_at=time.time()))
    assert main(["rm", "--purge", second]) == 0
    assert not second_dir.exists()
    assert next_number(workspace.catalog, "nums") == 3  # was 2: a new session took the name
    third, _ = _session(workspace, "nums", job_id="3")
    assert third == "nums/3"
    assert main(["rm", first]) == 0  # without --purge too
    assert next_number(workspace.catalog, "nums") == 4


# --- model selectors ----------------------------------------------------------------------


def _snapshots(run_dir: Path, values: dict[str, tuple[int, float]]) -> None:
    for tag, (step, loss) in values.items():
        pending = PendingSnapshot.begin(run_dir / "snapshots", tag)
        (pending.folder / "w.bin").write_bytes(b"x" * 10)
        pending.commit(
            step=step, metrics={"val_loss": loss}, job_id="77", session="sel/1", restart_count=0
        )
        time.sleep(0.01)


def test_model_commands_take_latest_and_best_selectors(
    workspace: Workspace,
    answering: AnsweringBackend,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from sqlalchemy import update

    from nsml_hpc.catalog.models import SessionRecord

    name, run_dir = _session(workspace, "sel")
    with workspace.catalog.session() as db:
        db.execute(update(SessionRecord).values(state="COMPLETED", ended_at=time.time()))
    _snapshots(run_dir, {"a": (1, 0.9), "b": (2, 0.2), "c": (3, 0.5)})

    assert main(["model", "pin", name, "best:val_loss"]) == 0
    assert capsys.readouterr().out.strip() == f"pinned {name}:b"
    assert main(["model", "unpin", name, "latest"]) == 0
    assert capsys.readouterr().out.strip() == f"unpinned {name}:c"
    assert main(["model", "pull", name, "latest", str(tmp_path / "copy")]) == 0
    assert (tmp_path / "copy" / MANIFEST_FILE).is_file()
    assert json.loads((tmp_path / "copy" / MANIFEST_FILE).read_text())["tag"] == "c"
    capsys.readouterr()
    assert main(["model", "rm", name, "best:val_loss:max"]) == 0  # a (0.9) is the max
    assert capsys.readouterr().out.startswith(f"deleted {name}:a ")
    assert sorted(row.tag for row in workspace.snapshots(name)) == ["b", "c"]
    # a selector that matches nothing is an error, not a crash
    assert main(["model", "pin", name, "best:nope"]) != 0
    assert "nope" in capsys.readouterr().err


# --- metric values ------------------------------------------------------------------------


def test_bad_steps_are_malformed_and_non_finite_values_are_counted(
    workspace: Workspace, answering: AnsweringBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    name, run_dir = _session(workspace, "vals")
    (run_dir / "metrics.jsonl").write_text(
        '{"step": 0, "loss": 1.0}\n'
        '{"step": "x", "loss": 2.0}\n'  # a step that is not a number
        '{"step": 1.5, "loss": 2.0}\n'  # nor an integer
        '{"step": 2.0, "loss": 0.5}\n'  # an integral float is fine (numpy)
        '{"step": 3, "loss": NaN}\n'
        '{"step": 4, "loss": Infinity, "acc": 0.5}\n'
    )
    answering.records = [JobRecord("77", SessionState.RUNNING, "RUNNING", started_at=time.time())]
    _sync(workspace, answering)
    detail = workspace.show(name)
    assert detail["malformed_metric_lines"] == 2  # was 0
    assert detail["non_finite_values"] == 2  # was silent
    assert detail["last_step"] == 4
    assert main(["show", name, "--no-sync"]) == 0
    assert "2 malformed lines, 2 NaN/inf value(s) kept as gaps" in capsys.readouterr().out


# --- gc's lock and log --------------------------------------------------------------------


def test_gc_lock_is_next_to_the_catalog_and_the_cron_log_in_the_data_folder(
    workspace: Workspace, nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # nsml_env: catalog at <home>/catalog.db, data folder <home>/xdg-data/nsml-hpc
    with workspace.gc_lock():
        assert (nsml_env / "gc.lock").is_file()  # was <data folder>/gc.lock
        assert main(["gc", "--no-sync"]) != 0
        assert "another nsml-hpc gc is running" in capsys.readouterr().err
    assert not (nsml_env / "xdg-data" / "nsml-hpc" / "gc.lock").exists()
    assert main(["gc", "--cron", "--no-sync"]) == 0
    log = nsml_env / "xdg-data" / "nsml-hpc" / "gc.log"
    assert "no retention policy configured" in log.read_text()
    assert capsys.readouterr().out == ""
