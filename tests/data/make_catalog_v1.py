"""Write tests/data/catalog_v1.sqlite.sql and catalog_v1.postgresql.sql: catalogs made by the
code BEFORE migrations existed (schema version 1, commit 1025655 of main), with two users'
sessions, job ids, state history, metric points (summaries and blocks), events, captured
sources, GPU samples, scrape cursors, snapshots (one pinned, one forked from), a fork's
lineage, job runs, a poll row and a cluster-info cache row.

The upgrade tests (tests/catalog/test_migrations.py) load these dumps and open them with the
current code. To regenerate (only ever from that old commit's code):

    git worktree add /tmp/v1 1025655
    PYTHONPATH=/tmp/v1 .venv/bin/python tests/data/make_catalog_v1.py "$NSML_HPC_TEST_PG_URL"

The PostgreSQL dump is pg_dump's (--inserts, no owner, no privileges) of a schema named
``nsml_v1_dump``; the test puts its own schema name in place of that one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import make_url, text

from nsml_hpc.catalog.engine import SCHEMA_VERSION, open_catalog
from nsml_hpc.catalog.metrics import CursorState, store_event_batch, store_metric_batch
from nsml_hpc.catalog.models import (
    ClusterPoll,
    GpuUsage,
    JobRecordRow,
    MetricSource,
    SessionRecord,
    StateChange,
)
from nsml_hpc.catalog.snapshot_models import (
    JobRunRecord,
    LineageRecord,
    SnapshotRecord,
    SnapshotScan,
)
from nsml_hpc.sync.scrape import parse_event_lines, parse_metric_lines

HERE = Path(__file__).resolve().parent
DUMP_SCHEMA = "nsml_v1_dump"
T0 = 1_796_000_000.0  # 2026-11-30, fixed so the dumps are reproducible


def _session(project: str, number: int, user: str, state: str, **extra: object) -> SessionRecord:
    spec = {
        "project": project,
        "script": "train.py",
        "args": ["--lr", str(0.1 / number)],
        "cluster": "local",
        "memo": "",
        "resources": {"gpus": 1, "nodes": 1},
    }
    return SessionRecord(
        name=f"{project}/{number}",
        project=project,
        number=number,
        user=user,
        cluster="local",
        state=state,
        run_dir=f"/srv/nsml-runs/{user}/{project}/{number}",
        spec_json=json.dumps(spec, sort_keys=True),
        hyperparameters_json=json.dumps({"lr": 0.1 / number}),
        memo=f"run {number} of {user}",
        gpus=1,
        created_at=T0 + number,
        submitted_at=T0 + number,
        updated_at=T0 + number,
        **extra,  # type: ignore[arg-type]
    )


def fill(url: str) -> None:
    catalog = open_catalog(url)
    assert SCHEMA_VERSION == 1, "run this with the code of schema version 1"
    sessions = [
        _session("team", 1, "alice", "COMPLETED", started_at=T0 + 5, ended_at=T0 + 100),
        _session("team", 2, "bob", "RUNNING", started_at=T0 + 6),
        # marked LOST by bob's sync while alice's job ran (the bug this release fixes)
        _session(
            "team", 3, "alice", "LOST", reason="Slurm no longer knows this job", ended_at=T0 + 90
        ),
        _session("mnist", 1, "alice", "FAILED", exit_code=3, ended_at=T0 + 50),
    ]
    with catalog.session() as db:
        for record in sessions:
            db.add(record)
    ids = {record.name: record.id for record in sessions}
    assert all(ids.values())
    with catalog.session() as db:
        for number, (name, session_id) in enumerate(ids.items(), 40):
            assert session_id is not None
            state = next(s.state for s in sessions if s.name == name)
            db.add(
                JobRecordRow(
                    session_id=session_id,
                    cluster="local",
                    job_id=str(number),
                    state=state,
                    submitted_at=T0,
                    node_list="vm",
                )
            )
            db.add(StateChange(session_id=session_id, at=T0, state="SUBMITTED", job_id=str(number)))
            db.add(StateChange(session_id=session_id, at=T0 + 9, state=state, job_id=str(number)))
        team1 = ids["team/1"]
        team2 = ids["team/2"]
        assert team1 is not None and team2 is not None
        db.add(GpuUsage(session_id=team2, last_sample_at=T0 + 60, last_util=87.0, samples=12))
        db.add(MetricSource(session_id=team1, name="tb/acc", source="tensorboard:events.out"))
        db.add(
            SnapshotRecord(
                session_id=team1,
                tag="step-10",
                step=10,
                metrics_json='{"loss": 0.5}',
                bytes=4096,
                file_count=2,
                created_at=T0 + 40,
                job_id="40",
                pinned=True,
            )
        )
        db.add(
            SnapshotRecord(
                session_id=team1,
                tag="step-20",
                step=20,
                metrics_json='{"loss": 0.25}',
                bytes=8192,
                file_count=2,
                created_at=T0 + 80,
                job_id="40",
                forked_from=True,
            )
        )
        db.add(SnapshotScan(session_id=team1, dir_mtime_ns=123, scanned_at=T0 + 81))
        db.add(
            LineageRecord(
                child_session_id=ids["mnist/1"] or 0,
                parent_session_id=team1,
                parent_name="team/1",
                parent_tag="step-20",
                parent_step=20,
                parent_snapshot_path="/srv/nsml-runs/alice/team/1/snapshots/step-20",
                overrides_json='{"lr": 0.01}',
                created_at=T0 + 85,
            )
        )
        db.add(
            JobRunRecord(
                session_id=team1,
                job_id="40",
                restart_count=0,
                started_at=T0 + 5,
                ended_at=T0 + 100,
                host="vm",
                exit_code=0,
                outcome="ended",
            )
        )
        db.add(ClusterPoll(cluster="local", last_query_at=T0 + 99, queries=7))
    for name, session_id in ids.items():
        assert session_id is not None
        lines = b"".join(
            json.dumps(
                {"step": step, "time": T0 + step, "loss": 1.0 / (step + 1), "acc": step / 30}
            ).encode()
            + b"\n"
            for step in range(30)
        )
        batch = parse_metric_lines(lines, 0, session_id)
        store_metric_batch(catalog, session_id, batch, CursorState(), len(lines), T0 + 100)
        events = (
            json.dumps({"event": "started", "time": T0 + 5, "job_id": "40", "host": "vm"}).encode()
            + b"\n"
        )
        if name == "team/1":
            events += json.dumps({"event": "ended", "time": T0 + 100, "exit_code": 0}).encode()
            events += b"\n"
        store_event_batch(
            catalog,
            session_id,
            parse_event_lines(events, session_id),
            CursorState(),
            len(events),
            T0 + 100,
        )
    with catalog.engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO cluster_info_cache (cluster, "user", claimed_at, payload_json) '
                "VALUES ('local', 'alice', :at, '{}')"
            ),
            {"at": T0},
        )
    catalog.close()


def sqlite_dump() -> str:
    import sqlite3

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v1.db"
        fill(f"sqlite:///{path}")
        connection = sqlite3.connect(path)
        dump = "\n".join(connection.iterdump()) + "\n"
        connection.close()
    return dump


def postgresql_dump(base_url: str) -> str:
    from nsml_hpc.catalog.engine import open_catalog as opener

    admin = opener(base_url)
    with admin.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{DUMP_SCHEMA}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{DUMP_SCHEMA}"'))
    admin.close()
    fill(f"{base_url}?options=-csearch_path%3D{DUMP_SCHEMA}")
    url = make_url(base_url)
    done = subprocess.run(
        [
            "pg_dump",
            "--inserts",
            "--no-owner",
            "--no-privileges",
            f"--schema={DUMP_SCHEMA}",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "",
            url.database or "",
        ],
        env={"PGPASSWORD": url.password or "", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    cleanup = opener(base_url)
    with cleanup.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{DUMP_SCHEMA}" CASCADE'))
    cleanup.close()
    # Keep statements only (no comments, no psql meta-commands): the test runs it with
    # SQLAlchemy, statement by statement.
    lines = [
        line
        for line in done.stdout.splitlines()
        if line and not line.startswith("--") and not line.startswith("\\")
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    (HERE / "catalog_v1.sqlite.sql").write_text(sqlite_dump())
    if len(sys.argv) > 1:
        (HERE / "catalog_v1.postgresql.sql").write_text(postgresql_dump(sys.argv[1]))
    print("wrote", *sorted(p.name for p in HERE.glob("catalog_v1.*.sql")))


if __name__ == "__main__":
    main()
