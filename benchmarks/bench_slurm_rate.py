"""Slurm commands per user-hour with an open TUI and a CLI ``watch``-style loop, on the sandbox.

Measured, not assumed: counting wrapper scripts named ``sacct``, ``squeue``, ``scontrol`` and
``sinfo`` go first on PATH (each appends one line to a log, then ``exec``s the real command),
so every Slurm command any process of this user runs is counted: the TUI (in this process,
headless through Textual's ``run_test``, the real background sync), the CLI loop (``nsml-hpc ps
--json`` every second in a fresh process, as ``watch -n 1`` would run it) and the submits.

The clocks are shortened by ``--scale`` (default 0.1): the Slurm clock's floor (60 s), the
action floor (5 s) and the wrappers' heartbeat (15 s) are multiplied by it and the ceiling
(60 commands an hour) divided by it, so ``--minutes`` of simulated time take
``minutes * 60 * scale`` real seconds; every figure is reported in simulated time. The file
clock (1 s) is NOT shortened: it asks Slurm nothing, and the delay target is in real seconds.

Workload (simulated minutes of a ``--minutes 60`` run; the same fractions otherwise), one
user, sessions submitted with the CLI as a user would:

* ``running``: 2 GPUs, reports a metric every 2 s, still running at the end;
* ``finishing``: 2 GPUs, completes (exit 0) at minute 20;
* ``pending``: 2 GPUs, waits for ``finishing``'s GPUs (other users' jobs on the shared sandbox
  may keep it waiting longer), then runs 10 minutes and completes;
* ``failing``: exits 3 at minute 30;
* ``killed``: ``scancel --signal=KILL`` at minute 24 (outside nsml-hpc: no user action);
* ``vanished``: its whole process group (wrapper and training process) killed with SIGKILL at
  minute 35, as a node failure or an out-of-memory kill would: the wrapper writes nothing, its
  heartbeat stops, and only Slurm can tell (FAILED, signal 9);
* ``late``: submitted at minute 45 (a user action), completes 5 minutes later.

With ``--cluster-screen``, the TUI's cluster screen is open from minute 40 to minute 50
(sinfo + squeue on the Slurm clock, from the same hourly allowance). The ceiling's hour cannot
be shortened (it is the policy's, and nothing a user sets may change it), so the run sets the
ceiling to what gives one simulated hour exactly the real hour's allowance: the token bucket
starts full (a tenth of the ceiling) and refills the rest over 3,600 real seconds, of which
the run sees ``3600 * scale``; :func:`scaled_ceiling` picks the largest ceiling whose burst
plus that refill is <= 60 (419 at --scale 0.05: a burst of 41, then 18.9 refilled). So the
ceiling binds in the short run as it does in a real hour (tests/catalog/test_slurm_clock_users.py
shows it binding at full scale).

Figures: Slurm query commands (sacct, squeue, sinfo, ``scontrol show``) per user-hour (target
<= 60; today's 5 s poll gave ~690 with one TUI); the delay from a state event the wrapper wrote
(``started``, ``ended``, with its time) to ``ps --json`` and to the TUI showing it (target
<= 2 s), with how long one ``ps`` takes; from ``scancel --signal=KILL`` to CANCELLED and from
the silent kill to Slurm's state in the TUI (target: within one Slurm floor, 60 s); and,
after an explicit ``nsml-hpc sync`` at the end, the disagreements left between the catalog and
sacct (target 0).

    .venv/bin/python benchmarks/bench_slurm_rate.py [--minutes 60] [--scale 0.1] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # mypy checks the TUI as the package "tui"; it ships as nsml_hpc.tui
    from tui.app import NsmlApp
    from tui.cluster.screen import ClusterScreen
else:
    from nsml_hpc.tui.app import NsmlApp
    from nsml_hpc.tui.cluster.screen import ClusterScreen

REPO = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("nsml-hpc"))
COUNTED = ("sacct", "squeue", "scontrol", "sinfo")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "LOST"}
TRAIN = """
import argparse, sys, time
import nsml_hpc

