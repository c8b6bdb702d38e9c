"""Following is never silent (issue 15): ``logs -f`` (and ``submit --follow``, which shares
the follower) says on stderr what a pending session waits for, and each change of state,
while the job's output goes to stdout. Slurm's answers come from a backend above the seam
(a scripted sacct); the Ctrl-C path runs against the real sandbox in
tests/slurm/test_everyday_slurm.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from nsml_hpc.cli import main
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.workspace import Workspace
from tests.catalog.test_everyday_defects import AnsweringBackend, _session


class ScriptedBackend(AnsweringBackend):
    """Each sacct call answers the next record; some calls also append to the job's log."""

    def __init__(self, run_dir: Path, steps: list[tuple[JobRecord, str]]) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.steps = steps

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        record, output = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if output:
            with (self.run_dir / "slurm-77.out").open("a") as log:
                log.write(output)
        return [record]


def test_logs_follow_says_why_a_session_waits_and_when_it_changes(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, run_dir = _session(workspace, "follow")
    now = time.time()
    pending = JobRecord("77", SessionState.PENDING, "PENDING", "Resources")
    running = JobRecord("77", SessionState.RUNNING, "RUNNING", started_at=now)
    done = JobRecord(
        "77", SessionState.COMPLETED, "COMPLETED", exit_code=0, started_at=now, ended_at=now + 3
    )
    backend = ScriptedBackend(
        run_dir,
        [
            (pending, ""),
            (pending, ""),
            (JobRecord("77", SessionState.PENDING, "PENDING", "Priority"), ""),
            (running, "hello from the job\n"),
            (running, "epoch 1 loss 0.5\n"),
            (done, ""),
        ],
    )
    workspace.use_backend("local", backend)
    import nsml_hpc.cli.session_commands as session_commands

    monkeypatch.setattr(session_commands, "open_workspace", _reuse(workspace))
    assert main(["logs", "-f", name]) == 0
    captured = capsys.readouterr()
    assert captured.out == "hello from the job\nepoch 1 loss 0.5\n"
    notes = captured.err.splitlines()
    assert notes == [
        f"nsml-hpc: {name} is PENDING (Resources) (job 77): waiting for Resources",
        f"nsml-hpc: {name} is PENDING (Priority) (job 77): waiting for Priority",
        f"nsml-hpc: {name} is RUNNING (job 77)",
        f"nsml-hpc: {name} is COMPLETED (job 77)",
    ]


def _reuse(workspace: Workspace) -> Callable[[], AbstractContextManager[Workspace]]:
    @contextmanager
    def opened() -> Iterator[Workspace]:
        yield workspace

    return opened
