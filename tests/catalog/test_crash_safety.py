"""A sync killed with SIGKILL at any instant loses no reported metric and doubles none."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nsml_hpc.catalog.metrics import metric_lines
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.job.spec import SessionSpec
from tests.conftest import create_postgres_schema

WRITER = """
import os, sys, nsml_hpc
for step in range(int(sys.argv[1])):
    nsml_hpc.report(step=step, loss=1.0 / (step + 1), acc=step * 0.001)
"""

SYNCER = """
import sys
from nsml_hpc.backends.fake import FakeBackend
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.errors import BackendError
from nsml_hpc.config.settings import load_settings
from nsml_hpc.sync.run import sync
from nsml_hpc.workspace import Workspace

# Slurm does not answer (the poll floor keeps it from being asked anyway); the run
# directories are on the local file system as usual.
backend = FakeBackend(files=LocalFiles())
backend.fail("query", "queue", error=BackendError("slurmctld is down in this test"))
ws = Workspace.open(load_settings())
once = sys.argv[1:] == ["once"]
while True:
    sync(ws.catalog, ws.settings, lambda cluster: backend)
    if once:
        break
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_killed_syncs_lose_and_double_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = _fresh_postgres_schema(request.getfixturevalue("postgres_url"))
    run_dir = tmp_path / "runs" / "alice" / "crash" / "1"
    run_dir.mkdir(parents=True)
    catalog = open_catalog(url)
    record = reserve_session(
        catalog,
        spec=SessionSpec(project="crash", script="w.py"),
        user="alice",
        run_dir_for=lambda n: str(run_dir),
        is_free=lambda n: True,
        now=time.time(),
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id="1", cluster="local", now=time.time())

    env = {**os.environ, "NSML_HPC_CATALOG": url, "NSML_HPC_RUN_DIR": str(run_dir)}
    env["NSML_HPC_POLL_FLOOR"] = "1000"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, "30000"], env=env)
    rng = random.Random(1234)
    kills = 0
    while writer.poll() is None or kills < 12:
        syncer = subprocess.Popen([sys.executable, "-c", SYNCER], env=env)
        time.sleep(rng.uniform(0.3, 1.2))
        syncer.send_signal(signal.SIGKILL)
        syncer.wait()
        kills += 1
    assert writer.wait() == 0
    # The last sync runs to its end (however loaded the machine): it must find what the killed
    # ones left, exactly once.
    subprocess.run([sys.executable, "-c", SYNCER, "once"], env=env, check=True, timeout=240)

    in_file = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(in_file) == 30000
    assert metric_lines(catalog, record.id) == in_file
    catalog.close()


def _fresh_postgres_schema(base_url: str) -> str:
    import uuid

    schema = f"crash_{uuid.uuid4().hex[:10]}"
    create_postgres_schema(base_url, schema)
    return f"{base_url}?options=-csearch_path%3D{schema}"
