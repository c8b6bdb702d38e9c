"""Everyday CLI conventions (issue 15): "did you mean" for every name a user types (and a
non-zero exit each time), ``--json`` spelled the same on every command that prints data,
full-sentence ``--help`` summaries, plots without colour when piped or with ``NO_COLOR``,
``plot`` without ``--metric`` (every metric), ``ps --sweep`` and ``--column``, ``-v`` and
``NSML_HPC_LOG``, ``nsml-hpc config`` and ``clusters.toml`` edits that keep comments.

Over a real catalog with the TUI tests' fixed sessions (mnist/1..4, cifar/1..2, with metrics)
and ``--no-sync``: nothing here needs Slurm.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest

from nsml_hpc.catalog.sessions import mark_all_submitted, reserve_sessions
from nsml_hpc.cli import build_parser, main
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.workspace import Workspace
from tests.tui.conftest import build_catalog


@pytest.fixture
def sessions(workspace: Workspace) -> Workspace:
    build_catalog(workspace.catalog, workspace.settings.run_root)
    return workspace


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- did you mean ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "hint", "code"),
    [
        (["sumbit", "train.py"], "unknown command 'sumbit' (did you mean 'submit'?)", 2),
        (["model", "lss", "mnist/1"], "unknown command 'lss' (did you mean 'ls'?)", 2),
        (["ps", "--jsn"], "unknown option '--jsn' (did you mean '--json'?)", 2),
        (["compare", "--format", "tabel"], "invalid choice 'tabel' (did you mean 'table'?)", 2),
        (["show", "mnsit/1", "--no-sync"], "(did you mean 'mnist/1'", 3),
        (["logs", "mnist/11"], "(did you mean 'mnist/1'", 3),
        (["plot", "mnist/1", "--metric", "val_los", "--no-sync"], "did you mean 'val_loss'", 3),
        (
            ["leaderboard", "--project", "mnist", "--metric", "val_acc_", "--no-sync"],
            "did you mean 'val_acc'",
            3,
        ),
        (
            ["compare", "mnist/1", "mnist/2", "--metric", "trian_loss", "--no-sync"],
            "did you mean 'train_loss'",
            3,
        ),
        (["ps", "--no-sync", "--cluster", "locl"], "did you mean 'local'", 3),
        (["ps", "--no-sync", "-c", "lrr"], "did you mean 'lr'", 2),
        (["config", "run_rot"], "did you mean 'run_root'", 2),
        (["ps", "--no-sync", "--sweep", "mnist/sweep-9"], "no sweep 'mnist/sweep-9'", 3),
    ],
)
def test_every_did_you_mean_names_the_closest_and_exits_non_zero(
    sessions: Workspace,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    hint: str,
    code: int,
) -> None:
    status, out, err = _run(argv, capsys)
    assert status == code, err
    assert hint in err
    assert len(err.strip().splitlines()) == 1  # one line
    assert out == ""


def test_a_sweep_name_is_suggested_from_the_catalogs_sweeps(
    sessions: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    _sweep(sessions)
    status, _, err = _run(["ps", "--no-sync", "--sweep", "grid/sweep-2"], capsys)
    assert status == 3 and "did you mean 'grid/sweep-1'?" in err


# --- --help ---------------------------------------------------------------------------------


def _leaf_parsers() -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix} {name}".strip())
                return
        found[prefix] = parser

    walk(build_parser(), "")
    return found


def _summaries() -> list[tuple[str, str | None]]:
    """Every command's and sub-command's one-line summary, as its parent's --help lists it."""
    found: list[tuple[str, str | None]] = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    found.append((f"{prefix} {choice.dest}".strip(), choice.help))
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix} {name}".strip())

    walk(build_parser(), "")
    return found


def test_every_command_summary_is_a_whole_sentence_in_plain_text() -> None:
    helps = _summaries()
    assert len([name for name, _ in helps if " " not in name]) > 15
    assert {"cluster ls", "model pin", "catalog upgrade", "dataset rm"} <= {n for n, _ in helps}
    for name, text in helps:
        assert text and text.endswith("."), (name, text)
        assert text[0].isupper(), (name, text)
        assert text.count("(") == text.count(")"), (name, text)
        assert "`" not in text and ":func:" not in text, (name, text)  # no RST markup
    assert dict(helps)["cluster ls"] == (
        "List the configured clusters (local is always there); * marks the default."
    )


