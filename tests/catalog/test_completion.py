"""Shell completion: what ``nsml-hpc __complete`` offers (commands, options, choices, session,
cluster, metric, sweep and setting names) over a real catalog, in the real shells (bash,
zsh, fish: each shell runs its script and asks), installed with one command; and silence
(no output, no traceback, exit 0) when the catalog or the config cannot be read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nsml_hpc.cli import build_parser, main
from nsml_hpc.cli.completion import (
    FILES,
    SCRIPTS,
    ZSHRC_MARK,
    complete,
    install_path,
    zshrc_line,
)
from nsml_hpc.workspace import Workspace
from tests.catalog.test_everyday_cli import _sweep
from tests.tui.conftest import build_catalog

PARSER = build_parser()
BIN = str(Path(sys.executable).parent)  # where the nsml-hpc entry point is installed


@pytest.fixture
def catalog(workspace: Workspace) -> Workspace:
    build_catalog(workspace.catalog, workspace.settings.run_root)
    _sweep(workspace)
    return workspace


def _ask(words: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert main(["__complete", str(len(words) - 1), *words]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


def test_commands_options_and_choices_come_from_the_parser() -> None:
    def no_names(kind: str, words: list[str], prefix: str) -> list[str]:
        raise AssertionError(f"{kind} needs no catalog")

    assert complete(PARSER, ["s"], 0, no_names) == [
        "serve",
        "set",
        "show",
        "stop",
        "submit",
        "sweep",
        "sync",
    ]
    assert complete(PARSER, ["model", "p"], 1, no_names) == ["pin", "pull"]
    assert complete(PARSER, ["ps", "--js"], 1, no_names) == ["--json"]
    assert complete(PARSER, ["compare", "--format", "c"], 2, no_names) == ["csv"]
    assert complete(PARSER, ["compare", "--format=m"], 1, no_names) == ["--format=markdown"]
    assert complete(PARSER, ["export", "x/1", "--format", ""], 3, no_names) == [
        "csv",
        "jsonl",
        "parquet",
    ]
    assert complete(PARSER, ["submit", "--gpus", "2", ""], 3, no_names) == [FILES]  # the script
    assert complete(PARSER, ["completion", ""], 1, no_names) == ["bash", "fish", "zsh"]
    assert complete(PARSER, ["submit", "train.py", "--", "--l"], 3, no_names) == []  # the script's


def test_names_from_the_catalog_and_the_settings(
    catalog: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _ask(["show", "mnist/"], capsys) == ["mnist/4", "mnist/3", "mnist/2", "mnist/1"]
    assert _ask(["compare", "mnist/1", "c"], capsys) == ["cifar/2", "cifar/1"]
    assert _ask(["plot", "mnist/1", "--metric", "val"], capsys) == ["val_acc", "val_loss"]
    assert _ask(["leaderboard", "--metric", "tr"], capsys) == ["train_loss"]
    assert _ask(["ps", "--cluster", ""], capsys) == ["local"]
    assert _ask(["ps", "--sweep", "g"], capsys) == ["grid/sweep-1"]
    assert _ask(["ps", "--project", "m"], capsys) == ["mnist"]
    assert "lr" in _ask(["ps", "-c", "l"], capsys)
    assert _ask(["config", "run_r"], capsys) == ["run_root"]
    assert _ask(["model", "pin", "mnist/1", "ep"], capsys) == ["ep10", "ep20", "ep30"]
    assert _ask(["model", "rm", "mnist/1", "l"], capsys) == ["latest"]
    assert _ask(["cluster", "test", ""], capsys) == ["local"]


@pytest.mark.parametrize(
    "breakage",
    ["catalog is a folder", "catalog is garbage", "config is not toml", "catalog unreachable"],
)
def test_completion_is_silent_when_the_catalog_or_config_cannot_be_read(
    nsml_env: Path, breakage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if breakage == "catalog is a folder":
        (nsml_env / "folder.db").mkdir()
        monkeypatch.setenv("NSML_HPC_CATALOG", f"sqlite:///{nsml_env / 'folder.db'}")
    elif breakage == "catalog is garbage":
        (nsml_env / "garbage.db").write_bytes(b"this is not a database" * 100)
        monkeypatch.setenv("NSML_HPC_CATALOG", f"sqlite:///{nsml_env / 'garbage.db'}")
    elif breakage == "config is not toml":
        (nsml_env / "config.toml").write_text("run_root = [unclosed\n")
    else:
        monkeypatch.setenv(
            "NSML_HPC_CATALOG", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
        )
    needs_catalog = [["show", ""], ["plot", "x/1", "--metric", ""], ["ps", "--sweep", ""]]
    needs_config = [["ps", "--cluster", ""], ["config", ""]]
    broken = needs_catalog + (needs_config if breakage == "config is not toml" else [])
    for words in broken:
        done = subprocess.run(
            [f"{BIN}/nsml-hpc", "__complete", str(len(words) - 1), *words],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), words
    if breakage != "config is not toml":  # cluster names need no catalog
        done = subprocess.run(
            [f"{BIN}/nsml-hpc", "__complete", "2", "ps", "--cluster", ""],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.stdout == "local\n"
    # and the commands themselves still complete
    done = subprocess.run(
        [f"{BIN}/nsml-hpc", "__complete", "0", "sub"], capture_output=True, text=True, timeout=60
    )
    assert done.stdout == "submit\n"


# --- the real shells ------------------------------------------------------------------------


def _env(nsml_env: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(nsml_env)}


def _bash(script: Path, line: list[str], env: dict[str, str]) -> list[str]:
    words = " ".join(f"'{word}'" for word in line)
    program = (
        f"source {script}; COMP_WORDS=({words}); COMP_CWORD={len(line) - 1}; "
        "_nsml_hpc; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", program], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def _zsh(script: Path, line: list[str], env: dict[str, str]) -> list[str]:
    words = " ".join(f"'{word}'" for word in line)
    # compadd and _files exist only inside a completion widget: stand-ins print what the
    # script hands them; everything else is zsh running the installed script.
    program = (
        "compdef() { :; }; compadd() { while [[ $# -gt 0 && $1 != -- ]]; do shift; done; "
        'shift; printf "%s\\n" "$@"; }; _files() { echo @files; }; '
        f"source {script}; words=({words}); CURRENT={len(line)}; _nsml_hpc"
    )
    done = subprocess.run(
        ["zsh", "-f", "-c", program], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def _fish(script: Path, line: list[str], env: dict[str, str]) -> list[str]:
    text = " ".join(line)
    done = subprocess.run(
        ["fish", "--no-config", "-c", f"source {script}; complete -C '{text}'"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line.split("\t")[0] for line in done.stdout.splitlines() if line]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_completes_through_its_installed_script(
    catalog: Workspace, nsml_env: Path, shell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shutil.which(shell), f"{shell} is installed by scripts/setup.sh"
    monkeypatch.setenv("HOME", str(nsml_env))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert main(["completion", shell, "--install"]) == 0
    script = install_path(shell, nsml_env)
    assert script.read_text() == SCRIPTS[shell]
    assert main(["completion", shell, "--install"]) == 0  # again: the same file, once
    env = _env(nsml_env)
    env.pop("XDG_DATA_HOME", None)
    ask = {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell]
    assert ask(script, ["nsml-hpc", "subm"], env) == ["submit"]
    assert sorted(ask(script, ["nsml-hpc", "show", "cifar/"], env)) == ["cifar/1", "cifar/2"]
    assert ask(script, ["nsml-hpc", "plot", "mnist/1", "--metric", "val_l"], env) == ["val_loss"]
    assert ask(script, ["nsml-hpc", "ps", "--clu"], env) == ["--cluster"]


def test_completion_prints_the_script_for_the_users_shell(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    assert main(["completion"]) == 0
    assert capsys.readouterr().out == SCRIPTS["zsh"]
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    assert main(["completion"]) == 2
    assert "no completion for shell 'tcsh'" in capsys.readouterr().err


# --- zsh, installed with one command, in a real interactive zsh ------------------------------


def _interactive_zsh(home: Path, line: str, env: dict[str, str]) -> str:
    """Start a real ``zsh -i`` on a terminal (HOME=home, so it reads the .zshrc the install
    wrote), type ``line`` and Tab, then turn what the line became into a file and return it."""
    import pty
    import select
    import time

    result = home / "completed-line"
    result.unlink(missing_ok=True)
    leader, follower = pty.openpty()
    shell = subprocess.Popen(
        ["zsh", "-i"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=home,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""

    def drain(until: bytes | None, seconds: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until is not None and until in seen:
                return
            if until is None and result.exists():
                return
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    return
        raise AssertionError(f"zsh -i never showed {until!r}; its terminal: {seen[-2000:]!r}")

    try:
        drain(b"READY> ", 60)  # the prompt the user's own .zshrc line set
        os.write(leader, line.encode() + b"\t")
        drain(b"submit", 60)
        # Ctrl-A, prefix the completed line with a print to a file, Ctrl-E, Enter.
        os.write(leader, b"\x01print -r -- \x05 > " + str(result).encode() + b"\r")
        drain(None, 60)
        os.write(leader, b"exit\r")
        shell.wait(timeout=30)
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        os.close(leader)
    return result.read_text()


@pytest.mark.parametrize("runs_compinit", ["none", "before", "zdotdir"])
def test_zsh_install_is_one_command_in_a_real_interactive_zsh(
    nsml_env: Path, runs_compinit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shutil.which("zsh"), "zsh is installed by scripts/setup.sh"
    home = nsml_env / "home"
    home.mkdir(mode=0o700)
    rc_dir = home / "zdot" if runs_compinit == "zdotdir" else home
    rc_dir.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    if runs_compinit == "zdotdir":
        monkeypatch.setenv("ZDOTDIR", str(rc_dir))
    else:
        monkeypatch.delenv("ZDOTDIR", raising=False)
    own = ["# the user's own lines", "PS1='READY> '", "alias ll='ls -l'"]
    if runs_compinit == "before":
        own[1:1] = ["autoload -Uz compinit && compinit -i"]
    rc = rc_dir / ".zshrc"
    rc.write_text("\n".join(own))  # no final newline: the install adds one before its line
    assert main(["completion", "zsh", "--install"]) == 0
    after_one = rc.read_text()
    assert after_one.splitlines()[: len(own)] == own
    assert len(after_one.splitlines()) == len(own) + 1
    assert after_one.splitlines()[-1].endswith(ZSHRC_MARK)
    assert main(["completion", "zsh", "--install"]) == 0  # again: nothing added
    assert rc.read_text() == after_one
    assert not (home / ".zshrc").exists() or runs_compinit != "zdotdir"

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"EDITOR", "VISUAL", "ZDOTDIR", "PS1", "RPS1", "RPROMPT"}
    }
    env.update({"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(home), "TERM": "dumb"})
    if runs_compinit == "zdotdir":
        env["ZDOTDIR"] = str(rc_dir)
    assert _interactive_zsh(home, "nsml-hpc subm", env) == "nsml-hpc submit\n"


def test_zsh_install_replaces_an_old_marked_line_in_place(
    nsml_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(nsml_env))
    monkeypatch.delenv("ZDOTDIR", raising=False)
    rc = nsml_env / ".zshrc"
    rc.write_text(f"export A=1\nfpath=(/old $fpath)  {ZSHRC_MARK}\nexport B=2\n")
    rc.chmod(0o640)
    assert main(["completion", "zsh", "--install"]) == 0
    lines = rc.read_text().splitlines()
    assert lines[0] == "export A=1" and lines[2] == "export B=2" and len(lines) == 3
    assert lines[1] == zshrc_line(nsml_env / ".zfunc")
    assert rc.stat().st_mode & 0o777 == 0o640
