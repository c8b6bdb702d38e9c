"""``nsml-hpc set SESSION lr=0.01``: change hyperparameters while a session runs.

The change is written atomically into ``<run_dir>/hparams.json`` through the cluster's files
(so remote clusters work the same), as the full set of changed values with the next version
number; the job takes it at its next look (:mod:`nsml_hpc.job.live_hparams`) and records the
step in an ``hparam`` event. Every check comes first, so a refused change writes nothing:

* only a session that is not finished (pending, running, requeued) can be changed;
* only hyperparameters the session has (from its command line, or added earlier), unless the
  change names them with ``--add``;
* the value must have the current value's type (a whole number stays one; a float takes
  numbers; true/false stays a switch) and be one line without control characters.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from nsml_hpc.catalog.hparam_events import record_request, taken_changes
from nsml_hpc.catalog.sessions import events_of, get_session
from nsml_hpc.config.identity import current_user
from nsml_hpc.context import Context
from nsml_hpc.errors import SpecError
from nsml_hpc.job.hparams import HParamValue, coerce, parse_hyperparameters
from nsml_hpc.job.layout import HPARAMS_FILE, SESSION_FILE
from nsml_hpc.job.live_hparams import LIVE_KEY, interval_from_env
from nsml_hpc.job.spec import SessionSpec, has_control_characters
from nsml_hpc.slurm.states import is_live
from nsml_hpc.snapshots.fork import KEY
from nsml_hpc.submit.rundir import json_bytes, read_json

MAX_VALUE_CHARS = 1000


@dataclass(frozen=True)
class HParamState:
    """A session's hyperparameters now: as submitted, as changed, and the changes taken."""

    session: str
    submitted: dict[str, HParamValue]
    requested: dict[str, HParamValue]  # hparams.json: every change asked for so far
    version: int
    taken_version: int  # the newest version the job has taken (0: none)

    @property
    def current(self) -> dict[str, HParamValue]:
        return {**self.submitted, **self.requested}


@dataclass(frozen=True)
class HParamSet:
    session: str
    version: int
    changes: dict[str, HParamValue]
    previous: dict[str, HParamValue | None] = field(default_factory=dict)
    interval: float = 2.0  # the job looks at most this often (the documented delay)


def _norm(key: str) -> str:
    return key.replace("-", "_")


def parse_change(flag: str, text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``set``: a hyperparameter name and a one-line value."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep:
        raise SpecError(f"{flag} takes KEY=VALUE, got {text!r}")
    if not KEY.fullmatch(key):
        raise SpecError(f"{key!r} is not a hyperparameter name (letters, digits, '_', '.', '-')")
    if has_control_characters(value):
        raise SpecError(
            f"the value of {key} holds a newline or another control character; "
            "a hyperparameter is one line"
        )
    if len(value) > MAX_VALUE_CHARS:
        raise SpecError(f"the value of {key} is longer than {MAX_VALUE_CHARS} characters")
    return _norm(key), value


def _kind(value: HParamValue) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    return "text"


def coerce_like(key: str, current: HParamValue, text: str) -> HParamValue:
    """``text`` as a value of ``current``'s type, or SpecError naming both."""
    value = coerce(text)
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(current, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    else:
        return text
    raise SpecError(f"{key} is {_kind(current)} (now {current!r}); {text!r} is {_kind(value)}")


def _finished(ctx: Context, session_id: int) -> bool:
    """The job wrote its last ``ended`` event (not one before a requeue)."""
    last = None
    for event in events_of(ctx.catalog, session_id):
        if event.kind in ("started", "ended"):
            last = event
    if last is None or last.kind != "ended":
        return False
    try:
        data = json.loads(last.data_json or "{}")
    except ValueError:
        return True
    return not (isinstance(data, dict) and data.get("requeue"))


def hyperparameter_state(ctx: Context, name: str) -> HParamState:
    """What ``name``'s hyperparameters are now (reads its hparams.json on the cluster)."""
    record = get_session(ctx.catalog, name)
    assert record.id is not None
    files = ctx.backend_for(record.cluster).files
    spec = SessionSpec.from_dict(json.loads(record.spec_json))
    submitted = parse_hyperparameters(spec.args)
    document = read_json(files, posixpath.join(record.run_dir, SESSION_FILE))
    if isinstance(document, dict) and isinstance(document.get(LIVE_KEY), dict):
        submitted.update(
            {
                str(k): v
                for k, v in document[LIVE_KEY].items()
                if isinstance(v, bool | int | float | str)
            }
        )
    overlay = read_json(files, posixpath.join(record.run_dir, HPARAMS_FILE))
    version, requested = 0, {}
    if isinstance(overlay, dict) and isinstance(overlay.get("version"), int):
        version = int(overlay["version"])
        values = overlay.get("values")
        if isinstance(values, dict):
            requested = {
                str(k): v for k, v in values.items() if isinstance(v, bool | int | float | str)
            }
    taken = taken_changes(ctx.catalog, [record.id])[record.id]
    return HParamState(
        session=record.name,
        submitted=submitted,
        requested=requested,
        version=version,
        taken_version=max((change.version for change in taken), default=0),
    )


def set_hyperparameters(
    ctx: Context,
    name: str,
    changes: Sequence[str],
    *,
    adds: Sequence[str] = (),
    now: float | None = None,
) -> HParamSet:
    """Change hyperparameters of the running session ``name`` (``KEY=VALUE`` texts; ``adds``
    may name new ones). All checks first: nothing is written unless every change is valid."""
    now = time.time() if now is None else now
    record = get_session(ctx.catalog, name)
    assert record.id is not None
    if not is_live(record.state, record.ended_at, now) or _finished(ctx, record.id):
        raise SpecError(
            f"session {name} is {record.state}; hyperparameters change only while it is "
            "pending or running (fork it to start from other values)"
        )
    sets = [parse_change("set", text) for text in changes]
    added = [parse_change("--add", text) for text in adds]
    if not sets and not added:
        raise SpecError("name at least one change: KEY=VALUE")
    keys = [key for key, _ in [*sets, *added]]
    doubled = sorted({key for key in keys if keys.count(key) > 1})
    if doubled:
        raise SpecError(f"{doubled[0]} is given twice")
    state = hyperparameter_state(ctx, name)
    current = state.current
    new: dict[str, HParamValue] = {}
    for key, text in sets:
        if key not in current:
            known = ", ".join(sorted(current)) or "none"
            raise SpecError(
                f"session {name} has no hyperparameter {key!r} (it has: {known}); "
                f"use --add {key}=VALUE to add it"
            )
        new[key] = coerce_like(key, current[key], text)
    for key, text in added:
        if key in current:
            raise SpecError(f"session {name} already has {key!r}; set it without --add")
        new[key] = coerce(text)
    version = state.version + 1
    document = {
        "version": version,
        "values": {**state.requested, **new},
        "set_at": now,
        "set_by": current_user(),
        "session": name,
    }
    files = ctx.backend_for(record.cluster).files
    files.write_bytes(posixpath.join(record.run_dir, HPARAMS_FILE), json_bytes(document))
    record_request(ctx.catalog, record.id, version, new, now)
    return HParamSet(
        session=name,
        version=version,
        changes=new,
        previous={key: current.get(key) for key in new},
        interval=interval_from_env(),
    )


__all__ = [
    "HParamSet",
    "HParamState",
    "coerce_like",
    "hyperparameter_state",
    "parse_change",
    "set_hyperparameters",
]
