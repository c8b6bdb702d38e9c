"""The login-node commands against a bare ``python3 -c pass``, side by side in one run (issue 16).

Builds a SQLite catalog of ``--sessions`` (10,000) finished sessions of the caller (40 projects,
hyperparameters, memos, a job each), then runs every command as its own process, in rounds
(interleaved), and prints medians with the targets' ratios and MEETS/MISSES:

* ``nsml-hpc --help`` and every ``nsml-hpc SUBCOMMAND --help`` (the slowest one): <= 3x bare;
* ``nsml-hpc ps --no-sync`` over the 10,000 sessions: <= 300 ms and <= 15x bare;
* ``nsml-hpc ps`` with a sync that has nothing new (no live session): <= 400 ms;
* ``nsml-hpc show SESSION``: <= 300 ms.

* ``nsml-hpc ps`` while ``--live`` (20) sessions of the caller run, nothing new in their run
  directories and the Slurm clock not due: <= 400 ms (the last full sync's watch list says a
  sync would do nothing: :mod:`nsml_hpc.sync.watchlist`; an untimed ``ps`` before each timed
  one writes it, as the ``ps`` a user ran a moment earlier did).

Informational: ``ps`` while one session of the caller is live and its sync has something to do
(the first sync of a fresh copy: it runs in full).

Run: ``.venv/bin/python benchmarks/bench_startup.py [--rounds 5] [--python OTHER_VENV_PYTHON]``
(``--python`` measures another checkout's code on the same catalog: before/after).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(path: Path, sessions: int, python: str) -> None:
    """The catalog's schema from nsml-hpc itself, then the rows with sqlite3 (fast)."""
    url = f"sqlite:///{path}"
    subprocess.run(
        [python, "-c", f"from nsml_hpc.catalog import open_catalog; open_catalog({url!r})"],
        check=True,
        cwd=path.parent,
        env={**os.environ, "NSML_HPC_CATALOG": url},
    )
    me = getpass.getuser()
    now = time.time()
    states = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]
    rows = []
    for index in range(sessions):
        project = f"proj{index % 40}"
        number = index // 40 + 1
        rows.append(
            (
                f"{project}/{number}",
                project,
                number,
                me,
                me,
                "local",
                states[index % 4],
                3 if index % 4 == 1 else None,
                f"/runs/{project}/{number}",
                json.dumps({"project": project, "script": "train.py", "args": [], "resources": {}}),
                json.dumps({"lr": 0.1 * (index % 7 + 1), "seed": index}),
                f"memo {index}" if index % 5 == 0 else "",
                index % 9,
                now - 86400 - index * 60,
                now - 86400 - index * 60 + 30,
                now - 86400 - index * 60 + 3000,
                2970.0,
                index * 10,
                json.dumps({"loss": 1.0 / (index + 1), "acc": 0.5}),
                now,
            )
        )
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO session (name, project, number, user, owner, cluster, state, exit_code, "
        "run_dir, spec_json, hyperparameters_json, memo, gpus, created_at, started_at, ended_at, "
        "elapsed_s, last_step, last_metrics_json, updated_at, metric_count, malformed_lines) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
        rows,
    )
    conn.execute(
        "INSERT INTO job (session_id, cluster, job_id, state, submitted_at, started_at, ended_at) "
        "SELECT id, 'local', CAST(1000 + id AS TEXT), state, created_at, started_at, ended_at "
        "FROM session"
    )
    conn.commit()
    conn.close()


def live_copy(source: Path, target: Path) -> None:
    """The same catalog with one session of the caller RUNNING (its sync is not empty)."""
    shutil.copy(source, target)
    conn = sqlite3.connect(target)
    conn.execute("UPDATE session SET state = 'RUNNING', ended_at = NULL WHERE name = 'proj0/1'")
    conn.commit()
    conn.close()


def watched_copy(source: Path, target: Path, runs: Path, live: int) -> None:
    """The same catalog with ``live`` sessions of the caller RUNNING, each with a run
    directory whose wrapper started a moment ago (a heartbeat far longer than the benchmark)
    and one metrics line, and Slurm asked a moment ago (the clock is not due for an hour)."""
    shutil.copy(source, target)
    now = time.time()
    conn = sqlite3.connect(target)
    rows = conn.execute("SELECT id, name FROM session ORDER BY id LIMIT ?", (live,)).fetchall()
    for session_id, name in rows:
        run_dir = runs / name.replace("/", "-")
        run_dir.mkdir(parents=True, exist_ok=True)
        job_id = str(1000 + session_id)
        started = {"event": "started", "time": now - 5, "job_id": job_id, "heartbeat": 1e6}
        (run_dir / "events.jsonl").write_text(json.dumps(started) + "\n")
        (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
        conn.execute(
            "UPDATE session SET state = 'RUNNING', ended_at = NULL, exit_code = NULL, "
            "run_dir = ? WHERE id = ?",
            (str(run_dir), session_id),
        )
        conn.execute(
            "UPDATE job SET state = 'RUNNING', ended_at = NULL WHERE session_id = ?",
            (session_id,),
        )
    conn.execute(
        "INSERT INTO cluster_poll (cluster, user, last_query_at, last_ok, queries) "
        "VALUES ('local', ?, ?, 1, 1)",
        (getpass.getuser(), now),
    )
    conn.commit()
    conn.close()


def wall(command: list[str], env: dict[str, str]) -> float:
    """One run, from the temporary folder (``-m`` puts the working directory first on the
    path: from a checkout it would import that checkout whatever ``--python`` says)."""
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, env=env, check=False, cwd=env["NSML_HPC_RUN_ROOT"]
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()[-2000:]}")
    return seconds


