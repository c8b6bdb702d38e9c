"""``nsml-hpc --help``, every ``SUBCOMMAND --help`` and ``ps --no-sync`` stay light: none of
them imports Textual, pandas, paramiko, Jinja2 or matplotlib, and ``--help`` not even
SQLModel/SQLAlchemy (issue 15: completion and help must answer at once)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nsml_hpc.cli import build_parser

NEVER = ("textual", "pandas", "paramiko", "jinja2", "matplotlib", "plotext", "tomlkit")
NOT_FOR_HELP = (*NEVER, "sqlmodel", "sqlalchemy")


def _modules_after(argv: list[str], env: dict[str, str] | None = None) -> set[str]:
    probe = (
        "import json, sys\n"
        "from nsml_hpc.cli import main\n"
        "try:\n"
        f"    code = main({argv!r})\n"
        "    assert code == 0, code\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.flush()\n"
        "print('\\n@@' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env
    )
    assert "@@" in done.stdout, done.stderr
    return set(json.loads(done.stdout.rsplit("@@", 1)[1]))


def _tops(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def _commands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return found


def test_help_imports_no_catalog_and_nothing_heavy() -> None:
    loaded = _tops(_modules_after(["--help"]))
    assert not loaded & set(NOT_FOR_HELP), loaded & set(NOT_FOR_HELP)


def test_every_subcommand_help_imports_nothing_heavy() -> None:
    commands = _commands()
    assert len(commands) > 25
    # one process for all of them (each --help raises SystemExit inside main's parse)
    probe = (
        "import json, sys, io, contextlib\n"
        "from nsml_hpc.cli import main\n"
        f"for argv in {commands!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main([*argv, '--help'])\n"
        "        except SystemExit:\n"
        "            pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    loaded = _tops(set(json.loads(done.stdout.strip().splitlines()[-1])))
    assert not loaded & set(NOT_FOR_HELP), loaded & set(NOT_FOR_HELP)


def test_ps_without_sync_imports_nothing_heavy(tmp_path: Path) -> None:
    import os

    env = {
        **os.environ,
        "NSML_HPC_CATALOG": f"sqlite:///{tmp_path / 'catalog.db'}",
        "NSML_HPC_RUN_ROOT": str(tmp_path / "runs"),
        "NSML_HPC_CONFIG": str(tmp_path / "config.toml"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    (tmp_path / "config.toml").write_text("")
    loaded = _tops(_modules_after(["ps", "--no-sync"], env))
    assert "sqlmodel" in loaded  # no catalog yet: the full path made it
    assert not loaded & set(NEVER), loaded & set(NEVER)
    # now that it exists (SQLite, the known schema): the fast path, no SQLAlchemy at all
    for argv in (["ps", "--no-sync"], ["ps"], ["ps", "--json", "--all-users"]):
        loaded = _tops(_modules_after(argv, env))
        assert not loaded & set(NOT_FOR_HELP), (argv, loaded & set(NOT_FOR_HELP))


def test_show_of_a_finished_session_imports_no_catalog_library(tmp_path: Path) -> None:
    """``show`` (its sync has nothing to do: no live session) and ``show --no-sync`` read the
    catalog with sqlite3 alone; the same text as the full path prints."""
    import os

    from nsml_hpc.catalog import open_catalog
    from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
    from nsml_hpc.job.spec import SessionSpec

    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = open_catalog(url)
    record = reserve_session(
        catalog,
        spec=SessionSpec(project="light", script="t.py", cluster="local"),
        user="me",
        run_dir_for=lambda n: str(tmp_path / "runs" / str(n)),
        is_free=lambda _n: True,
        now=1.7e9,
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id="12", cluster="local", now=1.7e9)
    catalog.close()
    (tmp_path / "config.toml").write_text("")
    conn = sqlite3.connect(tmp_path / "catalog.db")  # it ended long ago
    conn.execute("UPDATE session SET state = 'COMPLETED', ended_at = 1.7e9 + 5")
    conn.commit()
    conn.close()
    env = {
        **os.environ,
        "NSML_HPC_CATALOG": url,
        "NSML_HPC_RUN_ROOT": str(tmp_path / "runs"),
        "NSML_HPC_CONFIG": str(tmp_path / "config.toml"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    for argv in (["show", "light/1"], ["show", "light/1", "--no-sync", "--json"]):
        loaded = _tops(_modules_after(argv, env))
        assert not loaded & set(NOT_FOR_HELP), (argv, loaded & set(NOT_FOR_HELP))


def test_the_command_index_is_what_the_modules_register() -> None:
    """``--help`` lists commands from COMMAND_INDEX/COMMAND_SUMMARIES without importing the
    modules: the table must say what the modules themselves register."""
    from nsml_hpc.cli import COMMAND_INDEX, COMMAND_SUMMARIES, command_module
    from nsml_hpc.cli.common import Commands, Parser

    for module, names in COMMAND_INDEX.items():
        parser = Parser(prog="probe")
        subparsers = parser.add_subparsers(dest="command", parser_class=Parser)
        command_module(module).register(Commands(subparsers))
        registered = {action.dest: action.help for action in subparsers._choices_actions}
        assert tuple(registered) == names, module
        for name in names:
            assert COMMAND_SUMMARIES[name] == registered[name], name
    assert set(COMMAND_SUMMARIES) == {name for names in COMMAND_INDEX.values() for name in names}


@pytest.mark.parametrize("word", ["--help"])
def test_help_lists_every_command(word: str, capsys: pytest.CaptureFixture[str]) -> None:
    from nsml_hpc.cli import main

    with pytest.raises(SystemExit):
        main([word])
    out = capsys.readouterr().out
    for command in ("submit", "export", "completion", "config", "serve"):
        assert command in out


def test_ps_with_live_sessions_and_nothing_new_imports_no_catalog_library(
    tmp_path: Path,
) -> None:
    """A running session whose run directory did not change, the Slurm clock not due: the
    first ``ps`` syncs in full (and writes the watch list), the next skips the sync with
    sqlite3 alone and prints the same."""
    import getpass
    import os
    import time

    from nsml_hpc.catalog import open_catalog
    from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
    from nsml_hpc.job.spec import SessionSpec

    now = time.time()
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = open_catalog(url)
    run_dir = tmp_path / "runs" / "1"
    record = reserve_session(
        catalog,
        spec=SessionSpec(project="light", script="t.py", cluster="local"),
        user="me",
        run_dir_for=lambda n: str(run_dir),
        is_free=lambda _n: True,
        now=now - 10,
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id="12", cluster="local", now=now - 10)
    catalog.close()
    run_dir.mkdir(parents=True)
    (run_dir / "events.jsonl").write_text(
        json.dumps({"event": "started", "time": now - 5, "job_id": "12", "heartbeat": 1e5}) + "\n"
    )
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    conn = sqlite3.connect(tmp_path / "catalog.db")  # Slurm was asked a moment ago
    conn.execute(
        "INSERT INTO cluster_poll (cluster, user, last_query_at, last_ok, queries) "
        "VALUES ('local', ?, ?, 1, 1)",
        (getpass.getuser(), now - 1),
    )
    conn.commit()
    conn.close()
    (tmp_path / "config.toml").write_text("")
    env = {
        **os.environ,
        "NSML_HPC_CATALOG": url,
        "NSML_HPC_RUN_ROOT": str(tmp_path / "runs"),
        "NSML_HPC_CONFIG": str(tmp_path / "config.toml"),
        "NSML_HPC_SLURM_FLOOR": "3600",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    outputs = []
    for expect_full in (True, False, False):
        probe = (
            "import json, sys\n"
            "from nsml_hpc.cli import main\n"
            "code = main(['ps', '--json'])\n"
            "assert code == 0, code\n"
            "sys.stdout.flush()\n"
            "print('\\n@@' + json.dumps(sorted(sys.modules)))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env
        )
        assert "@@" in done.stdout, done.stderr
        out, _, modules = done.stdout.rpartition("\n@@")
        loaded = _tops(set(json.loads(modules)))
        assert ("sqlalchemy" in loaded) == expect_full, (expect_full, done.stderr)
        if not expect_full:
            assert not loaded & set(NOT_FOR_HELP), loaded & set(NOT_FOR_HELP)
        # the same rows (a running session's elapsed time moves with the clock)
        outputs.append(
            [{k: v for k, v in row.items() if k != "elapsed_s"} for row in json.loads(out)]
        )
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0][0]["state"] == "RUNNING"
