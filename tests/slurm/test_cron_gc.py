"""The design card's third user: cron running gc. With the sandbox's real cron daemon
(Debian's ``cron``, started by ``slurm-sandbox.sh up``), as the real user alice with her own
HOME, catalog, config and data folder (root's crontab is never touched; alice's is saved and
put back): ``gc --install-cron`` writes her crontab keeping her other lines, a second
installation replaces the line instead of adding one, cron runs it at the next minute, the
right snapshots go, and the gc log says so.

Debian 12's Slurm (slurm-client 22.05.8) ships no ``scrontab``, so only cron is tested here;
docs/snapshots.md gives the scrontab entry (`gc --install-cron ... --print --scrontab`, checked in
tests/catalog/test_gc.py) for sites that have it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ALICE = "alice"

SETUP = """
import time
from pathlib import Path
from sqlalchemy import update
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.job.snapshot_store import PendingSnapshot
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.workspace import Workspace

with Workspace.open() as ws:
    runs = ws.settings.run_root
    for number, tags in ((1, ["s1", "s2", "s3"]), (2, ["t1", "t2"])):
        record = reserve_session(
            ws.catalog,
            spec=SessionSpec(project="cron", script="train.py"),
            user="alice",
            run_dir_for=lambda n: str(runs / "alice" / "cron" / str(n)),
            is_free=lambda n: True,
            now=time.time(),
        )
        mark_submitted(ws.catalog, record.id, job_id=str(70 + number), cluster="local",
                       now=time.time())
        with ws.catalog.session() as db:
            db.execute(update(SessionRecord).where(SessionRecord.id == record.id)
                       .values(state="COMPLETED", ended_at=time.time() - 60))
        for step, tag in enumerate(tags, 1):
            pending = PendingSnapshot.begin(Path(record.run_dir) / "snapshots", tag)
            (pending.folder / "weights.bin").write_bytes(b"w" * 1000)
            pending.commit(step=step, metrics={"loss": 1.0 / step}, job_id=str(70 + number),
                           session=record.name, restart_count=0)
            time.sleep(0.05)
    ws.pin_snapshot("cron/1", "s1")
print("ready")
"""


def _alice(
    argv: list[str], env: dict[str, str], stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", ALICE, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def _crontab(env: dict[str, str]) -> str | None:
    done = _alice(["crontab", "-l"], env)
    if done.returncode != 0:
        assert "no crontab" in done.stderr.lower(), done.stderr
        return None
    return done.stdout


@pytest.fixture
def alice_home(slurm_sandbox: str) -> Iterator[tuple[Path, dict[str, str]]]:
    assert shutil.which("crontab"), "the sandbox installs Debian's cron"
    assert subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode == 0, (
        "cron is not running: sandbox/slurm-sandbox.sh up starts it"
    )
    user = pwd.getpwnam(ALICE)
    root = Path(user.pw_dir) / f"nsml-cron-{uuid.uuid4().hex[:10]}"
    root.mkdir()
    # alice cannot run the development venv's interpreter (it lives under /root): a venv of
    # the system's Python 3.11 of her own, seeing the same packages and this checkout.
    venv = root / "venv"
    subprocess.run(["/usr/bin/python3.11", "-m", "venv", "--without-pip", str(venv)], check=True)
    site = REPO / ".venv" / "lib" / "python3.11" / "site-packages"
    (venv / "lib" / "python3.11" / "site-packages" / "nsml_hpc_checkout.pth").write_text(
        f"{REPO}\n{site}\n"
    )
    (root / "config.toml").write_text("[gc]\nkeep_last = 1\n")
    env = {
        "HOME": user.pw_dir,
        "USER": ALICE,
        "LOGNAME": ALICE,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "NSML_HPC_CONFIG": str(root / "config.toml"),
        "NSML_HPC_CATALOG": f"sqlite:///{root / 'catalog.db'}",
        "NSML_HPC_RUN_ROOT": str(root / "runs"),
        "XDG_DATA_HOME": str(root / "data"),
        "XDG_CONFIG_HOME": str(root / "xdg-config"),
    }
    subprocess.run(["chown", "-R", f"{ALICE}:{ALICE}", str(root)], check=True)
    before = _crontab(env)
    try:
        yield root, env
    finally:
        if before is None:
            _alice(["crontab", "-r"], env)
        else:
            _alice(["crontab", "-"], env, stdin=before)
        shutil.rmtree(root, ignore_errors=True)


def test_cron_runs_gc_as_alice_and_the_right_snapshots_go(
    alice_home: tuple[Path, dict[str, str]],
) -> None:
    root, env = alice_home
    python = str(root / "venv" / "bin" / "python")
    done = _alice([python, "-c", SETUP], env, cwd=root)
    assert done.returncode == 0 and "ready" in done.stdout, done.stderr

    own = '# alice\'s own lines\nMAILTO=""\n17 4 * * * /bin/true\n'
    assert _alice(["crontab", "-"], env, stdin=own).returncode == 0
    install = [python, "-m", "nsml_hpc", "gc", "--install-cron", "* * * * *"]
    first = _alice(install, env, cwd=root)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("installed crontab line: * * * * * ")
    second = _alice(install, env, cwd=root)
    assert second.returncode == 0 and second.stdout.startswith("replaced crontab line: ")
    table = _crontab(env)
    assert table is not None
    lines = table.splitlines()
    assert lines[:3] == own.splitlines()  # her lines, as they were
    ours = [line for line in lines if line.endswith("# nsml-hpc gc")]
    assert len(ours) == 1  # installed twice, one line
    assert f"NSML_HPC_CATALOG=sqlite:///{root / 'catalog.db'}" in ours[0]
    assert f"{python} -m nsml_hpc gc --cron" in ours[0]

    log = root / "data" / "nsml-hpc" / "gc.log"
    deadline = time.monotonic() + 150  # the next minute boundary, then gc itself
    while time.monotonic() < deadline and "deleted 2 snapshot(s)" not in (
        log.read_text() if log.exists() else ""
    ):
        time.sleep(2)
    text = log.read_text() if log.exists() else "(no log)"
    assert "deleted 2 snapshot(s)" in text, text
    assert "deleted cron/1:s2" in text and "deleted cron/2:t1" in text
    assert "kept 3 (" in text  # s1 (pinned), s3 and t2 (the latest of each)
    runs = root / "runs" / "alice" / "cron"
    left = {
        f"{session.name}:{tag.name}"
        for session in runs.iterdir()
        for tag in (session / "snapshots").iterdir()
        if not tag.name.startswith(".")
    }
    assert left == {"1:s1", "1:s3", "2:t2"}
    assert os.stat(log).st_uid == pwd.getpwnam(ALICE).pw_uid  # cron ran it as alice
