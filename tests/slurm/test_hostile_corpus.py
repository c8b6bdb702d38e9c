"""A job on the sandbox writes a corpus of hostile names and values (OSC and CSI sequences,
newlines, carriage returns, NUL, bidi overrides, very long names) into its metrics, events,
captured CSV logs (a hostile column and a hostile file name) and output. Each shows up escaped,
or is refused at ingest and counted with its line number, and no command's stdout (ps, show,
compare, leaderboard, diff, plot, model ls, sync, the TUI's table) carries a raw control
byte. CSV and JSON stay exact; ``logs`` prints the job's own output as ``cat`` would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# What a terminal may act on (newline and tab are the tables' own; checked separately).
RAW = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
HOSTILE_JOB = r"""
import json, os, pathlib, time
import nsml_hpc

run = pathlib.Path(os.environ["NSML_HPC_RUN_DIR"])
hostile = [
    "\x1b]0;PWNED-TITLE\x07loss",
    "\x1b]52;c;cGF3bmVk\x07clip",
    "acc\x1b[31mRED",
    "\x9b2J",
    "x\ny",
    "carriage\rreturn",
    "nul\x00byte",
    "bidi\u202eevil",
    "n" * 5000,
]
for step in range(3):
    nsml_hpc.report(step=step, loss=1.0 / (step + 1))
with open(run / "metrics.jsonl", "a") as out:  # straight past report()'s own check
    for index, name in enumerate(hostile):
        out.write(json.dumps({"step": 10 + index, name: 1.0, "loss": 0.5}) + "\n")
with open(run / "events.jsonl", "a") as out:
    out.write(json.dumps({"event": "\x1b]0;EVENT\x07", "time": time.time()}) + "\n")
    note = {"event": "note", "time": time.time(), "text": "\x1b[2J\u202eev\nil"}
    out.write(json.dumps(note) + "\n")
logs = run / "code" / "logs"
logs.mkdir(parents=True, exist_ok=True)
(logs / "metrics.csv").write_text("step,acc\x1b[31mX,ok\n0,1.0,2.0\n1,1.5,2.5\n")
sneaky = run / "code" / "dir\x1b]0;T\x07"
sneaky.mkdir(parents=True, exist_ok=True)
(sneaky / "metrics.csv").write_text("step,v\n0,1\n")
try:
    nsml_hpc.report(step=50, **{"\x1b[31m": 1.0})
except ValueError as exc:
    print("report refused:", exc)
with nsml_hpc.save(step=50) as folder:
    (folder / "w.bin").write_bytes(b"w" * 64)