parser = argparse.ArgumentParser()
parser.add_argument("--seconds", type=float)
parser.add_argument("--code", type=int, default=0)
args = parser.parse_args()
start, step = time.time(), 0
while time.time() - start < args.seconds:
    nsml_hpc.report(step=step, loss=1.0 / (step + 1))
    step += 1
    time.sleep(2)
sys.exit(args.code)
"""


@dataclass
class Plan:
    minutes: float
    scale: float
    cluster_screen: bool = False

    def real(self, simulated_minutes: float) -> float:
        return simulated_minutes * 60 * self.scale

    @property
    def seconds(self) -> float:
        return self.real(self.minutes)

    def at(self, fraction_of_an_hour: float) -> float:
        """A moment of the workload in real seconds from the start (fractions of 60 min)."""
        return self.real(60 * fraction_of_an_hour) * self.minutes / 60


@dataclass
class Observed:
    """(real time, {session: state}) as each viewer showed it."""

    tui: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    ps: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    asked: list[tuple[float, str]] = field(default_factory=list)  # the TUI's queries, and why
    ps_run: list[float] = field(default_factory=list)  # seconds one ``ps --json`` took


def counting_wrappers(folder: Path, log: Path) -> None:
    for name in COUNTED:
        real = shutil.which(name)
        if real is None:
            raise SystemExit(f"{name} is not on PATH: is the Slurm sandbox up?")
        script = folder / name
        script.write_text(
            "#!/bin/sh\n"
            f'printf "%s %s %s\\n" "$(date +%s.%N)" {name} "$*" >> {log}\n'
            f'exec {real} "$@"\n',
            encoding="utf-8",
        )
        script.chmod(0o755)


def has_slurm_clock() -> bool:
    """Whether the nsml-hpc this Python runs has the Slurm clock (else: the baseline, e.g.
    ``/work/main/.venv/bin/python benchmarks/bench_slurm_rate.py`` before this change)."""
    from nsml_hpc.config.settings import Settings

    return hasattr(Settings, "slurm_policy")


def scaled_ceiling(scale: float, per_hour: int = 60) -> int:
    """The largest ``slurm_queries_per_hour`` whose allowance over a simulated hour (the full
    bucket, a tenth of it, plus the refill of ``3600 * scale`` real seconds) is <= ``per_hour``:
    the allowance a real hour gives, under a clock shortened by ``scale``."""
    from nsml_hpc.config.site_policy import SlurmPolicy

    best = 2
    for ceiling in range(2, round(per_hour / scale) + 1):
        policy = SlurmPolicy(queries_per_hour=ceiling)
        if policy.burst + policy.refill_per_second * 3600 * scale <= per_hour:
            best = ceiling
    return best


def environment(home: Path, plan: Plan, wrappers: Path) -> dict[str, str]:
    config = home / "config.toml"
    if has_slurm_clock():
        text = (
            f"slurm_floor_seconds = {60 * plan.scale}\n"
            f"poll_floor_seconds = {max(0.5, 5 * plan.scale)}\n"
            f"slurm_queries_per_hour = {scaled_ceiling(plan.scale)}\n"
            "sync_interval_seconds = 1\n"
        )
    else:  # the poll floor and the TUI's sync interval (both 5 s) were the Slurm clock
        text = (
            f"poll_floor_seconds = {max(0.5, 5 * plan.scale)}\n"
            f"sync_interval_seconds = {max(0.5, 5 * plan.scale)}\n"
        )
    config.write_text(text + "submit_grace_seconds = 60\n", encoding="utf-8")
    return {
        "NSML_HPC_CATALOG": f"sqlite:///{home / 'catalog.db'}",
        "NSML_HPC_RUN_ROOT": str(home / "runs"),
        "NSML_HPC_CONFIG": str(config),
        "NSML_HPC_SITE_CONFIG": str(home / "no-site.toml"),
        "NSML_HPC_HEARTBEAT": str(15 * plan.scale),
        "XDG_DATA_HOME": str(home / "xdg-data"),
        "XDG_CONFIG_HOME": str(home / "xdg-config"),
        "PATH": f"{wrappers}:{os.environ['PATH']}",
    }


def project_of(name: str) -> str:
    """Each workload session is project NAME, number 1."""
    return name.rsplit("/", 1)[0]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=300, check=False, cwd=cwd
    )


def submit(code: Path, name: str, seconds: float, *, gpus: int = 0, exit_code: int = 0) -> str:
    args = ["submit", "--project", name, "--grace", "0", "--gpus", str(gpus), "train.py"]
    done = cli(*args, "--seconds", f"{seconds:.1f}", "--code", str(exit_code), cwd=code)
    if done.returncode != 0:
        raise SystemExit(f"submit {name} failed: {done.stderr.strip()}")
    # "submitted NAME (job ID) -> RUN_DIR"
    return done.stdout.split("(job ", 1)[1].split(")", 1)[0]


def ps_states() -> dict[str, str] | None:
    done = cli("ps", "--json")
    if done.returncode != 0:
        return None
    return {project_of(row["name"]): row["state"] for row in json.loads(done.stdout)}


def ps_loop(stop: threading.Event, observed: Observed, rounds: list[int]) -> None:
    while not stop.is_set():
        began = time.time()
        states = ps_states()
        observed.ps_run.append(time.time() - began)
        if states is not None:
            observed.ps.append((time.time(), states))
            rounds[0] += 1
        stop.wait(1.0)


async def run_tui(plan: Plan, code: Path, observed: Observed, log: Path) -> dict[str, Any]:
    from nsml_hpc.config.settings import load_settings
    from nsml_hpc.workspace import Workspace

    workspace = Workspace.open(load_settings())

    def syncer(ws: Workspace) -> Any:
        report = Workspace.sync(ws)
        if report.queried:
            clock = getattr(report, "slurm_clock", {})  # the baseline has none
            why = "; ".join(f"{c}: {clock.get(c, '')}" for c in report.queried)
            observed.asked.append((time.time(), why))
        observed.tui.append(
            (time.time(), {project_of(row.name): row.state for row in ws.sessions()})
        )
        return report

    app = NsmlApp(workspace, syncer=syncer)
    jobs: dict[str, str] = {}
    moments: dict[str, float] = {}
    stop = threading.Event()
    rounds = [0]
    loop = threading.Thread(target=ps_loop, args=(stop, observed, rounds), daemon=True)
    async with app.run_test(size=(160, 50)) as pilot:
        start = time.time()
        log.write_text("")  # the window starts with the TUI open
        moments["start"] = start
        loop.start()
        for name, seconds, gpus, exit_code in (
            ("running", plan.seconds * 2, 2, 0),
            ("finishing", plan.at(20 / 60), 2, 0),
            ("pending", plan.real(10), 2, 0),
            ("failing", plan.at(30 / 60), 0, 3),
            ("killed", plan.seconds * 2, 0, 0),
            ("vanished", plan.seconds * 2, 0, 0),
        ):
            jobs[name] = await asyncio.to_thread(
                submit, code, name, seconds, gpus=gpus, exit_code=exit_code
            )
        timeline = [
            (plan.at(24 / 60), "kill"),
            (plan.at(35 / 60), "vanish"),
            (plan.at(45 / 60), "late"),
        ]
        if plan.cluster_screen:
            timeline += [(plan.at(40 / 60), "cluster"), (plan.at(50 / 60), "sessions")]
            timeline.sort()
        for when, what in timeline:
            await asyncio.sleep(max(0.0, start + when - time.time()))
            if what == "kill":
                moments["kill"] = time.time()
                await asyncio.to_thread(
                    subprocess.run, ["scancel", "--signal=KILL", jobs["killed"]], check=True
                )
            elif what == "vanish":
                moments["vanish"] = time.time()
                kill_job_processes(Path(os.environ["NSML_HPC_RUN_ROOT"]), "vanished")
            elif what == "cluster":
                app.push_screen(ClusterScreen())
            elif what == "sessions" and isinstance(app.screen, ClusterScreen):
                app.pop_screen()
            else:
                jobs["late"] = await asyncio.to_thread(submit, code, "late", plan.real(5))
        await asyncio.sleep(max(0.0, start + plan.seconds - time.time()))
        moments["end"] = time.time()
        stop.set()
        loop.join()
        await pilot.pause(0.1)
        tui_rounds = app.sync_rounds
    workspace.close()
    return {"jobs": jobs, "moments": moments, "tui_rounds": tui_rounds, "cli_rounds": rounds[0]}


def timeline(log: Path, start: float, end: float, scale: float) -> list[str]:
    """Each counted command: simulated seconds from the start, and its name."""
    found = []
    for line in log.read_text().splitlines():
        at, name, *_ = line.split(" ", 2)
        if start <= float(at) <= end:
            found.append(f"{(float(at) - start) / scale:.0f} {name}")
    return found


def kill_job_processes(run_root: Path, project: str) -> None:
    """SIGKILL to the wrapper's process group (the wrapper and the training process): what a
    node failure or the OOM killer does to a job. The pid is in its ``started`` event."""
    for path in run_root.glob(f"*/{project}/*/events.jsonl"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("event") == "started":
                group = os.getpgid(int(event["pid"]))
                if group == os.getpgid(0):
                    raise SystemExit("the job shares this process's group: not killing it")
                os.killpg(group, signal.SIGKILL)
                return
    raise SystemExit(f"no started event of {project} to find its wrapper")


def count(log: Path, start: float, end: float) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        at, name, *rest = line.split(" ", 2)
        if not start <= float(at) <= end:
            continue
        words = (rest[0] if rest else "").split()
        if name == "scontrol" and words[:1] != ["show"]:
            found[f"scontrol {words[0] if words else ''} (an action)"] += 1
            continue
        found[name] += 1
    return found


def state_events(run_root: Path) -> dict[str, list[tuple[str, float]]]:
    """Each session's started/ended events as the wrappers wrote them (project -> events)."""
    found: dict[str, list[tuple[str, float]]] = {}
    for path in run_root.glob("*/*/*/events.jsonl"):
        project = path.parent.parent.name
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") in ("started", "ended"):
                found.setdefault(project, []).append((event["event"], float(event["time"])))
    return found


