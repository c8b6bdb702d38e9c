"""A fork is a new session from a parent's spec with some hyperparameters changed, maybe more
or fewer GPUs, maybe resuming from one of the parent's snapshots (pure functions).

The parent's argument list is kept word for word except the values of the changed
hyperparameters, so positional arguments and the order of flags survive; names the parent
did not have are appended.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

from nsml_hpc.errors import SpecError
from nsml_hpc.hparams import coerce, format_args
from nsml_hpc.spec import Resources, SessionSpec

_FLAG = re.compile(r"^--?([A-Za-z_][A-Za-z0-9_.-]*)(?:=(.*))?$", re.DOTALL)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NUMBER_LIKE = re.compile(r"^-?([0-9]|\.[0-9])")


def _key(name: str) -> str:
    return name.replace("-", "_")


def parse_overrides(text: str) -> dict[str, str]:
    """``lr=0.05 epochs=10`` or ``--lr 0.05 --epochs=10`` -> ``{"lr": "0.05", "epochs": "10"}``."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise SpecError(f"cannot read the changed hyperparameters: {exc}") from None
    changes: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("-"):
            match = _FLAG.match(word)
            if match is None:
                raise SpecError(f"{word!r} is not a --name or --name=value flag")
            name, value = match.group(1), match.group(2)
            if value is None:
                nxt = words[index] if index < len(words) else None
                if nxt is not None and (not nxt.startswith("-") or _NUMBER_LIKE.match(nxt)):
                    value, index = nxt, index + 1
                else:
                    value = "true"
        else:
            name, sep, value = word.partition("=")
            if not sep:
                raise SpecError(f"write a change as name=value or --name value, got {word!r}")
        if not _NAME.fullmatch(name):
            raise SpecError(f"{name!r} is not a hyperparameter name")
        changes[name] = value
    return changes


def override_args(args: list[str], changes: dict[str, str]) -> list[str]:
    """``args`` with the values of ``changes`` put in place (matching ``-``/``_`` alike)."""
    wanted = {_key(name): (name, value) for name, value in changes.items()}
    done: set[str] = set()
    out: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--":
            out.extend(args[index - 1 :])
            index = len(args)
            break
        match = _FLAG.match(word)
        key = _key(match.group(1)) if match else None
        if match is None or key not in wanted:
            out.append(word)
            continue
        assert key is not None
        _name, value = wanted[key]
        done.add(key)
        flag = word.split("=", 1)[0]
        has_value_word = (
            match.group(2) is None
            and index < len(args)
            and (not args[index].startswith("-") or bool(_NUMBER_LIKE.match(args[index])))
        )
        if match.group(2) is not None or value.startswith("-"):
            out.append(f"{flag}={value}")
        elif value.lower() == "true" and not has_value_word:
            out.append(flag)  # a bare switch stays a bare switch
        else:
            out.extend([flag, value])
        if has_value_word:
            index += 1  # skip the old value
    extra = {name: coerce(value) for key, (name, value) in wanted.items() if key not in done}
    return out + format_args(extra)


def fork_spec(
    parent: SessionSpec,
    *,
    changes: dict[str, str] | None = None,
    gpus: int | None = None,
    memo: str | None = None,
    resume_from: str | None = None,
) -> SessionSpec:
    """The child's spec: the parent's, with the changes (validated later by ``prepare``)."""
    resources: Resources = parent.resources
    if gpus is not None:
        if gpus < 0:
            raise SpecError("--gpus must be >= 0")
        resources = replace(resources, gpus=gpus)
        if gpus == 0 and resources.cpus_per_gpu is not None:
            resources = replace(resources, cpus_per_gpu=None)
    return replace(
        parent,
        args=override_args(list(parent.args), changes or {}),
        resources=resources,
        memo=parent.memo if memo is None else memo,
        resume_from=resume_from,
    )
