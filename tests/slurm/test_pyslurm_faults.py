"""Bad input for the pyslurm backend, against the real sandbox and without disturbing it: a
slurmctld that does not answer and a slurmdbd that refuses the connection are private copies
of slurm.conf pointing at a closed port (the shared daemons keep running); a missing libslurm
is the library hidden in a mount namespace of the command's own (``unshare -m``); a slurm.conf
libslurm cannot parse is a private file too. Each is ``nsml-hpc`` run as a command: ONE line
on stderr naming the cause and the fix, exit 4, nothing recorded. A sync while slurmdbd
refuses is the one exception: it goes on degraded (states from slurmctld, as main's sync does
when sacct fails) and says so in one warning line, exit 0.

(A pyslurm built for another Slurm: tests/slurm/test_pyslurm_choice.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.catalog.sessions import get_session, list_sessions, state_history
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.clusters_file import add_profile
from nsml_hpc.config.settings import load_settings
from nsml_hpc.sessions.actions import stop_session
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script
from tests.remote import closed_port

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

NSML_HPC = str(Path(sys.executable).with_name("nsml-hpc"))
LIBSLURM = Path("/usr/lib/x86_64-linux-gnu/libslurm.so.38")


@pytest.fixture
def cluster(nsml_env: Path, project_dir: Path) -> str:
    add_profile(ClusterProfile(name="api", backend="pyslurm"))
    write_script(project_dir, "train.py", "print('never runs')\n")
    return "api"


def _private_conf(folder: Path, **ports: int) -> Path:
    """This machine's slurm.conf with ``ports`` (SlurmctldPort=..., AccountingStoragePort=...)."""
    source = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    lines = [line for line in source.read_text().splitlines() if line.split("=", 1)[0] not in ports]
    conf = folder / "slurm.conf"
    conf.write_text("\n".join([*lines, *(f"{key}={value}" for key, value in ports.items()), ""]))
    return conf


def _nsml(
    *argv: str, conf: Path | None = None, prefix: tuple[str, ...] = (), stdout: str = ""
) -> tuple[int, str]:
    env = dict(os.environ)
    if conf is not None:
        env["SLURM_CONF"] = str(conf)
    done = subprocess.run(
        [*prefix, NSML_HPC, *argv],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert done.stdout.startswith(stdout) and (stdout or not done.stdout), done.stdout
    return done.returncode, done.stderr


def _nothing_recorded(nsml_env: Path) -> None:
    workspace = Workspace.open(load_settings())
    try:
        assert list_sessions(workspace.catalog) == []
    finally:
        workspace.close()
    assert [path for path in (nsml_env / "runs").rglob("*") if path.is_file()] == []


def test_a_submit_while_slurmctld_does_not_answer(
    cluster: str, nsml_env: Path, tmp_path: Path
) -> None:
    conf = _private_conf(tmp_path, SlurmctldPort=closed_port())
    started = time.monotonic()
    code, err = _nsml("submit", "--cluster", cluster, "train.py", conf=conf)
    assert code == 4
    (line,) = err.splitlines()
    assert line == (
        f"nsml-hpc: error: cluster {cluster}: slurmctld does not answer (Unable to contact "
        "slurm controller (connect failure)); start slurmctld, or correct "
        f"SlurmctldHost/SlurmctldPort in {conf}"
    )
    assert time.monotonic() - started < 120  # libslurm's own retries: about 9 s
    _nothing_recorded(nsml_env)


@pytest.fixture
def live_session(cluster: str, project_dir: Path) -> Iterator[str]:
    """A session of cluster ``api`` that runs for a minute (stopped afterwards)."""
    write_script(project_dir, "wait.py", "import time\ntime.sleep(60)\n")
    workspace = Workspace.open(load_settings())
    try:
        done = submit_script(workspace, project_dir, "wait.py", cluster=cluster)
        wait_for_state(workspace, done.name, {"RUNNING"}, timeout=120)
    finally:
        workspace.close()
    yield done.name
    workspace = Workspace.open(load_settings())
    try:
        stop_session(workspace, done.name)
    finally:
        workspace.close()


def test_a_sync_while_slurmdbd_refuses_the_connection(
    cluster: str, live_session: str, tmp_path: Path
) -> None:
    workspace = Workspace.open(load_settings())
    try:
        before = get_session(workspace.catalog, live_session)
        assert before.id is not None
        history = state_history(workspace.catalog, before.id)
    finally:
        workspace.close()
    conf = _private_conf(tmp_path, AccountingStoragePort=closed_port())
    time.sleep(0.6)  # past the poll floor
    # Degraded, not frozen (as with sacct failing): slurmctld still answers, so the states
    # come from ONE Jobs.load and the sync says why in one warning line.
    code, err = _nsml("sync", "--cluster", cluster, conf=conf, stdout="queried 1 cluster(s); 0")
    assert code == 0
    (line,) = err.splitlines()  # libslurm's own lines are caught, not printed
    assert line.startswith(
        f"nsml-hpc: warning: cluster {cluster}: slurmdbd refused the connection (Failed to "
        "get Jobs from slurmdbd: "
    )
    assert "Connection refused" in line
    assert f"AccountingStorageHost/AccountingStoragePort in {conf}; states from squeue" in line
    workspace = Workspace.open(load_settings())
    try:
        after = get_session(workspace.catalog, live_session)
        assert (after.state, after.reason) == (before.state, before.reason)
        assert state_history(workspace.catalog, before.id) == history
    finally:
        workspace.close()


def test_cluster_test_names_a_refusing_slurmdbd(cluster: str, tmp_path: Path) -> None:
    conf = _private_conf(tmp_path, AccountingStoragePort=closed_port())
    done = subprocess.run(
        [NSML_HPC, "cluster", "test", cluster],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "SLURM_CONF": str(conf)},
        check=False,
    )
    assert done.returncode == 4
    sacct = next(line for line in done.stdout.splitlines() if line.strip().startswith("sacct"))
    assert sacct.split()[1] == "FAIL"
    assert "slurmdbd refused the connection" in sacct
    assert done.stderr == ""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