def subcommands(python: str, env: dict[str, str]) -> list[str]:
    probe = "from nsml_hpc.cli import COMMAND_SUMMARIES as C; print(' '.join(C))"
    where = env["NSML_HPC_RUN_ROOT"]
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env, cwd=where)
    if done.returncode == 0:
        return done.stdout.split()
    probe = (  # an older checkout: ask its parser
        "import argparse\nfrom nsml_hpc.cli import build_parser\n"
        "p = build_parser()\n"
        "a = [x for x in p._actions if isinstance(x, argparse._SubParsersAction)][0]\n"
        "print(' '.join(a.choices))"
    )
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env, cwd=where)
    return done.stdout.split()


def verdict(ok: bool) -> str:
    return "MEETS" if ok else "MISSES"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--live", type=int, default=20, help="live sessions, nothing new")
    parser.add_argument("--python", default=sys.executable, help="the nsml-hpc interpreter")
    args = parser.parse_args()
    python = args.python
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}  {os.cpu_count()} cores  "
        f"Python {platform.python_version()}  load {os.getloadavg()[0]:.2f}  ({python})"
    )
    work = Path(tempfile.mkdtemp(prefix="nsml-startup-"))
    try:
        catalog = work / "catalog.db"
        build(catalog, args.sessions, python)
        (work / "config.toml").write_text("")
        (work / "runs").mkdir()
        env = {
            **os.environ,
            "NSML_HPC_CATALOG": f"sqlite:///{catalog}",
            "NSML_HPC_CONFIG": str(work / "config.toml"),
            "NSML_HPC_RUN_ROOT": str(work / "runs"),
        }
        live_env = {**env, "NSML_HPC_CATALOG": f"sqlite:///{work / 'live.db'}"}
        watched_env = {
            **env,
            "NSML_HPC_CATALOG": f"sqlite:///{work / 'watched.db'}",
            "NSML_HPC_SLURM_FLOOR": "3600",
            "XDG_STATE_HOME": str(work / "state"),
        }
        watched_copy(catalog, work / "watched.db", work / "live-runs", args.live)
        watched_label = f"ps ({args.live} live, nothing new)"
        cli = [python, "-m", "nsml_hpc"]
        names = subcommands(python, env)
        measures = {
            "python3 -c pass": ([python, "-c", "pass"], env),
            "nsml-hpc --help": ([*cli, "--help"], env),
            f"ps --no-sync ({args.sessions:,})": ([*cli, "ps", "--no-sync"], env),
            "ps (sync: nothing new)": ([*cli, "ps"], env),
            watched_label: ([*cli, "ps"], watched_env),
            "show proj3/7": ([*cli, "show", "proj3/7"], env),
            "ps (sync: 1 live session)": ([*cli, "ps"], live_env),
        }
        seen: dict[str, list[float]] = {name: [] for name in measures}
        helps: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.rounds):
            for label, (command, use) in measures.items():
                if use is live_env:  # its first sync settles the live session: a fresh one
                    live_copy(catalog, work / "live.db")
                if use is watched_env:  # the ps a moment earlier (its sync may run in full)
                    wall(command, use)
                seen[label].append(wall(command, use))
            for name in names:
                helps[name].append(wall([*cli, name, "--help"], env))
        slowest = max(names, key=lambda name: statistics.median(helps[name]))
        seen[f"slowest SUBCOMMAND --help ({slowest})"] = helps[slowest]
        print(f"\nmedians of {args.rounds} rounds, each command a fresh process")
        for label, values in seen.items():
            shown = ", ".join(f"{value * 1000:.0f}" for value in values)
            print(f"  {label:<38} {statistics.median(values) * 1000:7.1f} ms   ({shown})")
        bare = statistics.median(seen["python3 -c pass"])

        def median(label: str) -> float:
            return statistics.median(seen[label])

        top_help = median("nsml-hpc --help")
        sub_help = statistics.median(helps[slowest])
        ps = median(f"ps --no-sync ({args.sessions:,})")
        ps_sync = median("ps (sync: nothing new)")
        ps_watched = median(watched_label)
        show = median("show proj3/7")
        print(
            f"  --help            = {top_help / bare:4.1f}x bare (target <= 3x: "
            f"{verdict(top_help <= 3 * bare)})"
        )
        print(
            f"  SUBCOMMAND --help = {sub_help / bare:4.1f}x bare at most (target <= 3x: "
            f"{verdict(sub_help <= 3 * bare)})"
        )
        print(
            f"  ps --no-sync      = {ps * 1000:.0f} ms, {ps / bare:.1f}x bare (target <= 300 ms "
            f"and <= 15x: {verdict(ps <= 0.3 and ps <= 15 * bare)})"
        )
        print(
            f"  ps, nothing new   = {ps_sync * 1000:.0f} ms (target <= 400 ms: "
            f"{verdict(ps_sync <= 0.4)})"
        )
        print(
            f"  ps, {args.live} live, nothing new = {ps_watched * 1000:.0f} ms (target <= 400 ms: "
            f"{verdict(ps_watched <= 0.4)})"
        )
        print(
            f"  show              = {show * 1000:.0f} ms (target <= 300 ms: {verdict(show <= 0.3)})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
