"""End to end in a real terminal: ``nsml-hpc tui`` runs in tmux against the real Slurm sandbox
while another shell submits a session with ``nsml-hpc submit``; the screen (read with
``tmux capture-pane``) shows it appear, run, report metrics and complete.

The "cluster unreachable" state is made for the TUI alone. The sandbox is shared with other
tests and helpers running at the same moment, so the test does not stop slurmctld (a stopped
controller fails everybody's sbatch/squeue for as long as it is down, and a stopped slurmdbd
makes everybody's sacct hang). Instead the TUI runs with ``SLURM_CONF`` pointing at a private
copy of slurm.conf; for the outage that copy is atomically replaced by one whose controller and
accounting ports are closed, so every Slurm command the TUI runs fails exactly as it does when
the daemons are down ("Connection refused"), and then the good copy is put back. The
replacement is undone in a ``finally`` block, and tmux runs on a private socket that is killed
at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import write_script

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("slurm_sandbox")]

NSML = str(Path(sys.executable).with_name("nsml-hpc"))
TRAIN = """
    import time, nsml_hpc
    for step in range(STEPS):
        nsml_hpc.report(step=step, val_loss=round(1.0 / (step + 1), 4), acc=step / STEPS)
        print("step", step, flush=True)
        time.sleep(1)
"""


class Tmux:
    """One tmux server on a private socket, with one window running the TUI."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "tui")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "tui", *keys)

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.5)
        raise AssertionError(f"the TUI never showed {what}; last screen:\n{text}")


def _line_of(screen: str, name: str) -> str:
    """The session's row in the sessions table; "" while another screen is shown (the session
    screen's title line also starts with the name and its state)."""
    if not re.search(r"^\s*nsml-hpc · \d+ sessions?\b", screen, re.MULTILINE):
        return ""
    for line in screen.splitlines():
        if re.search(rf"(^|\s){re.escape(name)}\s", line):
            return line
    return ""


def _write_conf(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(text)
    temp.replace(path)  # atomic: a Slurm command reads the old or the new file


@pytest.fixture
def slurm_conf(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    source = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    good = source.read_text()
    kept = [
        line
        for line in good.splitlines()
        if not line.startswith(("SlurmctldPort=", "AccountingStoragePort="))
    ]
    broken = "\n".join([*kept, "SlurmctldPort=1", "AccountingStoragePort=1", ""])
    path = tmp_path / "slurm-conf" / "slurm.conf"
    path.parent.mkdir()
    path.write_text(good)
    yield path, good, broken


@pytest.fixture
def tui(nsml_env: Path, tmp_path: Path, slurm_conf: tuple[Path, str, str]) -> Iterator[Tmux]:
    assert shutil.which("tmux"), "tmux is installed by scripts/setup.sh"
    tmux = Tmux(f"nsml-test-{uuid.uuid4().hex[:8]}")
    env = {
        "NSML_HPC_CATALOG": os.environ["NSML_HPC_CATALOG"],
        "NSML_HPC_RUN_ROOT": os.environ["NSML_HPC_RUN_ROOT"],
        "NSML_HPC_CONFIG": os.environ["NSML_HPC_CONFIG"],
        "NSML_HPC_POLL_FLOOR": "0.5",
        "NSML_HPC_SYNC_INTERVAL": "1",
        "SLURM_CONF": str(slurm_conf[0]),
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
    }
    # COLUMNS/LINES left in the environment by other tests would override the pane's size.
    command = " ".join(
        ["env", "-u", "COLUMNS", "-u", "LINES"]
        + [f"{key}={value}" for key, value in env.items()]
        + [NSML, "tui"]
    )
    tmux.run("new-session", "-d", "-s", "tui", "-x", "150", "-y", "40", command)
    # Detached, tmux would shrink the window to its default size; keep it 150x40.
    tmux.run("set-option", "-t", "tui", "window-size", "manual")
    tmux.run("resize-window", "-t", "tui", "-x", "150", "-y", "40")
    try:
        tmux.wait_for(lambda s: "sessions" in s and "synced" in s, "the sessions screen", 60)
        yield tmux
    finally:
        try:
            tmux.keys("q")
            time.sleep(0.5)
        finally:
            subprocess.run(
                ["tmux", "-L", tmux.socket, "kill-server"], capture_output=True, check=False
            )


def test_a_session_submitted_elsewhere_appears_runs_reports_and_completes(
    tui: Tmux, project_dir: Path, slurm_conf: tuple[Path, str, str]
) -> None:
    conf_path, good, broken = slurm_conf
    write_script(project_dir, "train.py", TRAIN.replace("STEPS", "14"))
    submitted = subprocess.run(
        [NSML, "submit", "--project", "tmuxe2e", "train.py"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "NSML_HPC_POLL_FLOOR": "0.5"},
    )
    name = submitted.stdout.split()[1]
    assert name == "tmuxe2e/1", submitted.stdout

    tui.wait_for(lambda s: name in s, f"{name} in the table")
    tui.wait_for(lambda s: "RUNNING" in _line_of(s, name), f"{name} RUNNING", 300)

    try:
        _write_conf(conf_path, broken)
        tui.wait_for(
            lambda s: "unreachable — showing cached data" in s,
            "the cluster-unreachable warning",
            60,
        )
        assert name in tui.screen()  # the cached table stays
    finally:
        _write_conf(conf_path, good)
    tui.wait_for(lambda s: "unreachable" not in s and "synced" in s, "the warning cleared", 60)

    tui.wait_for(
        lambda s: re.search(r"\b0\.\d+\b", _line_of(s, name)) is not None,
        f"{name}'s val_loss in the table",
    )
    tui.keys("Enter")
    tui.wait_for(lambda s: "Overview" in s and "train.py" in s, "the session screen")
    tui.keys("2")
    tui.wait_for(lambda s: re.search(r"tmuxe2e/1 · \d+ points", s) is not None, "the plot")
    tui.keys("3")
    tui.wait_for(lambda s: "step 3" in s, "the followed log")
    # The outage lasts as long as Slurm's commands take to fail (squeue retries the closed
    # controller port for seconds), so the job may have ended before the session screen
    # opened; its title line then already says COMPLETED. Only the table's row counts.
    tui.keys("Escape")
    final = tui.wait_for(lambda s: "COMPLETED" in _line_of(s, name), f"{name} COMPLETED", 180)
    assert "0.0714" in _line_of(final, name)  # the last val_loss, 1/14
