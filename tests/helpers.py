"""Small helpers shared by the integration tests."""

from __future__ import annotations

import subprocess
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path

from nsml_hpc.actions import sync_now
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.spec import Resources, SessionSpec
from nsml_hpc.submit import Submitted, prepare, submit
from nsml_hpc.workspace import Workspace


def write_script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def submit_script(
    workspace: Workspace,
    code_root: Path,
    script: str,
    args: Iterable[str] = (),
    *,
    project: str = "itest",
    cluster: str = "local",
    **resources: object,
) -> Submitted:
    spec = SessionSpec(
        project=project,
        script=script,
        args=list(args),
        resources=Resources(**resources),  # type: ignore[arg-type]
        cluster=cluster,
    )
    prepared = prepare(spec, workspace.settings, code_root)
    return submit(prepared, workspace.catalog, workspace.settings, workspace.backend_for(cluster))


def wait_for_state(
    workspace: Workspace, name: str, states: set[str], timeout: float = 90.0
) -> SessionRecord:
    """Sync (honouring the poll floor) until the session is in one of ``states``."""
    deadline = time.monotonic() + timeout
    record = get_session(workspace.catalog, name)
    while time.monotonic() < deadline:
        sync_now(workspace)
        record = get_session(workspace.catalog, name)
        if record.state in states:
            return record
        time.sleep(0.3)
    raise AssertionError(f"{name} stayed {record.state} ({record.reason}); wanted {states}")


def slurm_job_ids() -> set[str]:
    """Every job id slurmctld knows right now (to prove a refused submit made no job)."""
    done = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return {line.strip() for line in done.stdout.splitlines() if line.strip()}


def max_job_id() -> int:
    """The highest job id slurmctld has handed out (sacct across all users, all time)."""
    done = subprocess.run(
        ["sacct", "-a", "-X", "-n", "-P", "--starttime=2020-01-01", "--format=JobIDRaw"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    ids = [int(line.split("_")[0]) for line in done.stdout.split() if line.split("_")[0].isdigit()]
    return max(ids, default=0)


def slurm_jobs_under(folder: Path) -> dict[str, tuple[str, str]]:
    """Jobs (queue and accounting, all users) whose working directory is under ``folder``:
    the jobs one test made, whatever else runs on the shared cluster. Job id -> (state,
    node list as sacct prints it)."""
    prefix = str(folder.resolve())
    queue = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i|%T|%N|%Z"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    accounting = subprocess.run(
        [
            "sacct", "-a", "-X", "-n", "-P", "--starttime=now-1day",
            "--format=JobIDRaw,State,NodeList,WorkDir",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout  # fmt: skip
    found: dict[str, tuple[str, str]] = {}
    for line in (queue + accounting).splitlines():
        fields = line.split("|")
        if len(fields) == 4 and fields[3].startswith(prefix):
            found.setdefault(fields[0].strip(), (fields[1], fields[2]))
    return found