print("\x1b]0;JOB-OUTPUT\x07raw job output")
time.sleep(2)
"""


def _cli(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "nsml-hpc"), *argv],
        capture_output=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def _clean(label: str, data: bytes) -> str:
    text = data.decode("utf-8")
    bad = RAW.search(text)
    assert bad is None, f"{label}: raw {bad.group(0)!r} at {bad.start()}: {text[:400]!r}"
    return text


def test_hostile_names_are_refused_or_escaped_and_never_reach_stdout_raw(
    slurm_sandbox: str, workspace: Workspace, project_dir: Path
) -> None:
    write_script(project_dir, "hostile.py", HOSTILE_JOB)
    first = submit_script(workspace, project_dir, "hostile.py", project="hostile")
    second = submit_script(workspace, project_dir, "hostile.py", ["--lr", "0.5"], project="hostile")
    for name in (first.name, second.name):
        wait_for_state(workspace, name, {"COMPLETED"}, timeout=240)
    sync = _cli("sync")
    _clean("sync stdout", sync.stdout)
    _clean("sync stderr", sync.stderr)

    # refused at ingest, counted as malformed with their line numbers
    record = get_session(workspace.catalog, first.name)
    shown_json = _cli("show", first.name, "--json", "--no-sync")
    assert shown_json.returncode == 0, shown_json.stderr
    detail = json.loads(shown_json.stdout)
    refused = {(p["file"], p["line"]) for p in detail["ingest_problems"]}
    assert {("metrics.jsonl", line) for line in range(4, 13)} <= refused
    assert any(f == "events.jsonl" for f, _ in refused)  # the hostile event name
    assert any("code/dir" in f for f, _ in refused)  # the hostile captured file name
    assert any(f == "code/logs/metrics.csv" for f, _ in refused)  # its hostile column
    assert record.malformed_lines >= 9
    assert set(json.loads(record.last_metrics_json)) <= {"loss", "ok", "v"}

    # session fields an older catalog may hold raw: a memo and a pending reason
    with workspace.catalog.session() as db:
        db.execute(
            update(SessionRecord)
            .where(SessionRecord.id == get_session(workspace.catalog, second.name).id)  # type: ignore[arg-type]
            .values(memo="memo\x1b]0;MEMO\x07\u202eevil", reason="re\x1b[5mason")
        )

    outputs = {
        "ps": _cli("ps", "--no-sync"),
        "ps --all-users": _cli("ps", "--all-users", "--no-sync"),
        "show": _cli("show", first.name, "--no-sync"),
        "show 2": _cli("show", second.name, "--no-sync"),
        "compare": _cli("compare", first.name, second.name, "--no-sync"),
        "compare markdown": _cli(
            "compare", first.name, second.name, "--format", "markdown", "--no-sync"
        ),
        "compare --project": _cli("compare", "--project", "hostile", "--no-sync"),
        "leaderboard": _cli("leaderboard", "--project", "hostile", "--metric", "loss", "--no-sync"),
        "diff": _cli("diff", first.name, second.name),
        "model ls": _cli("model", "ls", first.name),
        "ps --json": _cli("ps", "--json", "--no-sync"),
        "show --json": _cli("show", second.name, "--json", "--no-sync"),
        "compare json": _cli("compare", first.name, second.name, "--format", "json", "--no-sync"),
    }
    for label, done in outputs.items():
        assert done.returncode == 0, (label, done.stderr)
        _clean(f"{label} stdout", done.stdout)
        _clean(f"{label} stderr", done.stderr)
    shown = outputs["show 2"].stdout.decode()
    assert "memo\\x1b]0;MEMO\\x07\\u202eevil" in shown
    assert "\\x1b[2J\\u202eev\\nil" in outputs["show"].stdout.decode()  # the event's text
    # JSON stays exact: the same characters, JSON-escaped
    assert json.loads(outputs["show --json"].stdout)["memo"] == "memo\x1b]0;MEMO\x07\u202eevil"

    # plot: the labels and title are made printable (plotext's own colours aside)
    plot = _cli("plot", first.name, second.name, "--metric", "loss", "--no-sync")
    assert plot.returncode == 0, plot.stderr
    assert not re.search("[\x00\x07\x9b\u202e]|\x1b\\]", plot.stdout.decode())

    # logs: the job's own output, as cat would (documented); nothing else
    logs = _cli("logs", first.name)
    assert b"\x1b]0;JOB-OUTPUT\x07raw job output" in logs.stdout

    # hostile input at the command line is refused, one line, nothing created
    before = _cli("ps", "--json", "--no-sync").stdout
    for argv, why in (
        (("memo", first.name, "a\x1b]0;T\x07b"), "control characters"),
        (("submit", "--project", "hostile", "hostile.py", "--tag", "\x1b]0;T\x07"), "--tag"),
    ):
        done = subprocess.run(
            [str(Path(sys.executable).parent / "nsml-hpc"), *argv],
            capture_output=True,
            timeout=120,
            check=False,
            cwd=project_dir,
        )
        assert done.returncode == 2 and why in done.stderr.decode(), done.stderr
        _clean("refusal", done.stderr)
    assert _cli("ps", "--json", "--no-sync").stdout == before
