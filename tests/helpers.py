"""Small helpers shared by the integration tests."""

from __future__ import annotations

import subprocess
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypedDict, Unpack

from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.job.spec import Resources, SessionSpec
from nsml_hpc.sessions.actions import sync_now
from nsml_hpc.submit.create import Submitted, prepare, submit
from nsml_hpc.workspace import Workspace


def write_script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


class ResourceArgs(TypedDict, total=False):
    """What a test may ask of :class:`~nsml_hpc.job.spec.Resources` (checked against it)."""

    gpus: int
    nodes: int
    cpus_per_gpu: int | None
    mem: str | None
    time: str | None
    partition: str | None
    account: str | None
    qos: str | None
    constraint: str | None


def submit_script(
    workspace: Workspace,
    code_root: Path,
    script: str,
    args: Iterable[str] = (),
    *,
    project: str = "itest",
    cluster: str = "local",
    **resources: Unpack[ResourceArgs],
) -> Submitted:
    spec = SessionSpec(
        project=project,
        script=script,
        args=list(args),
        resources=Resources(**resources),
        cluster=cluster,
    )
    prepared = prepare(spec, workspace.settings, code_root)
    return submit(prepared, workspace.catalog, workspace.settings, workspace.backend_for(cluster))


def wait_for_state(
    workspace: Workspace,
    name: str,
    states: set[str],
    timeout: float = 90.0,
    *,
    reason: str | None = None,
) -> SessionRecord:
    """Sync (honouring the poll floor) until the session is in one of ``states`` (and, if
    given, pending for ``reason``: on a shared cluster a job can first wait for ``Priority``
    behind a neighbour's job before it waits for ``Resources`` itself)."""
    deadline = time.monotonic() + timeout
    record = get_session(workspace.catalog, name)
    while time.monotonic() < deadline:
        sync_now(workspace)
        record = get_session(workspace.catalog, name)
        if record.state in states and (reason is None or record.reason == reason):
            return record
        time.sleep(0.3)
    raise AssertionError(f"{name} stayed {record.state} ({record.reason}); wanted {states}")


def jobs_working_under(folder: Path) -> list[str]:
    """Job ids whose working directory is inside ``folder`` that are queued, running, or ran
    on a node (a refused submission must have made none). Other users' jobs on the shared
    cluster do not count.

    Slurm 22.05 keeps a bookkeeping record of some refused submissions (``--gres=gpu:5`` on a
    4-GPU node: state FAILED, Reason=BadConstraints, no node, sbatch exit 1, no job id); such
    a record never ran and is not counted.
    """
    queue = subprocess.run(
        [
            "squeue",
            "--noheader",
            "--states=PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED",
            "--format=%i|%Z",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    accounting = subprocess.run(
        [
            "sacct",
            "-a",
            "-X",
            "-n",
            "-P",
            "--starttime=now-1hours",
            "--format=JobIDRaw,WorkDir,NodeList",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    prefix = str(folder)
    found = []
    for line in queue.splitlines():
        job_id, _, workdir = line.partition("|")
        if workdir.startswith(prefix):
            found.append(job_id)
    for line in accounting.splitlines():
        job_id, workdir, nodes = [*line.split("|"), "", ""][:3]
        if workdir.startswith(prefix) and nodes and not nodes.startswith("None"):
            found.append(job_id)
    return found


def drop_database(conn: Any, database: str, attempts: int = 50) -> None:
    """DROP DATABASE ... WITH (FORCE) on a psycopg connection, again while a member's last
    session is still ending (the server ends a closed connection's backend a moment later)."""
    for attempt in range(attempts):
        try:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
