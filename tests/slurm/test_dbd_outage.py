"""Degraded, not frozen: accounting (slurmdbd) unreachable for 60 s while sessions run.

The sandbox is shared, so slurmdbd itself is not stopped: the test's own Slurm commands read
a private copy of slurm.conf whose AccountingStoragePort is closed (``SLURM_CONF`` for this
process only). sacct then fails exactly as with slurmdbd down ("Problem talking to the
database: Connection refused") while slurmctld still answers squeue. The jobs were submitted
with the real config and never see the copy.

Checked: every sync during the outage runs ONE sacct (failing) and ONE squeue and says so once;
a running session stays RUNNING (no false change, never LOST); sessions that end during the
outage are seen ended through squeue (exit code and end time from the run directory's
``ended`` event where the wrapper wrote one); the first sync after the outage brings sacct's
truth (exit codes, end times) without a second state change.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from nsml_hpc.backends.remote_shell import EnvChanges
from nsml_hpc.backends.runner import LocalRunner
from nsml_hpc.catalog.sessions import get_session, jobs_of, state_history
from nsml_hpc.cli import main
from nsml_hpc.job.spec import EnvStep, SessionSpec
from nsml_hpc.sessions.actions import stop_session, sync_now
from nsml_hpc.submit.create import prepare, submit
from nsml_hpc.sync.run import PROVISIONAL_REASON
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("slurm_sandbox"),
]

OUTAGE_SECONDS = 60.0


@pytest.fixture
def accounting_down_conf(tmp_path: Path) -> Path:
    source = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    lines = [
        line
        for line in source.read_text().splitlines()
        if not line.startswith("AccountingStoragePort=")
    ]
    path = tmp_path / "slurm-dbd-down" / "slurm.conf"
    path.parent.mkdir()
    path.write_text("\n".join([*lines, "AccountingStoragePort=1", ""]))
    return path


def _sacct_truth(job_ids: list[str]) -> dict[str, tuple[str, str, float | None]]:
    fields = "--format=JobID,State,ExitCode,End"
    done = subprocess.run(
        ["sacct", "-X", "--noheader", "--parsable2", fields, f"--jobs={','.join(job_ids)}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "SLURM_TIME_FORMAT": "%s"},
    )
    truth: dict[str, tuple[str, str, float | None]] = {}
    for line in done.stdout.splitlines():
        job_id, state, exit_code, end = line.split("|")
        truth[job_id] = (state.split()[0], exit_code, float(end) if end.isdigit() else None)
    return truth


def test_a_60s_accounting_outage_with_running_sessions(
    workspace: Workspace,
    project_dir: Path,
    accounting_down_conf: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The jobs that end do so a little after the outage starts (the test creates GO then),
    # however long they waited in the queue of the shared cluster.
    go = project_dir / "GO"
    wait_go = f"import os, time\nwhile not os.path.exists({str(go)!r}):\n    time.sleep(0.5)\n"
    write_script(project_dir, "long.py", "import time\ntime.sleep(300)\n")
    write_script(project_dir, "ends_ok.py", wait_go + "time.sleep(10)\n")
    write_script(project_dir, "ends_3.py", wait_go + "time.sleep(15)\nraise SystemExit(3)\n")
    long = submit_script(workspace, project_dir, "long.py").name
    ok = submit_script(workspace, project_dir, "ends_ok.py").name
    three = submit_script(workspace, project_dir, "ends_3.py").name
    # Ends in the job script before the wrapper starts: no `ended` event, squeue alone knows.
    setup = f"while [ ! -e {go} ]; do sleep 0.5; done; sleep 20; exit 5"
    spec = SessionSpec(project="itest", script="long.py", environment=[EnvStep("setup", setup)])
    bare = submit(
        prepare(spec, workspace.settings, project_dir),
        workspace.catalog,
        workspace.settings,
        workspace.backend_for("local"),
    ).name
    names = [long, ok, three, bare]
    for name in names:
        wait_for_state(workspace, name, {"RUNNING"}, timeout=240)

    calls: list[str] = []
    original = LocalRunner.run

    def counting(
        self: LocalRunner, argv: list[str], *, timeout: float, env: EnvChanges | None = None
    ) -> Any:
        calls.append(argv[0])
        return original(self, argv, timeout=timeout, env=env)

    monkeypatch.setattr(LocalRunner, "run", counting)
    monkeypatch.setenv("SLURM_CONF", str(accounting_down_conf))
    go.touch()
    seen: dict[str, list[str]] = {name: [] for name in names}
    syncs = 0
    start = time.monotonic()
    while time.monotonic() - start < OUTAGE_SECONDS:
        calls.clear()
        report = sync_now(workspace)
        if report.queried:
            syncs += 1
            assert Counter(calls) == {"sacct": 1, "squeue": 1}, calls
            assert report.errors == {}
            assert list(report.degraded) == ["local"]
            assert "Problem talking to the database" in report.degraded["local"]
        for name in names:
            state = get_session(workspace.catalog, name).state
            if not seen[name] or seen[name][-1] != state:
                seen[name].append(state)
        time.sleep(2)
    assert syncs >= 10
    # What ps says while accounting is down: one warning line for the cluster, not one per
    # session, and the states it shows.
    capsys.readouterr()
    assert main(["ps"]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("nsml-hpc: warning:")]
    assert len(warnings) == 1 and "states from squeue" in warnings[0], err
    assert seen == {
        long: ["RUNNING"],
        ok: ["RUNNING", "COMPLETED"],
        three: ["RUNNING", "FAILED"],
        bare: ["RUNNING", "FAILED"],
    }
    during = {name: get_session(workspace.catalog, name) for name in names}
    assert during[long].reason is None
    assert (during[ok].reason, during[ok].exit_code) == (PROVISIONAL_REASON, 0)
    assert (during[three].reason, during[three].exit_code) == (PROVISIONAL_REASON, 3)
    assert (during[bare].reason, during[bare].exit_code) == (PROVISIONAL_REASON, None)
    for name in (ok, three):  # the wrapper's end, as the run directory has it
        assert during[name].ended_at is not None
    assert f"{ok}" in out and "COMPLETED" in out

    # Accounting is back: one sync brings sacct's truth.
    monkeypatch.delenv("SLURM_CONF")
    time.sleep(1)  # past the poll floor
    calls.clear()
    report = sync_now(workspace)
    assert report.queried == ["local"] and report.degraded == {} and report.errors == {}
    assert calls.count("sacct") == 1 and calls.count("squeue") <= 1
    assert report.state_changes == 0  # every state was already right
    after = {name: get_session(workspace.catalog, name) for name in names}
    history_of = jobs_of(workspace.catalog, [record.id or 0 for record in after.values()])
    job_ids = {name: history_of[record.id or 0][-1].job_id for name, record in after.items()}
    truth = _sacct_truth(list(job_ids.values()))
    for name, (state, exit_code) in {
        ok: ("COMPLETED", "0:0"),
        three: ("FAILED", "3:0"),
        bare: ("FAILED", "5:0"),
    }.items():
        record = after[name]
        assert truth[job_ids[name]][:2] == (state, exit_code)
        assert (record.state, record.reason) == (state, None)
        assert record.exit_code == int(exit_code.split(":")[0])
        assert record.ended_at == truth[job_ids[name]][2]
        assert record.id is not None
        history = [change.state for change in state_history(workspace.catalog, record.id)]
        assert history == ["SUBMITTED", "RUNNING", state]
    assert (after[long].state, after[long].reason) == ("RUNNING", None)
    stop_session(workspace, long)
    wait_for_state(workspace, long, {"CANCELLED"}, timeout=60)
