"""Retention: which snapshots gc keeps and which it deletes, as a pure function, and the
policies read from the config file.

The rules, in order (``plan`` applies them exactly; tests/pure/test_retention.py checks it
on random inputs):

1. **Never deleted**, whatever the policy: pinned snapshots; snapshots a session was forked
   from; the latest intact snapshot (by creation time) of a session that is pending, running
   or may be requeued (what a requeue resumes from); checkpoint files still being written;
   and damaged snapshots (files missing: left for a person to look at).

Checkpoint files the training code wrote itself (*found*, not saved with ``nsml_hpc.save``)
are a kind of their own: rules 1 and 3 apply to each kind separately (the newest found
checkpoint of a live session is protected as well as its newest saved snapshot, and
``keep_last``/``keep_best`` keep that many of each).
2. A session **finished more than ``finished_days`` ago**: every other snapshot is deleted.
3. Otherwise, if ``keep_last`` or ``keep_best`` is set, a snapshot is kept when it is among
   the session's ``keep_last`` newest snapshots, or among its ``keep_best`` best by
   ``best_metric`` (protected snapshots count towards both); the others are deleted. With
   neither set, nothing is deleted by count.
4. **Disk budgets**: where the snapshots still kept (project's, then all) exceed
   ``disk_budget_gb``, further unprotected snapshots are deleted, those kept only as
   "newest" before those kept as "best", older first, until the total fits (or only
   protected ones are left).

```toml
[gc]                      # every project
keep_last = 3
keep_best = 1
best_metric = "val_loss"  # "val_acc:max"; else the direction rule and [metrics] decide
finished_days = 30
disk_budget_gb = 500      # all sessions together

[gc.project.mnist]        # overrides for one project; its budget is the project's own
keep_last = 5
disk_budget_gb = 50
```
"""

from __future__ import annotations

import math
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nsml_hpc.config.settings import metric_directions
from nsml_hpc.errors import ConfigError, SpecError
from nsml_hpc.job.direction import NO_OVERRIDES, Directions
from nsml_hpc.job.snapshot_format import parse_selector
from nsml_hpc.suggest import did_you_mean

GIB = 1024**3
DAY = 86400.0
POLICY_KEYS = ("keep_last", "keep_best", "best_metric", "finished_days", "disk_budget_gb")
GC_KEYS = (*POLICY_KEYS, "log_file", "project")


@dataclass(frozen=True)
class Policy:
    keep_last: int | None = None
    keep_best: int | None = None
    best_metric: str | None = None
    maximize: bool = False
    finished_days: float | None = None
    disk_budget_bytes: int | None = None

    @property
    def counts(self) -> bool:
        return self.keep_last is not None or self.keep_best is not None

    def describe(self) -> str:
        parts = []
        if self.keep_last is not None:
            parts.append(f"keep last {self.keep_last}")
        if self.keep_best is not None:
            direction = "max" if self.maximize else "min"
            parts.append(f"keep best {self.keep_best} by {self.best_metric} ({direction})")
        if self.finished_days is not None:
            parts.append(f"delete {self.finished_days:g} days after the end")
        if self.disk_budget_bytes is not None:
            parts.append(f"budget {self.disk_budget_bytes / GIB:g} GiB")
        return ", ".join(parts) or "keep everything"


@dataclass(frozen=True)
class Policies:
    default: Policy = field(default_factory=Policy)
    projects: dict[str, Policy] = field(default_factory=dict)  # merged over the default
    log_file: Path | None = None

    def for_project(self, project: str) -> Policy:
        return self.projects.get(project, replace(self.default, disk_budget_bytes=None))

    @property
    def configured(self) -> bool:
        everything = [self.default, *self.projects.values()]
        return any(
            p.counts or p.finished_days is not None or p.disk_budget_bytes is not None
            for p in everything
        )


# --- inputs and outputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotFacts:
    id: int
    session_id: int
    tag: str
    step: int | None
    created: float
    bytes: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    pinned: bool = False
    forked_from: bool = False
    damaged: bool = False
    found: bool = False  # a checkpoint file the training code wrote (its own kind)
    writing: bool = False  # a found checkpoint still being written


@dataclass(frozen=True)
class SessionFacts:
    id: int
    name: str
    project: str
    live: bool  # pending, running, or may still be requeued
    ended_at: float | None


@dataclass(frozen=True)
class Decision:
    snapshot: SnapshotFacts
    delete: bool
    reason: str
    protected: bool = False


