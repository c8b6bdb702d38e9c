"""Comparing sessions: the hyperparameters that differ, and each metric's last and best value
per session (from the metric summaries: no scan over metric points).

Standard library and the catalog only; a pandas frame is one ``to_rows()`` away for callers
that want one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.hparam_events import taken_changes, with_history
from nsml_hpc.catalog.sessions import get_session, session_namer
from nsml_hpc.catalog.summaries import summaries_of
from nsml_hpc.errors import SpecError
from nsml_hpc.job.direction import NO_OVERRIDES, Directions, Goal
from nsml_hpc.job.hparams import HParamValue

MISSING = None  # a hyperparameter a session does not set


@dataclass(frozen=True)
class MetricStat:
    last: float | None
    last_step: int | None
    best: float | None
    best_step: int | None
    points: int


@dataclass(frozen=True)
class Comparison:
    sessions: list[str]
    differing: dict[str, dict[str, HParamValue | None]]  # name -> session -> value
    common: dict[str, HParamValue]  # the same in every session
    metrics: dict[str, dict[str, MetricStat]] = field(default_factory=dict)  # metric -> session
    goals: dict[str, Goal] = field(default_factory=dict)  # every metric in ``metrics``
    session_ids: dict[str, int] = field(default_factory=dict)

    def best_session(self, metric: str) -> str | None:
        """The session with the best value of ``metric`` (by its goal: lowest for losses)."""
        stats = {
            name: stat.best
            for name, stat in self.metrics.get(metric, {}).items()
            if stat.best is not None
        }
        if not stats:
            return None
        pick = min if self.goals[metric] == "min" else max
        return pick(stats, key=lambda name: stats[name])

    def to_rows(self) -> list[dict[str, object]]:
        """One flat row per session: differing hyperparameters, then ``metric.last/best``."""
        rows: list[dict[str, object]] = []
        for session in self.sessions:
            row: dict[str, object] = {"session": session}
            for name, values in self.differing.items():
                row[name] = values.get(session)
            for metric, per_session in self.metrics.items():
                stat = per_session.get(session)
                row[f"{metric}.last"] = stat.last if stat else None
                row[f"{metric}.best"] = stat.best if stat else None
            rows.append(row)
        return rows


def split_hyperparameters(
    by_session: Mapping[str, Mapping[str, HParamValue]],
) -> tuple[dict[str, dict[str, HParamValue | None]], dict[str, HParamValue]]:
    """(differing, common): a name differs if any session lacks it or has another value."""
    names = sorted({name for values in by_session.values() for name in values})
    differing: dict[str, dict[str, HParamValue | None]] = {}
    common: dict[str, HParamValue] = {}
    for name in names:
        values = {session: hparams.get(name, MISSING) for session, hparams in by_session.items()}
        distinct = {json.dumps(value, sort_keys=True) for value in values.values()}
        first = next(iter(values.values()))
        if len(distinct) == 1 and first is not None:
            common[name] = first
        else:
            differing[name] = values
    return differing, common


def compare_sessions(
    catalog: Catalog, names: Sequence[str], directions: Directions = NO_OVERRIDES
) -> Comparison:
    """Hyperparameter differences and per-metric last/best values of ``names`` (best by
    ``directions``: the rule with the config's ``[metrics]``)."""
    if not names:
        raise SpecError("name at least one session to compare")
    namer = session_namer(catalog)  # owner/project/N in a shared catalog: never ambiguous
    records = [get_session(catalog, name) for name in names]
    by_label = {namer(record): record for record in records}
    unique = list(by_label)
    ids = {label: record.id for label, record in by_label.items() if record.id is not None}
    taken = taken_changes(catalog, list(ids.values()))
    hparams = {  # a value changed while the session ran shows its history: 0.1 → 0.01@40
        label: with_history(json.loads(r.hyperparameters_json), taken.get(r.id or -1, []))
        for label, r in by_label.items()
    }
    differing, common = split_hyperparameters(hparams)
    summaries = summaries_of(catalog, list(ids.values()))
    by_id = {session_id: name for name, session_id in ids.items()}
    metrics: dict[str, dict[str, MetricStat]] = {}
    goals: dict[str, Goal] = {}
    for (session_id, metric), summary in sorted(summaries.items(), key=lambda item: item[0][1]):
        goal = goals.setdefault(metric, directions.goal(metric))
        best, best_step = (
            (summary.min_value, summary.min_step)
            if goal == "min"
            else (summary.max_value, summary.max_step)
        )
        metrics.setdefault(metric, {})[by_id[session_id]] = MetricStat(
            last=summary.last_value,
            last_step=summary.last_step,
            best=best,
            best_step=best_step,
            points=summary.points,
        )
    return Comparison(
        sessions=unique,
        differing=differing,
        common=common,
        metrics=metrics,
        goals=goals,
        session_ids=ids,
    )
