"""`nsml-hpc cluster add|ls|rm|trust` and `--cluster` on the command line, without a cluster:
one-line errors, nothing half-written, help for every command, documentation for each."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest

from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.cli import build_parser, main
from nsml_hpc.config.locations import clusters_file
from nsml_hpc.config.settings import load_settings
from nsml_hpc.job.spec import SessionSpec

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


ADD = [
    "cluster", "add", "hpc", "--host", "login.example.org", "--user", "me", "--port", "2222",
    "--run-root", "/scratch/me/runs", "--partition", "gpu", "--setup", "module load cuda",
]  # fmt: skip


def test_add_ls_and_rm_a_profile(nsml_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(ADD, capsys)
    assert code == 0, err
    assert "cluster hpc: ssh, me@login.example.org:2222 (paramiko)" in out
    assert "nsml-hpc cluster trust hpc" in out
    assert clusters_file() == nsml_env / "clusters.toml"

    code, out, _ = _run(["cluster", "ls"], capsys)
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "BACKEND", "TARGET", "RUN", "ROOT", "DEFAULTS"]
    assert rows[0].split()[:3] == ["hpc", "ssh", "me@login.example.org:2222"]
    assert rows[1].startswith("local *")
    code, out, _ = _run(["cluster", "ls", "--json"], capsys)
    listed = {row["name"]: row for row in json.loads(out)}
    assert listed["hpc"]["defaults"] == {"partition": "gpu", "setup": ["module load cuda"]}
    assert listed["local"]["configured"] is False and listed["local"]["default"] is True

    code, out, err = _run(ADD, capsys)
    assert code == 5 and "already exists" in err
    code, out, _ = _run(["cluster", "rm", "hpc"], capsys)
    assert code == 0 and "removed cluster hpc" in out
    assert load_settings().cluster_names() == ["local"]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["cluster", "add", "x y", "--host", "h"], 5, "invalid cluster name"),
        (["cluster", "add", "x", "--host", "h;reboot"], 5, "invalid host"),
        (["cluster", "add", "x", "--host", "h", "--port", "70000"], 5, "port must be 1-65535"),
        (["cluster", "add", "x", "--host", "h", "--port", "two"], 2, "--port"),
        (["cluster", "add", "x", "--backend", "slurmrestd"], 5, "valid backends"),
        (["cluster", "add", "x", "--host", "h", "--transport", "mosh"], 5, "unknown transport"),
        (["cluster", "add", "x", "--host", "h", "--run-root", "/a b"], 5, "run_root"),
        (["cluster", "add", "x", "--host", "h", "--partition", "a\nb"], 5, "defaults.partition"),
        (["cluster", "add", "x", "--user", "me"], 5, "user applies only to the ssh backend"),
        (["cluster", "rm", "nope"], 3, "no cluster profile 'nope'"),
        (["cluster", "test", "nope"], 3, "unknown cluster 'nope'"),
        (["cluster", "trust", "local"], 5, "not reached over SSH"),
        (
            ["submit", "--cluster", "nope", "train.py"],
            3,
            "unknown cluster 'nope'; configured: local",
        ),
        (["ps", "--cluster", "nope"], 3, "unknown cluster 'nope'"),
        (["sync", "--cluster", "nope"], 3, "unknown cluster 'nope'"),
    ],
)
def test_bad_cluster_input_is_one_line_and_writes_nothing(
    argv: list[str],
    code: int,
    message: str,
    nsml_env: Path,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (project_dir / "train.py").write_text("print(1)\n")
    got, out, err = _run(argv, capsys)
    assert got == code, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not clusters_file().exists()


def test_rm_refuses_a_cluster_with_live_sessions_unless_forced(
    nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(ADD, capsys)[0] == 0
    catalog = open_catalog(load_settings().catalog_url)
    try:
        record = reserve_session(
            catalog,
            spec=SessionSpec(project="p", script="t.py", cluster="hpc"),
            user="me",
            run_dir_for=lambda n: f"/scratch/me/runs/me/p/{n}",
            is_free=lambda n: True,
            now=time.time(),
        )
        assert record.id is not None
        mark_submitted(catalog, record.id, job_id="9", cluster="hpc", now=time.time())
    finally:
        catalog.close()
    code, _, err = _run(["cluster", "rm", "hpc"], capsys)
    assert code == 2 and "live sessions (p/1)" in err and "--force" in err
    assert "hpc" in load_settings().clusters
    assert _run(["cluster", "rm", "hpc", "--force"], capsys)[0] == 0


def _commands() -> list[list[str]]:
    found: list[list[str]] = []

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        return {
            name: sub
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for name, sub in action.choices.items()
        }

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for name, sub in subcommands(parser).items():
            if subcommands(sub):
                walk(sub, [*prefix, name])
            else:
                found.append([*prefix, name])

    walk(build_parser(), [])
    return found


def test_every_cluster_command_has_help_and_is_documented() -> None:
    commands = [command for command in _commands() if command[0] == "cluster"]
    assert sorted(command[1] for command in commands) == ["add", "ls", "rm", "test", "trust"]
    readme = (REPO / "README.md").read_text()
    docs = (REPO / "docs" / "remote-clusters.md").read_text()
    for command in commands:
        assert f"nsml-hpc {' '.join(command)}" in readme, command
        assert f"nsml-hpc {' '.join(command)}" in docs, command


def test_help_of_every_command_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    for command in _commands():
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
        assert capsys.readouterr().out.startswith("usage: nsml-hpc " + " ".join(command))


def test_cluster_flag_on_a_session_command_checks_where_the_session_is(
    nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(ADD, capsys)[0] == 0
    catalog = open_catalog(load_settings().catalog_url)
    try:
        record = reserve_session(
            catalog,
            spec=SessionSpec(project="p", script="t.py", cluster="hpc"),
            user="me",
            run_dir_for=lambda n: f"/scratch/me/runs/me/p/{n}",
            is_free=lambda n: True,
            now=time.time(),
        )
        assert record.id is not None
        mark_submitted(catalog, record.id, job_id="9", cluster="hpc", now=time.time())
    finally:
        catalog.close()
    code, out, _ = _run(["show", "p/1", "--no-sync", "--cluster", "hpc"], capsys)
    assert code == 0 and out.startswith("session     p/1  (hpc, user me)")
    code, _, err = _run(["show", "p/1", "--no-sync", "--cluster", "local"], capsys)
    assert code == 3 and "session p/1 is on cluster hpc, not local" in err
    code, _, err = _run(["stop", "p/1", "--cluster", "nope"], capsys)
    assert code == 3 and "unknown cluster 'nope'" in err
