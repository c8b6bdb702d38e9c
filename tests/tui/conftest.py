"""A fixed catalog for the TUI tests: six sessions in two projects with fixed timestamps,
metrics, events, logs and snapshots, a frozen clock, and the shipped fake backend above the
seam, over the local run directories (the TUI tests check what the TUI does with the library,
not Slurm; Slurm paths are tested against the real sandbox elsewhere, the TUI's included, in
tests/slurm/test_tui_tmux.py)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from nsml_hpc.backends.fake import FakeBackend, FakeJob
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, store_event_batch, store_metric_batch
from nsml_hpc.catalog.models import JobRecordRow, SessionRecord, StateChange
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.config.settings import Settings
from nsml_hpc.job.layout import SNAPSHOTS_DIR
from nsml_hpc.job.snapshot_format import MANIFEST_FILE, Manifest
from nsml_hpc.job.snapshot_store import collect_files
from nsml_hpc.job.spec import Resources, SessionSpec
from nsml_hpc.runfiles.scrape import parse_event_lines, parse_metric_lines
from nsml_hpc.slurm.sinfo import NodeGpus
from nsml_hpc.snapshots.actions import pin_model
from nsml_hpc.submit.rundir import json_bytes
from nsml_hpc.sync.run import SyncReport
from nsml_hpc.workspace import Workspace
from tests.tui.shipped import NsmlApp

T0 = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
NOW = T0 + 3 * 3600.0


SESSIONS = [
    # project, args, gpus, state, reason, exit, started (min after T0), ended, memo, curve
    ("mnist", ["--lr", "0.1", "--epochs", "30"], 2, "COMPLETED", None, 0, 2, 40, "baseline", 30),
    ("mnist", ["--lr", "0.05", "--epochs", "30"], 4, "RUNNING", None, None, 50, None, "", 22),
    (
        "mnist",
        ["--lr", "0.2", "--epochs", "30", "--amp"],
        4,
        "PENDING",
        "Resources",
        None,
        None,
        None,
        "",
        0,
    ),
    ("mnist", ["--lr", "1.0"], 1, "FAILED", None, 3, 10, 11, "diverged?", 3),
    (
        "cifar",
        ["--arch", "resnet18", "--lr", "0.1"],
        1,
        "RUNNING",
        None,
        None,
        30,
        None,
        "long run",
        40,
    ),
    ("cifar", ["--arch", "vit", "--lr", "0.001"], 2, "CANCELLED", None, None, 5, 20, "", 8),
]


def _curve(step: int, lr: float, offset: float) -> dict[str, float]:
    loss = 2.3 * math.exp(-step * min(lr, 0.5) / 2) + 0.05 + offset
    return {
        "train_loss": round(loss * 0.9, 5),
        "val_loss": round(loss, 5),
        "val_acc": round(min(0.99, 1 - loss / 2.5), 5),
    }


def _numbered(folder: Path, number: int) -> str:
    return str(folder / str(number))


def build_catalog(catalog: Catalog, run_root: Path) -> dict[str, int]:
    """The fixed sessions; returns name -> session id."""
    ids: dict[str, int] = {}
    for index, (
        project,
        args,
        gpus,
        state,
        reason,
        exit_code,
        start,
        end,
        memo,
        steps,
    ) in enumerate(SESSIONS):
        created = T0 + index * 60.0
        spec = SessionSpec(
            project=project, script="train.py", args=args, resources=Resources(gpus=gpus), memo=memo
        )
        record = reserve_session(
            catalog,
            spec=spec,
            user="alice",
            run_dir_for=partial(_numbered, run_root / "alice" / project),
            is_free=lambda n: True,
            now=created,
        )
        assert record.id is not None
        job_id = str(100 + index)
        mark_submitted(catalog, record.id, job_id=job_id, cluster="local", now=created + 1)
        run_dir = Path(record.run_dir)
        (run_dir / "code").mkdir(parents=True, exist_ok=True)
        (run_dir / "code" / "train.py").write_text("print('hi')\n")
        LocalFiles().write_bytes(
            str(run_dir / "session.json"),
            json_bytes({"name": record.name, "spec": spec.to_dict()}),
        )
        started = T0 + start * 60.0 if start is not None else None
        ended = T0 + end * 60.0 if end is not None else None
        with catalog.session() as db:
            row = db.get(SessionRecord, record.id)
            assert row is not None
            row.state, row.reason, row.exit_code = state, reason, exit_code
            row.started_at, row.ended_at = started, ended
            row.elapsed_s = (ended - started) if started and ended else None
            db.add(row)
            job = db.exec(select(JobRecordRow).where(JobRecordRow.session_id == record.id)).one()
            job.state, job.reason, job.exit_code = state, reason, exit_code
            job.started_at, job.ended_at = started, ended
            job.node_list = "vm" if started else None
            db.add(job)
            if started:
                db.add(
                    StateChange(session_id=record.id, at=started, state="RUNNING", job_id=job_id)
                )
            if ended:
                db.add(StateChange(session_id=record.id, at=ended, state=state, job_id=job_id))
            if state == "PENDING":
                db.add(
                    StateChange(
                        session_id=record.id,
                        at=created + 5,
                        state="PENDING",
                        reason=reason,
                        job_id=job_id,
                    )
                )
        lr = float(args[args.index("--lr") + 1])
        lines = [
            {"step": step, "time": (started or T0) + step * 30, **_curve(step, lr, index * 0.01)}
            for step in range(steps)
        ]
        if lines:
            chunk = "".join(json.dumps(line) + "\n" for line in lines).encode()
            batch = parse_metric_lines(chunk, 0, record.id)
            store_metric_batch(catalog, record.id, batch, CursorState(), len(chunk), NOW)
        if started:
            events = [
                {
                    "event": "started",
                    "time": started,
                    "job_id": job_id,
                    "host": "vm",
                    "cuda_visible_devices": ",".join(str(g) for g in range(gpus)),
                }
            ]
            if ended:
                events.append(
                    {"event": "ended", "time": ended, "job_id": job_id, "exit_code": exit_code or 0}
                )
            chunk = "".join(json.dumps(event) + "\n" for event in events).encode()
            store_event_batch(
                catalog,
                record.id,
                parse_event_lines(chunk, record.id),
                CursorState(),
                len(chunk),
                NOW,
            )
            log = "".join(
                f"epoch {step} val_loss {line['val_loss']}\n" for step, line in enumerate(lines)
            )
            (run_dir / f"slurm-{job_id}.out").write_text(f"starting {record.name}\n{log}")
        ids[record.name] = record.id
    _snapshots(run_root / "alice" / "mnist" / "1")
    return ids


def _snapshots(run_dir: Path) -> None:
    """mnist/1's snapshots as the snapshot feature writes them (its manifest schema, file list
    by its writer's ``collect_files``), with fixed times; ``ep30``'s file is cut short after
    the save, so the feature reads it as damaged."""
    for tag, step in (("ep10", 10), ("ep20", 20), ("best", 27), ("ep30", 30)):
        folder = run_dir / SNAPSHOTS_DIR / tag
        folder.mkdir(parents=True)
        (folder / "model.pt").write_bytes(b"\0" * (1000 * step))
        manifest = Manifest(
            tag=tag,
            step=step,
            metrics={"val_loss": round(2.3 * math.exp(-step * 0.05) + 0.05, 4)},
            files=tuple(collect_files(folder)),
            created=T0 + 600 + step * 60,
            job_id="100",
            session="mnist/1",
        )
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest.to_json(), indent=2))
    (run_dir / SNAPSHOTS_DIR / "ep30" / "model.pt").write_bytes(b"\0" * 100)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times print in UTC, so snapshots do not depend on the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@dataclass
class TuiWorld:
    workspace: Workspace
    backend: FakeBackend
    ids: dict[str, int]
    run_root: Path
    sync_report: SyncReport = field(default_factory=SyncReport)
    syncs: int = 0

    def sync(self, _workspace: Workspace) -> SyncReport:
        self.syncs += 1
        return self.sync_report

    def app(self, *, sync_interval: float = 3600.0, open_session: str | None = None) -> NsmlApp:
        return NsmlApp(
            self.workspace,
            clock=lambda: NOW,
            syncer=self.sync,
            sync_interval=sync_interval,
            user="alice",
            open_session=open_session,
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[TuiWorld]:
    run_root = tmp_path / "runs"
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    ids = build_catalog(catalog, run_root)
    settings = Settings(
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        run_root=run_root,
        poll_floor_seconds=5.0,
        sync_interval_seconds=3600.0,
        key_metric=None,
    )
    workspace = Workspace(settings=settings, catalog=catalog)
    backend = FakeBackend(
        files=LocalFiles(),  # the run directories are local
        clock=lambda: NOW,
        nodes=[
            NodeGpus("vm", "debug", True, "mixed", 6, 8, 4, 3, ()),
            NodeGpus("gpu01", "a100", False, "idle", 0, 64, 8, 0, ("a100",)),
            NodeGpus("gpu02", "a100", False, "drained", 0, 64, 8, 0, ("a100",)),
        ],
    )
    backend.add(  # what squeue shows of alice's jobs
        FakeJob(
            "101",
            "RUNNING",
            None,
            user="alice",
            name="mnist/2",
            gpus=4,
            submitted_at=T0 + 61,
            started_at=T0 + 3000,
            node_list="vm",
        ),
        FakeJob(
            "102",
            "PENDING",
            "Resources",
            user="alice",
            name="mnist/3",
            gpus=4,
            submitted_at=T0 + 121,
            start_at=T0 + 86400,
        ),
    )
    workspace.use_backend("local", backend)
    pin_model(workspace, "mnist/1", "ep20", True)  # pins live in the catalog
    yield TuiWorld(workspace, backend, ids, run_root)
    workspace.close()


async def settle(pilot: Any, timeout: float = 10.0) -> None:
    """Wait until no worker but the endless sync loop is pending or running."""
    from textual.worker import WorkerState

    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        await pilot.pause(0.02)
        busy = [
            worker
            for worker in pilot.app.workers
            if worker.group != "sync" and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
        ]
        quiet = 0 if busy else quiet + 1
    # What the last worker posted (rows, then the tables' new column widths) is laid out in
    # later refreshes: let the app process every pending message before anyone looks.
    for _ in range(3):
        await pilot.pause()
    await pilot.wait_for_scheduled_animations()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME is the test's folder, so paths print as ~/runs/... in every run."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path