def test_summaries_drop_rst_markup() -> None:
    from nsml_hpc.cli.common import plain, summary

    assert plain("the ``local`` cluster") == "the local cluster"
    assert plain("see :func:`nsml_hpc.save` and :class:`~nsml_hpc.client.Client`") == (
        "see nsml_hpc.save and Client"
    )
    assert plain("read `the guide <https://example.org>`_ or `this`") == ("read the guide or this")
    assert plain("* marks the default; 2 * 3") == "* marks the default; 2 * 3"
    assert summary("Pin ``best``: gc keeps it.\n\nMore.") == "Pin best: gc keeps it."


# Commands that print data take --json; these print something else (a log, a plot, a UI,
# a script for the shell, a file in the format asked for).
NOT_DATA = {"logs", "plot", "tui", "memo", "completion", "export", "serve"}


def test_every_command_that_prints_data_takes_json() -> None:
    missing = [
        name
        for name, parser in _leaf_parsers().items()
        if name.split()[0] not in NOT_DATA and "--json" not in parser._option_string_actions
    ]
    assert missing == []


def test_compare_and_leaderboard_json_has_no_escaped_slashes(
    sessions: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(["compare", "mnist/1", "mnist/2", "--json", "--no-sync"], capsys)
    assert status == 0 and "\\/" not in out
    rows = json.loads(out)
    assert [row["session"] for row in rows] == ["mnist/1", "mnist/2"]
    status, out, _ = _run(
        ["leaderboard", "--project", "mnist", "--metric", "val_loss", "--json", "--no-sync"],
        capsys,
    )
    assert status == 0 and "\\/" not in out
    assert json.loads(out)[0]["session"].startswith("mnist/")


# --- colour and plots -----------------------------------------------------------------------


class _Tty:
    """Stands for a terminal on stdout (pytest's capture is never one)."""

    def isatty(self) -> bool:
        return True


def test_plot_draws_colour_only_on_a_terminal_without_no_color(
    sessions: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nsml_hpc.cli.experiment_commands as commands

    argv = ["plot", "mnist/1", "--metric", "val_loss", "--no-sync", "--width", "80"]
    status, piped, _ = _run(argv, capsys)
    assert status == 0 and "\x1b" not in piped  # piped: plain text (was ANSI)
    assert "val_loss" in piped
    monkeypatch.setattr(commands, "color_allowed", lambda stream: True)
    _, coloured, _ = _run(argv, capsys)
    assert "\x1b[" in coloured
    monkeypatch.undo()
    from nsml_hpc.cli.common import color_allowed

    monkeypatch.setenv("NO_COLOR", "1")
    assert not color_allowed(_Tty())  # type: ignore[arg-type]
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "xterm")
    assert color_allowed(_Tty())  # type: ignore[arg-type]


def test_plot_without_a_metric_draws_every_metric(
    sessions: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = _run(["plot", "mnist/1", "mnist/2", "--no-sync", "--width", "120"], capsys)
    assert status == 0
    for metric in ("train_loss", "val_acc", "val_loss"):
        assert metric in out
    png = tmp_path / "all.png"
    assert main(["plot", "mnist/1", "--no-sync", "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- ps -------------------------------------------------------------------------------------


def _sweep(workspace: Workspace) -> list[str]:
    runs = workspace.settings.run_root
    now = time.time()
    specs = [
        SessionSpec(project="grid", script="train.py", args=["--lr", lr, "--bs", "32"])
        for lr in ("0.1", "0.01", "0.001")
    ]
    records = reserve_sessions(
        workspace.catalog,
        specs=specs,
        user="alice",
        run_dir_for=lambda n: str(runs / "alice" / "grid" / str(n)),
        is_free=lambda n: True,
        now=now,
    )
    mark_all_submitted(
        workspace.catalog,
        {record.id or 0: f"555_{task}" for task, record in enumerate(records)},
        cluster="local",
        now=now,
    )
    return [record.name for record in records]


def test_ps_lists_one_sweep_with_a_hyperparameter_and_the_memo(
    sessions: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    names = _sweep(sessions)
    status, out, err = _run(
        ["ps", "--no-sync", "--sweep", "grid/sweep-1", "-c", "lr", "--column", "memo"], capsys
    )
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:8] == [
        "NAME",
        "STATE",
        "GPUS",
        "ELAPSED",
        "GPU%",
        "STEP",
        "LR",
        "MEMO",
    ]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(names)
    assert {line.split()[6] for line in lines[1:]} == {"0.1", "0.01", "0.001"}
    status, out, _ = _run(["ps", "--no-sync", "-c", "memo", "--project", "mnist"], capsys)
    assert "baseline" in out and "diverged?" in out
    status, out, _ = _run(["ps", "--no-sync", "--sweep", "grid/sweep-1", "--json"], capsys)
    assert {row["hyperparameters"]["lr"] for row in json.loads(out)} == {0.1, 0.01, 0.001}


# --- logging --------------------------------------------------------------------------------


def test_verbose_and_nsml_hpc_log_turn_on_logging(
    sessions: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    logger = logging.getLogger("nsml_hpc")
    try:
        _, _, quiet = _run(["ps", "--no-sync"], capsys)
        assert "INFO" not in quiet
        _, _, err = _run(["-v", "ps", "--no-sync"], capsys)
        # the read-only fast path (nsml_hpc.catalog.quickread) or the engine says which catalog
        assert "nsml-hpc: INFO nsml_hpc.catalog." in err and ": catalog sqlite:" in err
        _, _, err = _run(["ps", "--no-sync", "-vv"], capsys)
        assert "INFO nsml_hpc.catalog." in err
        logger.setLevel(logging.NOTSET)
        monkeypatch.setenv("NSML_HPC_LOG", "info")
        _, _, err = _run(["ps", "--no-sync"], capsys)
        assert "INFO nsml_hpc.catalog." in err
        monkeypatch.setenv("NSML_HPC_LOG", "verbos")
        status, _, err = _run(["ps", "--no-sync"], capsys)
        assert status == 0 and "NSML_HPC_LOG='verbos' is not a level" in err
    finally:
        logger.setLevel(logging.NOTSET)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


# --- config ---------------------------------------------------------------------------------


def test_config_shows_each_setting_and_where_it_comes_from(
    sessions: Workspace,
    nsml_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (nsml_env / "config.toml").write_text('key_metric = "val_acc"\n[gc]\nkeep_last = 2\n')
    status, out, _ = _run(["config", "--json"], capsys)
    assert status == 0
    entries = {entry["key"]: entry for entry in json.loads(out)}
    assert entries["run_root"]["source"] == "env NSML_HPC_RUN_ROOT"
    assert entries["run_root"]["value"] == str(nsml_env / "runs")
    assert entries["key_metric"] == {
        "key": "key_metric",
        "value": "val_acc",
        "source": f"config file {nsml_env / 'config.toml'}",
    }
    assert entries["poll_floor_seconds"]["source"] == "env NSML_HPC_POLL_FLOOR"
    assert entries["max_code_mb"]["source"] == "default"
    assert entries["gc_lock"]["value"] == str(nsml_env / "gc.lock")
    assert entries["gc_log"]["value"] == str(nsml_env / "xdg-data" / "nsml-hpc" / "gc.log")
    status, out, _ = _run(["config", "catalog"], capsys)
    assert out.strip() == f"sqlite:///{nsml_env / 'catalog.db'}"
    status, out, _ = _run(["config"], capsys)
    assert "key_metric" in out and "config file" in out


# --- clusters.toml --------------------------------------------------------------------------


def test_cluster_add_and_rm_keep_the_users_comments(
    nsml_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = nsml_env / "clusters.toml"
    monkeypatch.setenv("NSML_HPC_CLUSTERS", str(path))
    path.write_text(
        "# my clusters, by hand\n"
        "\n"
        '[clusters."hpc"]\n'
        'backend = "ssh"\n'
        'host = "login.example.org"  # the login node\n'
        'user = "me"\n'
        "\n"
        "# the old one, going away\n"
        '[clusters."old"]\n'
        'backend = "ssh"\n'
        'host = "old.example.org"\n'
    )
    assert main(["cluster", "add", "new", "--host", "new.example.org", "--user", "me"]) == 0
    text = path.read_text()
    assert "# my clusters, by hand" in text
    assert 'host = "login.example.org"  # the login node' in text
    assert "# the old one, going away" in text
    assert "new.example.org" in text
    assert main(["cluster", "add", "hpc", "--host", "login2.example.org", "--replace"]) == 0
    text = path.read_text()
    assert 'host = "login2.example.org"  # the login node' in text  # the key's comment stays
    assert 'user = "me"' not in text.split('[clusters."old"]')[0]  # --replace: given keys only
    assert main(["cluster", "rm", "old"]) == 0
    text = path.read_text()
    assert "old.example.org" not in text and "# my clusters, by hand" in text
    status, _, err = _run(["cluster", "rm", "nwe"], capsys)
    assert status == 3 and "did you mean 'new'?" in err
    assert main(["cluster", "ls", "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)]
    assert names == ["hpc", "local", "new"]
