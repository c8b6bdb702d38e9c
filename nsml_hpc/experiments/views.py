"""Compare, leaderboard and plot: read models over the catalog for the experiment commands
(the TUI's compare screen uses :mod:`nsml_hpc.experiments.compare` underneath too)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from nsml_hpc.catalog.downsample import finite_points, minmax
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import MetricPoint, SessionRecord
from nsml_hpc.catalog.series import metric_series
from nsml_hpc.catalog.sessions import (
    get_session,
    holds_other_users,
    list_sessions,
    session_namer,
)
from nsml_hpc.catalog.summaries import metric_names, summaries_of
from nsml_hpc.errors import NotFoundError, SpecError
from nsml_hpc.experiments.compare import compare_sessions
from nsml_hpc.job.direction import NO_OVERRIDES, Directions, Goal, split_goal
from nsml_hpc.sessions.views import elapsed
from nsml_hpc.suggest import did_you_mean

if TYPE_CHECKING:
    import pandas


def sessions_of(
    catalog: Catalog, names: Sequence[str], project: str | None, owner: str | None = None
) -> list[str]:
    """The sessions to compare: those named, or every session of ``project`` (``owner``'s
    only, when given), oldest first."""
    if names and project:
        raise SpecError("name sessions or give --project, not both")
    if project:
        namer = session_namer(catalog)
        found = [
            namer(record)
            for record in reversed(list_sessions(catalog, project=project, owner=owner))
        ]
        if not found:
            raise NotFoundError(f"no sessions in project {project!r}")
        return found
    if not names:
        raise SpecError("name the sessions to compare, or give --project")
    return list(names)


def comparison_frame(
    catalog: Catalog,
    names: Sequence[str],
    metrics: Sequence[str] = (),
    directions: Directions = NO_OVERRIDES,
) -> pandas.DataFrame:
    """One row per session: state, runtime, the hyperparameters that DIFFER, and for each
    metric its last value, best value and the step of the best."""
    import pandas

    comparison = compare_sessions(catalog, names, directions)
    chosen = list(metrics) or sorted(comparison.metrics)
    unknown = [metric for metric in chosen if metric not in comparison.metrics]
    if unknown:
        hints = "".join(did_you_mean(metric, comparison.metrics) for metric in unknown)
        raise NotFoundError(f"no session here reported {', '.join(unknown)}{hints}")
    now = time.time()
    shared = holds_other_users(catalog)
    rows: list[dict[str, Any]] = []
    for name in comparison.sessions:
        record = get_session(catalog, name)
        row: dict[str, Any] = {
            "session": name,
            **({"user": record.owner} if shared else {}),
            "state": record.state,
            "runtime_s": elapsed(record, now),
        }
        for key, values in comparison.differing.items():
            row[key] = values.get(name)
        for metric in chosen:
            stat = comparison.metrics[metric].get(name)
            row[f"{metric}.last"] = stat.last if stat else None
            row[f"{metric}.best"] = stat.best if stat else None
            row[f"{metric}.best_step"] = stat.best_step if stat else None
        rows.append(row)
    return pandas.DataFrame(rows).set_index("session")


@dataclass(frozen=True)
class Standing:
    rank: int
    session: str
    best: float
    best_step: int | None
    last: float | None
    state: str
    hyperparameters: str
    user: str = ""
    dataset: str | None = None  # NAME:VERSION the session read (leaderboard --dataset)


def ranking_goal(metric: str, flag: Goal | None, directions: Directions) -> tuple[str, Goal]:
    """The metric a leaderboard ranks by, and which way: ``--max``/``--min`` (``flag``), a
    ``NAME:min|max`` suffix, else the direction rule with the ``[metrics]`` overrides."""
    name, suffix = split_goal(metric)
    if flag is not None and suffix is not None and flag != suffix:
        raise SpecError(f"--{flag} contradicts {metric!r}: give the direction once")
    return name, flag or suffix or directions.goal(name)


def leaderboard(
    catalog: Catalog,
    project: str,
    metric: str,
    goal: Goal,
    top: int | None = None,
    owner: str | None = None,
) -> list[Standing]:
    """Sessions of ``project`` (every user's, or ``owner``'s) ranked by their best ``metric``
    (``goal``: min or max): on a shared catalog, the team's leaderboard."""
    records = list_sessions(catalog, project=project, owner=owner)
    if not records:
        raise NotFoundError(f"no sessions in project {project!r}")
    return _ranked(catalog, records, metric, goal, top, f"project {project!r}")