def test_a_submit_without_libslurm(cluster: str, nsml_env: Path) -> None:
    """The library is hidden (bind-mounted /dev/null) for this one command only."""
    library = LIBSLURM.resolve()
    hide = ("unshare", "-m", "--propagation", "private", "sh", "-c")
    script = f'mount --bind /dev/null {library} && exec "$0" "$@"'
    code, err = _nsml("submit", "--cluster", cluster, "train.py", prefix=(*hide, script))
    assert code == 4
    (line,) = err.splitlines()
    assert line.startswith(
        f"nsml-hpc: error: pyslurm backend of cluster {cluster}: pyslurm 22.5.3 cannot load "
        "libslurm.so.38 ("
    )
    assert "file too short): install Slurm's client library (Debian: apt-get install " in line
    assert "libslurm38); or use the local backend" in line
    _nothing_recorded(nsml_env)


def test_a_slurm_conf_libslurm_cannot_read(cluster: str, nsml_env: Path, tmp_path: Path) -> None:
    """libslurm would end the whole process (fatal, exit 1); the backend finds out first."""
    conf = tmp_path / "slurm.conf"
    conf.write_text("this is not slurm.conf\n")
    code, err = _nsml("submit", "--cluster", cluster, "train.py", conf=conf)
    assert code == 4
    (line,) = err.splitlines()
    assert line.startswith(
        f"nsml-hpc: error: pyslurm backend of cluster {cluster}: libslurm cannot start (Parse "
        f"error in file {conf} line 1: "
    )
    assert f"correct the Slurm configuration ({conf}; sinfo shows the same)" in line
    _nothing_recorded(nsml_env)


def test_a_slurm_conf_variable_naming_no_file(cluster: str, nsml_env: Path) -> None:
    """libslurm would retry the missing file for 60 s and then end the process."""
    missing = nsml_env / "no-such-slurm.conf"
    code, err = _nsml("submit", "--cluster", cluster, "train.py", conf=missing)
    assert (code, err) == (
        4,
        f"nsml-hpc: error: pyslurm backend of cluster {cluster}: SLURM_CONF names {missing}, "
        "which does not exist; correct SLURM_CONF or unset it\n",
    )
    _nothing_recorded(nsml_env)
