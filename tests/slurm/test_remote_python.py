"""The Python a remote job runs with (issue 15): not the cluster's bare ``python3`` but the
newest recent-enough one it has, found with one command over the connection and kept in the
catalog for a day; ``cluster test`` shows the choice and runs the in-job imports with it, and
FAILs naming the cause when they do not work. Against the sandbox's sshd as alice."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from nsml_hpc.cli import main
from nsml_hpc.workspace import Workspace
from tests.helpers import write_script
from tests.remote import Sandbox

pytestmark = pytest.mark.slurm


def _sandbox_pythons() -> list[tuple[str, str]]:
    """What alice's login shell has, asked directly (the expected answer)."""
    found = []
    for name in ("python3.14", "python3.13", "python3.12", "python3.11", "python3.10"):
        done = subprocess.run(
            ["runuser", "-u", "alice", "--", "sh", "-c", f"command -v {name}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            found.append((name, done.stdout.strip()))
    return found


def test_a_remote_job_runs_the_newest_recent_python_of_the_cluster(
    remote_workspace: Workspace,
    ssh_cluster: str,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    newest = _sandbox_pythons()[0][1]  # /usr/bin/python3.11 on Debian 12
    write_script(project_dir, "train.py", "print('hi')\n")
    assert main(["submit", "--cluster", ssh_cluster, "--dry-run", "train.py"]) == 0
    script = capsys.readouterr().out
    assert f"exec {newest} -m nsml_hpc.job " in script  # was: exec python3 -m nsml_hpc.job
    # the answer is kept: a second dry run asks nothing (the cache row is there)
    from sqlmodel import select

    from nsml_hpc.catalog.models import CatalogMeta

    with remote_workspace.catalog.session() as db:
        rows = db.exec(select(CatalogMeta).where(CatalogMeta.key == f"job_python:{ssh_cluster}"))
        assert newest in rows.one().value


def test_cluster_test_runs_the_in_job_imports_with_the_jobs_python(
    remote_workspace: Workspace,
    sandbox: Sandbox,
    remote_root: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["cluster", "test", "sandbox"]) == 0
    out = capsys.readouterr().out
    assert "python      ok   /usr/bin/python3.11 is Python 3.11" in out
    assert "chosen from" in out

    # An interpreter that runs but cannot import what a job needs: this one ignores
    # PYTHONPATH (isolated mode), as some site wrappers do, so the run directory's copy of
    # the in-job modules is out of its reach.
    home = Path("/home/alice")
    wrapper = home / f"isolated-python-{uuid.uuid4().hex[:8]}"
    wrapper.write_text('#!/bin/sh\nexec /usr/bin/python3 -I "$@"\n')
    wrapper.chmod(0o755 | stat.S_IXUSR)
    os.chown(wrapper, *_alice_ids())
    try:
        sandbox.add("isolated", remote_root, remote_python=str(wrapper))
        assert main(["cluster", "test", "isolated"]) == 4
        out = capsys.readouterr().out
        assert f"{wrapper} cannot run the in-job code" in out
        assert "No module named 'nsml_hpc'" in out
    finally:
        wrapper.unlink()


def _alice_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("alice")
    return entry.pw_uid, entry.pw_gid