def dataset_leaderboard(
    catalog: Catalog,
    dataset: str,
    metric: str,
    goal: Goal,
    *,
    top: int | None = None,
    project: str | None = None,
) -> list[Standing]:
    """Sessions that read dataset ``NAME`` (or ``NAME:VERSION``), of every project (or of
    ``project``), ranked by their best ``metric``; each standing names the version read."""
    from nsml_hpc.catalog.datasets import sessions_on_dataset
    from nsml_hpc.job.spec import parse_dataset_ref

    name, version = parse_dataset_ref(dataset)
    links = {link.session_id: link for link in sessions_on_dataset(catalog, name, version)}
    records = [record for record in list_sessions(catalog, project=project) if record.id in links]
    if not records:
        where = f" in project {project!r}" if project else ""
        raise NotFoundError(f"no session{where} read dataset {dataset}")
    versions = {sid: f"{link.name}:{link.version}" for sid, link in links.items()}
    return _ranked(catalog, records, metric, goal, top, f"dataset {dataset}", versions)


def _ranked(
    catalog: Catalog,
    records: list[SessionRecord],
    metric: str,
    goal: Goal,
    top: int | None,
    label: str,
    datasets: dict[int, str] | None = None,
) -> list[Standing]:
    namer = session_namer(catalog)
    ids = {record.id: record for record in records if record.id is not None}
    summaries = summaries_of(catalog, list(ids), [metric])
    entries = []
    for (session_id, _), summary in summaries.items():
        best, step = (
            (summary.min_value, summary.min_step)
            if goal == "min"
            else (summary.max_value, summary.max_step)
        )
        if best is not None:
            entries.append((best, step, summary.last_value, ids[session_id]))
    if not entries:
        known = metric_names(catalog, list(ids))
        raise NotFoundError(
            f"no session of {label} reported {metric!r}{did_you_mean(metric, known)}"
        )
    entries.sort(key=lambda entry: entry[0], reverse=goal == "max")
    return [
        Standing(
            rank=rank,
            session=namer(record),
            user=record.owner,
            best=best,
            best_step=step,
            last=last,
            state=record.state,
            hyperparameters=record.hyperparameters_json,
            dataset=(datasets or {}).get(record.id or -1),
        )
        for rank, (best, step, last, record) in enumerate(entries[:top] if top else entries, 1)
    ]


@dataclass(frozen=True)
class Curve:
    session: str
    xs: list[float]
    ys: list[float]
    points: int


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` points (1: unchanged)."""
    if window <= 1:
        return values
    out: list[float] = []
    total = 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        out.append(total / min(index + 1, window))
    return out


def _time_series(catalog: Catalog, record: SessionRecord, metric: str, buckets: int) -> Curve:
    with catalog.session() as db:
        rows = db.exec(
            select(MetricPoint.time, MetricPoint.value)
            .where(MetricPoint.session_id == record.id, MetricPoint.name == metric)
            .order_by(col(MetricPoint.time))
        ).all()
    start = record.started_at or (rows[0][0] if rows and rows[0][0] is not None else 0.0)
    xs, ys = finite_points(
        [None if when is None else when - start for when, _ in rows], [value for _, value in rows]
    )
    small_x, small_y = minmax(xs, ys, buckets)
    return Curve(record.name, small_x, small_y, len(rows))  # relabelled by curves()


def curves(
    catalog: Catalog,
    names: Sequence[str],
    metric: str,
    *,
    x: str = "step",
    buckets: int = 200,
    smoothing: int = 1,
) -> list[Curve]:
    """One downsampled curve per session (min/max per bucket keeps the spikes)."""
    if x not in ("step", "time"):
        raise SpecError("--x is step or time")
    found: list[Curve] = []
    ids: list[int] = []
    for name in names:
        record = get_session(catalog, name)
        assert record.id is not None
        ids.append(record.id)
        if x == "step":
            series = metric_series(catalog, record.id, metric, buckets)
            curve = Curve(name, series.xs, series.ys, series.points)
        else:
            curve = _time_series(catalog, record, metric, buckets)
        if curve.xs:
            found.append(Curve(name, curve.xs, smooth(curve.ys, smoothing), curve.points))
    if not found:
        known = metric_names(catalog, ids)
        raise NotFoundError(f"no session here reported {metric!r}{did_you_mean(metric, known)}")
    return found


def hyperparameter_marks(
    catalog: Catalog, names: Sequence[str], x: str = "step"
) -> list[tuple[float, str]]:
    """Where each session's job took a hyperparameter change, for a plot's x axis (``step``,
    or ``time``: seconds since the start): ``(x, "mnist/3: lr -> 0.01")``."""
    from nsml_hpc.catalog.hparam_events import taken_changes

    records = [get_session(catalog, name) for name in names]
    changes = taken_changes(catalog, [record.id for record in records if record.id is not None])
    marks: list[tuple[float, str]] = []
    for record in records:
        for change in changes.get(record.id or -1, []):
            if x == "step":
                where = float(change.step) if change.step is not None else None
            else:
                started = record.started_at
                where = change.at - started if change.at is not None and started else None
            if where is None:
                continue
            moved = ", ".join(f"{k} -> {v}" for k, v in sorted(change.changes.items()))
            marks.append((where, f"{record.name}: {moved}"))
    return marks
