"""Idle-GPU ("zombie") detection from gpu.jsonl samples: pure functions used by sync and ps."""

from __future__ import annotations

import json
from dataclasses import dataclass

IDLE_UTILISATION = 0.0  # percent; NSML flagged GPUs that sat at 0 %


@dataclass(frozen=True)
class IdleState:
    """Where a session's GPUs stand after the samples seen so far."""

    idle_since: float | None = None  # start of the current all-idle stretch
    last_sample_at: float | None = None
    last_util: float | None = None  # mean utilisation of the last sample
    samples: int = 0
    warnings: int = 0


def advance(state: IdleState, chunk: bytes) -> IdleState:
    """The state after the complete gpu.jsonl lines in ``chunk``; bad lines are warnings."""
    idle_since, last_at, last_util = state.idle_since, state.last_sample_at, state.last_util
    samples, warnings = state.samples, state.warnings
    for raw in chunk.splitlines():
        try:
            line = json.loads(raw)
            when = float(line["time"])
            gpus = line.get("gpus")
            if gpus is None:
                warnings += 1
                continue
            utils = [float(gpu["util"]) for gpu in gpus]
        except (ValueError, KeyError, TypeError):
            warnings += 1
            continue
        if not utils:
            warnings += 1
            continue
        samples += 1
        last_at, last_util = when, sum(utils) / len(utils)
        if max(utils) <= IDLE_UTILISATION:
            idle_since = idle_since if idle_since is not None else when
        else:
            idle_since = None
    return IdleState(idle_since, last_at, last_util, samples, warnings)


def idle_for(state: IdleState, now: float) -> float:
    """Seconds the GPUs have sat idle (0 when they are busy or unknown)."""
    if state.idle_since is None or state.last_sample_at is None:
        return 0.0
    return max(0.0, max(now, state.last_sample_at) - state.idle_since)


def is_idle(state: IdleState, now: float, threshold_seconds: float) -> bool:
    return state.idle_since is not None and idle_for(state, now) >= threshold_seconds