def shows(state: str, kind: str) -> bool:
    return state != "PENDING" and state != "SUBMITTED" if kind == "started" else state in TERMINAL


def delays(
    events: dict[str, list[tuple[str, float]]], seen: list[tuple[float, dict[str, str]]]
) -> dict[str, float]:
    """``"project kind"`` -> seconds from the event's time to the first view that showed it."""
    found = {}
    for project, items in sorted(events.items()):
        for kind, at in items:
            later = [
                when
                for when, states in seen
                if when >= at and shows(states.get(project, "SUBMITTED"), kind)
            ]
            if later:
                found[f"{project} {kind}"] = round(min(later) - at, 2)
    return found


def accounting(job_ids: list[str]) -> dict[str, tuple[str, int | None]]:
    real = "/usr/bin/sacct" if Path("/usr/bin/sacct").exists() else "sacct"
    done = subprocess.run(
        [real, "-X", "-n", "-P", "-j", ",".join(job_ids), "--format=JobID,State,ExitCode"],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, tuple[str, int | None]] = {}
    for line in done.stdout.splitlines():
        job, state, code = line.split("|")
        found[job] = (state.split()[0].rstrip("+"), int(code.split(":")[0]))
    return found


def disagreements(jobs: dict[str, str]) -> list[str]:
    cli("sync")  # an explicit refresh: accounting confirms every end
    done = cli("ps", "--json")
    rows = {project_of(row["name"]): row for row in json.loads(done.stdout)}
    truth = accounting(list(jobs.values()))
    left = []
    for project, job in jobs.items():
        row = rows.get(project, {})
        state, code = truth.get(job, ("?", None))
        mine = (row.get("state"), row.get("exit_code") if state in TERMINAL else None)
        if mine != (state, code if state in TERMINAL else None):
            left.append(f"{project}: catalog {mine}, sacct {(state, code)}")
    return left


