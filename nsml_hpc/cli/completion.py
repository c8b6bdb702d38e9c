"""Shell completion (bash, zsh, fish): commands, options, option values, session names,
cluster names, metric names, sweeps, settings.

The shell scripts are thin: each asks ``nsml-hpc __complete INDEX WORD...`` (the words after
the program name, the one being completed included, and its 0-based index) and offers what it
prints, one candidate a line. Commands and options come from the argparse tree itself (nothing
to keep in step); names that live in the catalog come through the workspace. ``__complete``
never prints an error or a traceback and always exits 0: a catalog that cannot be opened, a
broken config, an interrupted read simply complete nothing (the shell then offers files).
``@files`` alone on the output asks the shell for file names (a training script).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsml_hpc.cli.common import Commands

if TYPE_CHECKING:
    from nsml_hpc.workspace import Workspace

FILES = "@files"
SHELLS = ("bash", "zsh", "fish")

BASH = r"""# nsml-hpc completion for bash (nsml-hpc completion bash)
_nsml_hpc() {
    local IFS=$'\n' out
    out=$(nsml-hpc __complete "$((COMP_CWORD - 1))" "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
    if [[ "$out" == "@files" ]]; then
        COMPREPLY=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
        return 0
    fi
    COMPREPLY=($out)
}
complete -o default -F _nsml_hpc nsml-hpc
"""

ZSH = r"""#compdef nsml-hpc
# nsml-hpc completion for zsh (nsml-hpc completion zsh)
_nsml_hpc() {
    local -a candidates
    local out
    out=$(nsml-hpc __complete "$((CURRENT - 2))" "${(@)words[2,CURRENT]}" 2>/dev/null)
    if [[ "$out" == "@files" ]]; then
        _files
        return
    fi
    candidates=("${(@f)out}")
    if [[ -n "$out" ]]; then
        compadd -Q -S '' -- "${candidates[@]}"
    fi
}
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _nsml_hpc "$@"  # autoloaded from fpath by the first Tab: complete now, not at the next
else
    compdef _nsml_hpc nsml-hpc
fi
"""

# The one line ``completion zsh --install`` keeps in ${ZDOTDIR:-$HOME}/.zshrc, found again by
# its marker. It works whether or not the user's zshrc runs compinit (before or after it):
# the folder goes on fpath (a later compinit finds the #compdef file there), compinit runs
# only when nothing has (compdef is then still undefined), and the function is bound by hand
# (an earlier compinit scanned fpath before the folder was on it).
ZSHRC_MARK = "# nsml-hpc completion (nsml-hpc completion zsh --install)"

FISH = r"""# nsml-hpc completion for fish (nsml-hpc completion fish)
function __nsml_hpc_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -l current (commandline -ct)
    set -l out (nsml-hpc __complete (count $words) $words $current 2>/dev/null)
    if test "$out" = "@files"
        __fish_complete_path $current
    else
        printf '%s\n' $out
    end
end
complete -c nsml-hpc -f -a '(__nsml_hpc_complete)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def install_path(shell: str, home: Path | None = None) -> Path:
    """Where ``completion --install`` puts the script: the shell's own per-user folder that
    it reads at start (bash, fish: without any change to the user's rc files; zsh: a folder
    that the line :func:`install_zshrc_line` keeps in .zshrc puts on ``fpath``)."""
    home = home or Path.home()
    if shell == "bash":
        data = os.environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
        return Path(data) / "bash-completion" / "completions" / "nsml-hpc"
    if shell == "zsh":
        return home / ".zfunc" / "_nsml-hpc"
    config = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(config) / "fish" / "completions" / "nsml-hpc.fish"


def zshrc_path(home: Path | None = None) -> Path:
    """The zshrc zsh reads: ``${ZDOTDIR:-$HOME}/.zshrc``."""
    return Path(os.environ.get("ZDOTDIR") or home or Path.home()) / ".zshrc"


def zshrc_line(folder: Path) -> str:
    """The marked .zshrc line that makes ``folder``'s ``_nsml-hpc`` complete nsml-hpc."""
    quoted = "'" + str(folder).replace("'", "'\\''") + "'"
    return (
        f"fpath=({quoted} $fpath); (( $+functions[compdef] )) || "
        "{ autoload -Uz compinit && compinit -i; }; "
        f"autoload -Uz _nsml-hpc && compdef _nsml-hpc nsml-hpc  {ZSHRC_MARK}"
    )


def install_zshrc_line(rc: Path, folder: Path) -> bool:
    """Keep exactly one marked line in ``rc`` (added at the end, or the old one replaced in
    place); every other line stays as it was. Returns whether the file changed. A zshrc that
    is a link (a dotfiles repository) is written through to its target."""
    line = zshrc_line(folder)
    target = rc.resolve() if rc.is_symlink() else rc
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    lines = text.splitlines(keepends=True)
    marked = [index for index, old in enumerate(lines) if old.rstrip("\n").endswith(ZSHRC_MARK)]
    if marked and [lines[index].rstrip("\n") for index in marked] == [line]:
        return False
    if marked:
        lines[marked[0]] = line + "\n"
        lines = [old for index, old in enumerate(lines) if index not in marked[1:]]
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(line + "\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.nsml-hpc-tmp")
    temp.write_text("".join(lines), encoding="utf-8")
    if target.exists():
        temp.chmod(target.stat().st_mode & 0o7777)
    temp.replace(target)
    return True


# --- what to offer ---------------------------------------------------------------------------

# Option -> what its value is (the catalog's names, the settings' names, files)
VALUE_KINDS = {
    "--cluster": "cluster",
    "--metric": "metric",
    "--project": "project",
    "--sweep": "sweep",
    "--column": "column",
    "-c": "column",
    "--png": "files",
    "--output": "files",
    "-o": "files",
    "--venv": "files",
    "--identity-file": "files",
    "--known-hosts": "files",
}
# Positional argument (dest) -> what it is
POSITIONAL_KINDS = {
    "session": "session",
    "sessions": "session",
    "left": "session",
    "right": "session",
    "script": "files",
    "dest": "files",
    "tag": "tag",
    "key": "setting",
}
CLUSTER_NAME_COMMANDS = {("cluster", "rm"), ("cluster", "test"), ("cluster", "trust")}


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0 and not isinstance(
        action,
        argparse._StoreTrueAction
        | argparse._StoreFalseAction
        | argparse._CountAction
        | argparse._HelpAction
        | argparse._VersionAction
        | argparse._StoreConstAction,
    )


def complete(
    parser: argparse.ArgumentParser,
    words: Sequence[str],
    index: int,
    names: Callable[[str, list[str], str], list[str]],
) -> list[str]:
    """Candidates for ``words[index]`` (``words``: the command line after the program name)
    of the command line ``parser`` reads. ``names(kind, words, prefix)`` answers the kinds that
    live in the catalog or settings."""
    words = list(words)
    if index < 0:
        return []
    while len(words) <= index:
        words.append("")
    current = words[index]
    path: list[str] = []
    positionals_seen = 0
    expecting: argparse.Action | None = None
    for word in words[:index]:
        if expecting is not None:
            expecting = None
            continue
        if word == "--":
            return []
        if word.startswith("-"):
            action = parser._option_string_actions.get(word.split("=", 1)[0])
            if action is not None and _takes_value(action) and "=" not in word:
                expecting = action
            continue
        sub = _subparsers(parser)
        if sub is not None and word in sub.choices:
            parser = sub.choices[word]
            path.append(word)
            positionals_seen = 0
            continue
        positionals_seen += 1
    if expecting is not None:
        return _values(expecting, current, path, words, names)
    if current.startswith("-"):
        if "=" in current:
            option, _, value = current.partition("=")
            action = parser._option_string_actions.get(option)
            if action is None or not _takes_value(action):
                return []
            return [f"{option}={item}" for item in _values(action, value, path, words, names)]
        return sorted(
            option
            for option, action in parser._option_string_actions.items()
            if option.startswith(current) and action.help != argparse.SUPPRESS
        )
    sub = _subparsers(parser)
    if sub is not None:
        return sorted(name for name in sub.choices if name.startswith(current))
    positionals = [action for action in parser._actions if not action.option_strings]
    if not positionals:
        return []
    slot = positionals[min(positionals_seen, len(positionals) - 1)]
    if slot.nargs not in ("+", "*", argparse.REMAINDER) and positionals_seen >= len(positionals):
        return []
    kind = POSITIONAL_KINDS.get(slot.dest)
    if tuple(path) in CLUSTER_NAME_COMMANDS and slot.dest == "name":
        kind = "cluster"
    if slot.choices:
        return sorted(str(choice) for choice in slot.choices if str(choice).startswith(current))
    return _named(kind, current, path, words, names)


def _values(
    action: argparse.Action,
    current: str,
    path: list[str],
    words: list[str],
    names: Callable[[str, list[str], str], list[str]],
) -> list[str]:
    if action.choices:
        return sorted(str(choice) for choice in action.choices if str(choice).startswith(current))
    kind = next((VALUE_KINDS[o] for o in action.option_strings if o in VALUE_KINDS), None)
    return _named(kind, current, path, words, names)


def _named(
    kind: str | None,
    current: str,
    path: list[str],
    words: list[str],
    names: Callable[[str, list[str], str], list[str]],
) -> list[str]:
    if kind is None:
        return []
    if kind == "files":
        return [FILES]
    if kind == "tag":
        found = names("tag", words, current)
        return sorted(item for item in {*found, "latest", "best:"} if item.startswith(current))
    return [item for item in names(kind, words, current) if item.startswith(current)]


class CatalogNames:
    """Names from the catalog and the settings, opened only when a kind needs them."""

    def __init__(self) -> None:
        self._workspace: Workspace | None = None

    def __call__(self, kind: str, words: list[str], prefix: str) -> list[str]:
        from nsml_hpc.workspace import Workspace

        if kind == "cluster":
            return Workspace.read_settings().cluster_names()
        if kind == "setting":
            return [entry.key for entry in Workspace.explain_settings()]
        workspace = self._open()
        if kind == "session":
            return workspace.session_names(prefix)
        if kind == "project":
            return sorted({name.rpartition("/")[0] for name in workspace.session_names("", 5000)})
        if kind == "sweep":
            return workspace.sweep_names()
        sessions = [word for word in words if "/" in word and word[-1:].isdigit()]
        if kind == "metric":
            known = [word for word in sessions if word in set(workspace.session_names(word, 1))]
            if not known:
                return workspace.metric_names()
            return sorted({m for name in known for m in workspace.metric_names(name)})
        if kind == "column":
            rows = workspace.sessions(limit=200)
            return sorted(
                {
                    "memo",
                    "user",
                    "project",
                    "cluster",
                    *(k for r in rows for k in r.hyperparameters),
                }
            )
        if kind == "tag":
            if not sessions:
                return []
            return [row.tag for row in workspace.snapshots(sessions[-1])]
        return []

    def _open(self) -> Workspace:
        if self._workspace is None:
            from nsml_hpc.workspace import Workspace

            self._workspace = Workspace.open()
        return self._workspace

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()


def run_complete(argv: Sequence[str], build_parser: Callable[[], argparse.ArgumentParser]) -> int:
    """``nsml-hpc __complete INDEX WORD...``: candidates on stdout; silent, exit 0, always."""
    names = CatalogNames()
    try:
        devnull = open(os.devnull, "w")  # noqa: SIM115 - stderr stays silenced to the end
        sys.stderr = devnull
        index = int(argv[0]) if argv and argv[0].lstrip("-").isdigit() else -1
        found = complete(build_parser(), list(argv[1:]), index, names)
        if found:
            sys.stdout.write("\n".join(found) + "\n")
            sys.stdout.flush()
    except BaseException:  # completion never prints a traceback, whatever happened
        return 0
    finally:
        with contextlib.suppress(BaseException):
            names.close()
    return 0


# --- the command ------------------------------------------------------------------------------


def cmd_completion(args: argparse.Namespace) -> int:
    """Print the shell completion script for bash, zsh or fish, or install it (--install).

    Completes commands, options, session names, cluster names, metric names, sweeps and
    settings. Without SHELL, the shell of $SHELL. --install writes the script where the shell
    loads it; for zsh it also keeps one marked line in ${ZDOTDIR:-$HOME}/.zshrc (fpath,
    compinit when the zshrc has none), added once."""
    from nsml_hpc.errors import SpecError

    shell = args.shell or Path(os.environ.get("SHELL", "bash")).name
    if shell not in SHELLS:
        from nsml_hpc.suggest import did_you_mean

        raise SpecError(
            f"no completion for shell {shell!r}{did_you_mean(shell, SHELLS)}; use bash, zsh or fish"
        )
    script = SCRIPTS[shell]
    if not args.install:
        sys.stdout.write(script)
        return 0
    target = install_path(shell)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_text(script, encoding="utf-8")
    temp.replace(target)
    print(f"installed {shell} completion: {target}")
    if shell == "bash":
        print(
            "it loads in new shells (bash-completion reads that folder); now: source " + str(target)
        )
    elif shell == "zsh":
        rc = zshrc_path()
        if install_zshrc_line(rc, target.parent):
            print(f"added one line to {rc} (marked '{ZSHRC_MARK}'); it loads in new shells")
        else:
            print(f"{rc} already loads it; it loads in new shells")
    else:
        print("it loads in new fish shells")
    return 0


def register(commands: Commands) -> None:
    completion = commands.add("completion", cmd_completion)
    completion.add_argument("shell", nargs="?", choices=SHELLS, help="default: $SHELL's")
    completion.add_argument(
        "--install",
        action="store_true",
        help="write it where the shell loads it (zsh: and one marked line in .zshrc)",
    )
