"""What a session asks for, from a command line's flags or a notebook's keywords: one parser,
so ``nsml-hpc submit`` and :meth:`nsml_hpc.client.Client.submit` accept and refuse the same
requests (pure: no state is touched).

Values are what the user typed (``"a100:2"``, ``"4"``) or what Python code passes (``2``,
``True``); ``None`` is "not given". Errors name the value the way its front end spells it:
``--gpus-per-node`` on a command line, ``gpus_per_node`` in a call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nsml_hpc.errors import SpecError
from nsml_hpc.job.spec import (
    Resources,
    parse_count,
    parse_gpus,
    validate_dependency,
    validate_gpu_type,
    validate_mail_type,
    validate_memory,
)

Spelling = Callable[[str], str]


def flag(name: str) -> str:
    """``gpus_per_node`` -> ``--gpus-per-node`` (how the CLI names it)."""
    return "--" + name.replace("_", "-")


def keyword(name: str) -> str:
    """``gpus_per_node`` -> ``gpus_per_node`` (how a Python call names it)."""
    return name


# What a request may name: Resources' fields, with the GPU count's two spellings
# (``gpus``/``gpus_per_node``: both per node, each ``N`` or ``TYPE:N``).
REQUEST_KEYS = (
    "gpus",
    "gpus_per_node",
    "gpu_type",
    "nodes",
    "ntasks_per_node",
    "cpus_per_task",
    "cpus_per_gpu",
    "mem",
    "time",
    "partition",
    "account",
    "qos",
    "constraint",
    "exclusive",
    "reservation",
    "dependency",
    "mail_type",
    "mail_user",
    "sbatch_args",
)
_TEXT = ("time", "partition", "account", "qos", "constraint", "reservation", "mail_user")


def gpus_given(values: Mapping[str, Any], spell: Spelling = flag) -> tuple[str | None, int | None]:
    """``gpus`` / ``gpus_per_node`` (one field, two spellings), and ``gpu_type`` when a call
    names the type apart: (type, count per node)."""
    given = [
        (name, values[name], parse_gpus(spell(name), values[name]))
        for name in ("gpus", "gpus_per_node")
        if values.get(name) is not None
    ]
    if len(given) == 2 and given[0][2] != given[1][2]:
        raise SpecError(
            f"{spell('gpus')} {given[0][1]} and {spell('gpus_per_node')} {given[1][1]} disagree "
            "(both are GPUs on each node: give one)"
        )
    gpu_type, count = given[0][2] if given else (None, None)
    separate = values.get("gpu_type")
    if separate is not None:
        if not isinstance(separate, str):
            raise SpecError(f"{spell('gpu_type')} must be a GPU type name, got {separate!r}")
        validate_gpu_type(spell("gpu_type"), separate)
        if gpu_type is not None and gpu_type != separate:
            raise SpecError(
                f"{spell('gpus')} names type {gpu_type} and {spell('gpu_type')} {separate}: "
                "give one"
            )
        gpu_type = separate
    return gpu_type, count


def resources_given(values: Mapping[str, Any], spell: Spelling = flag) -> dict[str, Any]:
    """The resources ``values`` name (parsed and checked), by Resources field; the ones not
    given are left out (a fork keeps its parent's, a profile fills its defaults)."""
    unknown = sorted(set(values) - set(REQUEST_KEYS))
    if unknown:
        from nsml_hpc.suggest import did_you_mean

        word = unknown[0]
        raise SpecError(
            f"unknown resource {word!r}{did_you_mean(word, REQUEST_KEYS)}; "
            f"resources: {', '.join(sorted(REQUEST_KEYS))}"
        )
    given: dict[str, Any] = {}
    gpu_type, gpus = gpus_given(values, spell)
    if gpus is not None:
        given["gpus"] = gpus
    if gpu_type is not None or gpus is not None:
        given["gpu_type"] = gpu_type
    if values.get("nodes") is not None:
        given["nodes"] = parse_count(spell("nodes"), values["nodes"], minimum=1)
    for name in ("cpus_per_gpu", "ntasks_per_node", "cpus_per_task"):
        if values.get(name) is not None:
            given[name] = parse_count(spell(name), values[name], minimum=1)
    if values.get("mem") is not None:
        given["mem"] = validate_memory(_text(spell("mem"), values["mem"]))
    for name in _TEXT:
        if values.get(name) is not None:
            given[name] = _text(spell(name), values[name])
    exclusive = values.get("exclusive")
    if exclusive is not None:
        if not isinstance(exclusive, bool):
            raise SpecError(f"{spell('exclusive')} must be True or False, got {exclusive!r}")
        given["exclusive"] = exclusive
    if values.get("dependency") is not None:
        given["dependency"] = validate_dependency(_text(spell("dependency"), values["dependency"]))
    if values.get("mail_type") is not None:
        given["mail_type"] = validate_mail_type(_text(spell("mail_type"), values["mail_type"]))
    if values.get("sbatch_args"):
        given["sbatch_args"] = _texts(spell("sbatch_args"), values["sbatch_args"])
    return given


def resources_from(values: Mapping[str, Any], spell: Spelling = flag) -> Resources:
    """Every resource ``values`` name, with the defaults for those not given."""
    given = resources_given(values, spell)
    given["gpus"] = given.get("gpus") or 0
    return Resources(**given)


def after_given(sessions: Iterable[str] | str | None, spell: Spelling = flag) -> list[str]:
    """``--after`` sessions, each once, in the order given (resolved to job ids later)."""
    if sessions is None:
        return []
    if isinstance(sessions, str):
        sessions = [sessions]
    return list(dict.fromkeys(_text(spell("after"), name) for name in sessions))


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{name} must be text, got {value!r}")
    return value


def _texts(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Iterable):
        raise SpecError(f"{name} must be a list of sbatch options, got {value!r}")
    return [_text(name, item) for item in value]