def cancel_and_wait(job_ids: list[str], timeout: float = 60.0) -> None:
    """Cancel what still runs and wait until it left the node (it writes in the run dirs)."""
    subprocess.run(["scancel", *job_ids], capture_output=True, check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = subprocess.run(
            ["squeue", "--noheader", "-j", ",".join(job_ids), "--format=%i"],
            capture_output=True,
            text=True,
            check=False,
        )
        if not queued.stdout.strip():
            return
        time.sleep(1.0)


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "max": None, "n": 0}
    return {"median": statistics.median(values), "max": max(values), "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="simulated minutes")
    parser.add_argument("--scale", type=float, default=0.1, help="real seconds per second")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--cluster-screen",
        action="store_true",
        help="open the TUI's cluster screen from minute 40 to minute 50",
    )
    args = parser.parse_args()
    plan = Plan(args.minutes, args.scale, args.cluster_screen)
    with tempfile.TemporaryDirectory(prefix="nsml-rate-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp)
        wrappers, code = home / "bin", home / "code"
        wrappers.mkdir()
        code.mkdir()
        (code / "train.py").write_text(TRAIN, encoding="utf-8")
        log = home / "slurm-commands.log"
        log.write_text("")
        counting_wrappers(wrappers, log)
        os.environ.update(environment(home, plan, wrappers))
        observed = Observed()
        ran = asyncio.run(run_tui(plan, code, observed, log))
        start, end = ran["moments"]["start"], ran["moments"]["end"]
        commands = count(log, start, end)
        commands_at = timeline(log, start, end, plan.scale)
        queries = sum(n for name, n in commands.items() if name in COUNTED)
        hours = (end - start) / (3600 * plan.scale)
        events = state_events(home / "runs")
        tui_delays, ps_delays = delays(events, observed.tui), delays(events, observed.ps)
        kill_at, vanish_at = ran["moments"]["kill"], ran["moments"]["vanish"]
        cancelled = [
            when - kill_at
            for when, states in observed.tui
            if when >= kill_at and states.get("killed") == "CANCELLED"
        ]
        vanished = [
            (when - vanish_at, states["vanished"])
            for when, states in observed.tui
            if when >= vanish_at and states.get("vanished") in TERMINAL
        ]
        left = disagreements(ran["jobs"])
        cancel_and_wait(list(ran["jobs"].values()))
    figures = {
        "code": "file-first, two clocks" if has_slurm_clock() else "baseline (no Slurm clock)",
        "scale": plan.scale,
        "simulated_minutes": plan.minutes,
        "cluster_screen": plan.cluster_screen,
        "real_seconds": round(end - start, 1),
        "clocks_simulated": {"slurm_floor": 60, "action_floor": 5, "heartbeat": 15},
        "clocks_real": {
            "slurm_floor": 60 * plan.scale,
            "action_floor": max(0.5, 5 * plan.scale),
            "heartbeat": 15 * plan.scale,
            "file_clock": 1.0,
        },
        "commands": dict(sorted(commands.items())),
        "queries": queries,
        "queries_per_user_hour": round(queries / hours, 1),
        "tui_rounds": ran["tui_rounds"],
        "cli_rounds": ran["cli_rounds"],
        "delay_event_to_tui_s": summary(list(tui_delays.values())),
        "delay_event_to_ps_s": summary(list(ps_delays.values())),
        "delays_tui_s": tui_delays,
        "delays_ps_s": ps_delays,
        "kill_to_cancelled_simulated_s": (
            round(min(cancelled) / plan.scale, 1) if cancelled else None
        ),
        "silent_kill_to_slurm_state_simulated_s": (
            round(vanished[0][0] / plan.scale, 1) if vanished else None
        ),
        "silent_kill_state": vanished[0][1] if vanished else None,
        "ps_run_s": summary(observed.ps_run),
        "command_times_simulated_s": commands_at,
        "tui_queries": [
            f"{(when - start) / plan.scale:.0f} {why}"
            for when, why in observed.asked
            if when <= end
        ],
        "disagreements_left": len(left),
        "disagreement_lines": left,
    }
    text = json.dumps(figures, indent=2, sort_keys=True)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