@dataclass(frozen=True)
class Plan:
    decisions: list[Decision]
    notes: list[str]

    @property
    def deletions(self) -> list[Decision]:
        return [d for d in self.decisions if d.delete]

    @property
    def freed_bytes(self) -> int:
        return sum(d.snapshot.bytes for d in self.deletions)


def _recency(snap: SnapshotFacts) -> tuple[float, int, str, int]:
    return (snap.created, snap.step if snap.step is not None else -1, snap.tag, snap.id)


def best_of(snaps: list[SnapshotFacts], policy: Policy) -> list[SnapshotFacts]:
    """The session's snapshots having ``best_metric``, best first (ties: newest first)."""
    metric = policy.best_metric
    if metric is None:
        return []
    scored = [s for s in snaps if s.metrics.get(metric) is not None]

    def key(snap: SnapshotFacts) -> tuple[float, tuple[float, int, str, int]]:
        value = snap.metrics[metric]
        assert value is not None
        return (value if policy.maximize else -value, _recency(snap))

    return sorted(scored, key=key, reverse=True)


def plan(
    snapshots: list[SnapshotFacts],
    sessions: list[SessionFacts],
    policies: Policies,
    now: float,
) -> Plan:
    """Keep or delete each snapshot, with the reason (see the module docstring)."""
    by_session: dict[int, list[SnapshotFacts]] = defaultdict(list)
    for snap in snapshots:
        by_session[snap.session_id].append(snap)
    session_of = {s.id: s for s in sessions}
    decisions: dict[int, Decision] = {}
    best_kept: set[int] = set()
    for session_id, snaps in by_session.items():
        session = session_of.get(session_id)
        if session is None:
            for snap in snaps:
                decisions[snap.id] = Decision(snap, False, "session unknown", protected=True)
            continue
        policy = policies.for_project(session.project)
        ordered = sorted(snaps, key=_recency)
        latest: set[int] = set()
        newest: set[int] = set()
        best: set[int] = set()
        for found in (False, True):  # saved snapshots, then found checkpoints
            intact = [s for s in ordered if not s.damaged and not s.writing and s.found == found]
            # What a requeued job would resume from: the newest intact one of each kind.
            if intact and session.live:
                latest.add(intact[-1].id)
            newest |= {s.id for s in intact[::-1][: policy.keep_last or 0]}
            best |= {s.id for s in best_of(intact, policy)[: policy.keep_best or 0]}
        expired = (
            not session.live
            and session.ended_at is not None
            and policy.finished_days is not None
            and now - session.ended_at > policy.finished_days * DAY
        )
        for snap in snaps:
            protection = _protection(snap, latest)
            if protection:
                decisions[snap.id] = Decision(snap, False, protection, protected=True)
            elif expired:
                days = (now - (session.ended_at or now)) / DAY
                decisions[snap.id] = Decision(snap, True, f"session finished {days:.0f} days ago")
            elif not policy.counts:
                decisions[snap.id] = Decision(snap, False, "no count limit")
            elif snap.id in newest or snap.id in best:
                label = "newest" if snap.id in newest else f"best by {policy.best_metric}"
                if snap.id in best:
                    best_kept.add(snap.id)
                decisions[snap.id] = Decision(snap, False, f"among the {label}")
            else:
                decisions[snap.id] = Decision(snap, True, _count_reason(policy))
    notes: list[str] = []
    project_of = {s.id: s.project for s in sessions}
    for project, policy in sorted(policies.projects.items()):
        if policy.disk_budget_bytes is not None:
            scope = [
                d for d in decisions.values() if project_of.get(d.snapshot.session_id) == project
            ]
            _apply_budget(
                scope, policy.disk_budget_bytes, f"project {project}", decisions, best_kept, notes
            )
    budget = policies.default.disk_budget_bytes
    if budget is not None:
        _apply_budget(list(decisions.values()), budget, "all projects", decisions, best_kept, notes)
    return Plan([decisions[snap.id] for snap in snapshots], notes)


def _protection(snap: SnapshotFacts, latest: set[int]) -> str | None:
    if snap.pinned:
        return "pinned"
    if snap.forked_from:
        return "a session was forked from it"
    if snap.id in latest:
        return "latest of a live session"
    if snap.writing:
        return "still being written"
    if snap.damaged:
        return "damaged: left for you to inspect"
    return None


def _count_reason(policy: Policy) -> str:
    parts = []
    if policy.keep_last is not None:
        parts.append(f"last {policy.keep_last}")
    if policy.keep_best is not None:
        parts.append(f"best {policy.keep_best} by {policy.best_metric}")
    return "not among the " + " / ".join(parts)


