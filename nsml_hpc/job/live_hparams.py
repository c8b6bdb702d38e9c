"""Hyperparameters that change while a session runs: the job's side of ``nsml-hpc set``.

``nsml-hpc set mnist/3 lr=0.01`` replaces ``<run_dir>/hparams.json`` atomically with the full
set of changed values and a version number. The training code sees the new values at its next
look, and a look costs at most one ``stat`` of that file every ``NSML_HPC_HPARAM_INTERVAL``
seconds (default 2; in between a look is a clock read)::

    lr = nsml_hpc.hparam("lr", 0.1)         # the current value (changed, submitted, default)

    @nsml_hpc.on_hparam_change               # called with the changed values, at the next
    def apply(changes):                      # look: hparam(), session.hyperparameters or
        if "lr" in changes:                  # report() (report looks only when a callback
            for group in optimizer.param_groups:  # is registered)
                group["lr"] = changes["lr"]

The documented delay: a change is taken at the script's first look that comes at least one
interval after the previous stat, so within ``interval`` seconds plus the time between two of
the script's looks. When the job takes a change it appends one ``hparam`` event to
``events.jsonl`` with the step that first uses the new values (the step the next ``report()``
without an explicit step would record): ``show`` lists it, plots mark it, ``compare`` and
``diff`` show the history and ``fork`` starts from the values in effect.

Standard library only; it runs inside every training process.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsml_hpc.job import progress
from nsml_hpc.job.hparams import HParamValue, parse_hyperparameters
from nsml_hpc.job.layout import (
    EVENTS_FILE,
    HPARAM_INTERVAL_ENV,
    HPARAMS_FILE,
    RUN_DIR_ENV,
    SESSION_FILE,
    job_id_from_env,
)

DEFAULT_INTERVAL = 2.0
MIN_INTERVAL = 0.01
MAX_FILE_BYTES = 1024 * 1024
LIVE_KEY = "live_hyperparameters"  # session.json: values a fork starts from
HPARAM_EVENT = "hparam"

Callback = Callable[[dict[str, HParamValue]], object]
_stat = os.stat
_monotonic = time.monotonic


def interval_from_env() -> float:
    text = os.environ.get(HPARAM_INTERVAL_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL
    return max(value, MIN_INTERVAL) if math.isfinite(value) else DEFAULT_INTERVAL


def _values(data: Any) -> dict[str, HParamValue]:
    """The JSON scalars of a ``values`` object (anything else is not a hyperparameter)."""
    if not isinstance(data, dict):
        return {}
    return {
        str(name): value
        for name, value in data.items()
        if isinstance(value, bool | int | float | str)
    }


def read_overlay(path: Path) -> tuple[int, dict[str, HParamValue]] | None:
    """``(version, values)`` of an hparams.json; None if missing, unreadable or malformed
    (the front end replaces the file atomically, so a reader never sees half of it)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_FILE_BYTES:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        return None
    return version, _values(data.get("values"))


class LiveHyperparameters:
    """The running job's view of its hyperparameters (one per process)."""

    def __init__(self) -> None:
        self.pid = -1
        self.run_dir: Path | None = None
        self.base: dict[str, HParamValue] = {}
        self.values: dict[str, HParamValue] = {}  # submitted, with the changes taken so far
        self.version = 0
        self.signature: tuple[int, int, int] | None = None
        self.next_check = 0.0
        self.interval = DEFAULT_INTERVAL
        self.callbacks: list[Callback] = []

    def _start(self) -> None:
        """Read the submitted values once per process (a forked worker starts afresh)."""
        if self.pid == os.getpid():
            return
        self.pid = os.getpid()
        run_dir = os.environ.get(RUN_DIR_ENV)
        self.run_dir = Path(run_dir) if run_dir else None
        self.interval = interval_from_env()
        self.base = self._submitted()
        self.values = dict(self.base)
        self.version, self.signature, self.next_check = 0, None, 0.0

    def _submitted(self) -> dict[str, HParamValue]:
        if self.run_dir is None:
            return parse_hyperparameters(sys.argv[1:])
        try:
            document = json.loads((self.run_dir / SESSION_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            document = {}
        spec = document.get("spec") if isinstance(document, dict) else None
        args = spec.get("args", []) if isinstance(spec, dict) else []
        values = parse_hyperparameters([str(arg) for arg in args])
        if isinstance(document, dict):
            values.update(_values(document.get(LIVE_KEY)))
        return values

    def look(self) -> dict[str, HParamValue]:
        """Take a change if the interval has passed since the last stat: the values that
        changed (empty: none). Callbacks run with them, and the job records one event."""
        self._start()
        if self.run_dir is None:
            return {}
        now = _monotonic()
        if now < self.next_check:
            return {}
        self.next_check = now + self.interval
        path = self.run_dir / HPARAMS_FILE
        try:
            info = _stat(path)  # the one system call a look may cost
        except OSError:
            return {}
        signature = (info.st_ino, info.st_size, info.st_mtime_ns)
        if signature == self.signature:
            return {}
        self.signature = signature
        overlay = read_overlay(path)
        if overlay is None or overlay[0] <= self.version:
            return {}
        version, values = overlay
        wanted = {**self.base, **values}
        changes = {
            name: value
            for name, value in wanted.items()
            if name not in self.values or _differs(self.values[name], value)
        }
        previous = {name: self.values.get(name) for name in changes}
        self.version = version
        self.values = wanted
        if changes:
            self._record(version, changes, previous)
            for callback in list(self.callbacks):
                callback(dict(changes))
        return changes

    def _record(
        self,
        version: int,
        changes: dict[str, HParamValue],
        previous: dict[str, HParamValue | None],
    ) -> None:
        assert self.run_dir is not None
        line = {
            "event": HPARAM_EVENT,
            "time": time.time(),
            "job_id": job_id_from_env(),
            "version": version,
            "changes": changes,
            "previous": previous,
            "step": progress.next_step(),
        }
        data = (json.dumps(line, sort_keys=True) + "\n").encode()
        try:
            fd = os.open(self.run_dir / EVENTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            return  # the values still apply; only the record of the change is lost
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def current(self) -> dict[str, HParamValue]:
        self.look()
        return dict(self.values)

    def get(self, name: str, default: Any = None) -> Any:
        self.look()
        return self.values.get(name, default)

    def subscribe(self, callback: Callback) -> Callback:
        self._start()
        self.callbacks.append(callback)
        progress.after_report = self._after_report
        return callback

    def _after_report(self) -> None:
        if self.callbacks:
            self.look()


def _differs(old: HParamValue, new: HParamValue) -> bool:
    return type(old) is not type(new) or old != new


live = LiveHyperparameters()


def hparam(name: str, default: Any = None) -> Any:
    """The current value of hyperparameter ``name``: changed with ``nsml-hpc set``, else as
    submitted (``--name value``), else ``default``. Cheap enough to call every step."""
    return live.get(name, default)


def on_hparam_change(callback: Callback) -> Callback:
    """Call ``callback(changes)`` when the job takes a change (usable as a decorator)."""
    return live.subscribe(callback)


def check_hparams() -> dict[str, HParamValue]:
    """Look for a change now (within the interval): the values that changed, if any."""
    return live.look()


__all__ = ["check_hparams", "hparam", "on_hparam_change", "read_overlay"]