def _apply_budget(
    scope: list[Decision],
    budget: int,
    label: str,
    decisions: dict[int, Decision],
    best_kept: set[int],
    notes: list[str],
) -> None:
    current = [decisions[d.snapshot.id] for d in scope]
    total = sum(d.snapshot.bytes for d in current if not d.delete)
    if total <= budget:
        return
    candidates = sorted(
        (d for d in current if not d.delete and not d.protected),
        key=lambda d: (d.snapshot.id in best_kept, _recency(d.snapshot)),
    )
    for decision in candidates:
        if total <= budget:
            break
        snap = decision.snapshot
        decisions[snap.id] = Decision(snap, True, f"over the disk budget of {label}")
        total -= snap.bytes
    if total > budget:
        notes.append(
            f"{label}: {total / GIB:.2f} GiB kept, over the budget of {budget / GIB:.2f} GiB "
            "(only protected snapshots are left)"
        )


# --- config -----------------------------------------------------------------------------------


def _count(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: {key} must be a whole number >= 0, got {value!r}")
    return value


def _positive(where: str, key: str, value: Any, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        relation = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{where}: {key} must be {relation}, got {value!r}")
    return float(value)


def _policy(
    where: str, table: dict[str, Any], base: Policy, directions: Directions = NO_OVERRIDES
) -> Policy:
    unknown = sorted(set(table) - set(GC_KEYS))
    if unknown:
        valid = GC_KEYS if where == "[gc]" else POLICY_KEYS  # a project table: policies only
        raise ConfigError(
            f"{where}: unknown setting {unknown[0]!r}{did_you_mean(unknown[0], valid)}; "
            f"valid: {', '.join(valid)}"
        )
    policy = base
    if "keep_last" in table:
        policy = replace(policy, keep_last=_count(where, "keep_last", table["keep_last"]))
    if "keep_best" in table:
        policy = replace(policy, keep_best=_count(where, "keep_best", table["keep_best"]))
    if "best_metric" in table:
        text = table["best_metric"]
        if not isinstance(text, str):
            raise ConfigError(f"{where}: best_metric must be a metric name, got {text!r}")
        try:
            selector = parse_selector(f"best:{text}", directions)
        except SpecError as exc:
            raise ConfigError(
                f"{where}: best_metric {text!r}: use NAME, NAME:min or NAME:max"
            ) from exc
        policy = replace(policy, best_metric=selector.metric, maximize=selector.maximize)
    if "finished_days" in table:
        days = _positive(where, "finished_days", table["finished_days"], allow_zero=True)
        policy = replace(policy, finished_days=days)
    if "disk_budget_gb" in table:
        gib = _positive(where, "disk_budget_gb", table["disk_budget_gb"], allow_zero=False)
        policy = replace(policy, disk_budget_bytes=int(gib * GIB))
    if policy.keep_best is not None and policy.best_metric is None:
        raise ConfigError(f"{where}: keep_best needs best_metric")
    return policy


def policies_from(data: dict[str, Any]) -> Policies:
    """The ``[gc]`` table of a config (see the module docstring); ``best_metric`` without
    ``:min``/``:max`` takes its direction from the rule and the config's ``[metrics]``."""
    directions = metric_directions(data)
    table = data.get("gc", {})
    if not isinstance(table, dict):
        raise ConfigError("[gc] must be a table")
    projects_raw = table.get("project", {})
    if not isinstance(projects_raw, dict):
        raise ConfigError("[gc.project.NAME] must be tables")
    default = _policy("[gc]", table, Policy(), directions)
    projects: dict[str, Policy] = {}
    for project, overrides in projects_raw.items():
        where = f"[gc.project.{project}]"
        if not isinstance(overrides, dict) or "project" in overrides or "log_file" in overrides:
            raise ConfigError(f"{where} must be a table of {', '.join(POLICY_KEYS)}")
        base = replace(default, disk_budget_bytes=None)
        projects[project] = _policy(where, overrides, base, directions)
    log_file = table.get("log_file")
    if log_file is not None and not isinstance(log_file, str):
        raise ConfigError(f"[gc]: log_file must be a path, got {log_file!r}")
    return Policies(
        default=default,
        projects=projects,
        log_file=Path(log_file).expanduser() if log_file else None,
    )


def load_policies(path: Path) -> Policies:
    if not path.is_file():
        return Policies()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    return policies_from(data)


__all__ = [
    "Decision",
    "Plan",
    "Policies",
    "Policy",
    "SessionFacts",
    "SnapshotFacts",
    "best_of",
    "load_policies",
    "plan",
    "policies_from",
]
