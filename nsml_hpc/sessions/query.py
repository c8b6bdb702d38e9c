"""The session table as a windowed query: filter, sort and group in SQL, fetch one page.

A table of 10,000 sessions never loads 10,000 rows: the view asks for the total (or the
per-project counts when grouped) and then for the page of rows around what is on screen.
"Last" and "best" of the key metric come from the metric summary table, so sorting by them
costs a join, not an aggregation over millions of points.

Filter syntax (all terms must match; case-insensitive):

    mnist           the text anywhere in name, memo, state, pending reason, cluster or user
    state:run,pend  state starting with any of the comma-separated values
    project:mnist   project (also ``cluster:``, ``user:``) starting with the value
    name:3  memo:lr names / memos containing the value
    -state:completed  !memo:bad   a leading ``-`` or ``!`` negates a term
    "two words"     quotes keep words together
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import and_, false, func, literal, not_, or_, select
from sqlalchemy.sql import ColumnElement, Select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.summary_models import MetricSummary
from nsml_hpc.job.direction import NO_OVERRIDES, Directions
from nsml_hpc.sessions.views import SessionRow, elapsed_expression, session_row, with_nodes
from nsml_hpc.slurm.states import SessionState

SortColumn = Literal["created", "name", "cluster", "state", "gpus", "elapsed", "last", "best"]
SORT_COLUMNS: tuple[SortColumn, ...] = (
    "created",
    "name",
    "cluster",
    "state",
    "gpus",
    "elapsed",
    "last",
    "best",
)
FILTER_FIELDS = ("state", "project", "cluster", "user", "name", "memo")
_PREFIX_FIELDS = frozenset({"state", "project", "cluster", "user"})


@dataclass(frozen=True)
class FilterTerm:
    field: str | None  # None: free text
    values: tuple[str, ...]
    negated: bool = False


def parse_filter(text: str) -> list[FilterTerm]:
    """Terms of the filter syntax above (pure; never raises)."""
    try:
        tokens = shlex.split(text)
    except ValueError:  # an unbalanced quote while typing
        tokens = text.replace('"', " ").replace("'", " ").split()
    terms: list[FilterTerm] = []
    for token in tokens:
        negated = len(token) > 1 and token[0] in "-!"
        if negated:
            token = token[1:]
        key, sep, value = token.partition(":")
        if sep and key.lower() in FILTER_FIELDS:
            values = tuple(item for item in value.split(",") if item)
            if values:
                terms.append(FilterTerm(key.lower(), values, negated))
            continue
        if token:
            terms.append(FilterTerm(None, (token,), negated))
    return terms


@dataclass(frozen=True)
class SessionQuery:
    """What the session table shows: filter, sort, grouping and the key metric."""

    filter_text: str = ""
    sort: SortColumn = "created"
    descending: bool = True
    group_by_project: bool = False
    key_metric: str | None = None
    directions: Directions = NO_OVERRIDES  # which way "best" is (the config's [metrics])

    def sorted_by(self, column: SortColumn, *, toggle: bool = False) -> SessionQuery:
        """Sorted by ``column``: in its natural direction, or (``toggle`` on the column it
        is sorted by already) the other way round."""
        if toggle and column == self.sort:
            return replace(self, descending=not self.descending)
        descending = default_descending(column, self.key_metric, self.directions)
        return replace(self, sort=column, descending=descending)


def default_descending(
    column: SortColumn, key_metric: str | None, directions: Directions = NO_OVERRIDES
) -> bool:
    """The natural first direction of a column: newest, longest, most GPUs, best first."""
    if column in ("last", "best"):
        return key_metric is not None and directions.goal(key_metric) == "max"
    return column in ("created", "gpus", "elapsed")


_S = SessionRecord.__table__.c  # type: ignore[attr-defined]
_M = MetricSummary.__table__.c  # type: ignore[attr-defined]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    return column.ilike(f"%{_escape_like(text)}%", escape="\\")  # type: ignore[no-any-return]


def _starts(column: Any, text: str) -> ColumnElement[bool]:
    return column.ilike(f"{_escape_like(text)}%", escape="\\")  # type: ignore[no-any-return]


def _term_condition(term: FilterTerm) -> ColumnElement[bool]:
    if term.field is None:
        text = term.values[0]
        condition: ColumnElement[bool] = or_(
            *(
                _contains(column, text)
                for column in (_S.name, _S.memo, _S.state, _S.reason, _S.cluster, _S.owner)
            )
        )
    else:
        column = _S["owner" if term.field == "user" else term.field]  # user: whose session
        match = _starts if term.field in _PREFIX_FIELDS else _contains
        condition = or_(*(match(column, value) for value in term.values))
    if term.negated:
        # NULL reasons/memos must count as "does not contain"
        return not_(func.coalesce(condition, false()))
    return condition


def _where(query: SessionQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [_S.state != SessionState.PREPARING]
    conditions.extend(_term_condition(term) for term in parse_filter(query.filter_text))
    return conditions


def _best_column(query: SessionQuery) -> Any:
    if query.key_metric is None:
        return literal(None)
    return _M.min_value if query.directions.goal(query.key_metric) == "min" else _M.max_value


def _best_step_column(query: SessionQuery) -> Any:
    if query.key_metric is None:
        return literal(None)
    return _M.min_step if query.directions.goal(query.key_metric) == "min" else _M.max_step


def _order(query: SessionQuery, now: float) -> list[Any]:
    def direction(column: Any) -> Any:
        return column.desc() if query.descending else column.asc()

    elapsed = elapsed_expression(_S.state, _S.elapsed_s, _S.started_at, now)
    keys: dict[str, list[Any]] = {
        "created": [direction(_S.created_at), direction(_S.id)],
        "name": [direction(_S.project), direction(_S.number)],
        "cluster": [direction(_S.cluster), _S.created_at.desc()],
        "state": [direction(_S.state), _S.created_at.desc()],
        "gpus": [direction(_S.gpus), _S.created_at.desc()],
        "elapsed": [direction(elapsed).nulls_last(), _S.created_at.desc()],
        "last": [direction(_M.last_value).nulls_last(), _S.created_at.desc()],
        "best": [direction(_best_column(query)).nulls_last(), _S.created_at.desc()],
    }
    order = keys[query.sort]
    if query.group_by_project:
        order = [_S.project.asc(), *order]
    return [*order, _S.id.desc()]


def _joined(query: SessionQuery) -> Any:
    session_table = SessionRecord.__table__  # type: ignore[attr-defined]
    summary_table = MetricSummary.__table__  # type: ignore[attr-defined]
    on = and_(
        _M.session_id == _S.id,
        _M.name == query.key_metric if query.key_metric is not None else false(),
    )
    return session_table.outerjoin(summary_table, on)


def count_sessions(catalog: Catalog, query: SessionQuery) -> int:
    statement = select(func.count()).select_from(SessionRecord.__table__).where(*_where(query))  # type: ignore[attr-defined]
    with catalog.session() as db:
        return int(db.execute(statement).scalar() or 0)


def project_counts(catalog: Catalog, query: SessionQuery) -> list[tuple[str, int]]:
    """(project, matching sessions) in project order: the groups of a grouped table."""
    statement = (
        select(_S.project, func.count())
        .where(*_where(query))
        .group_by(_S.project)
        .order_by(_S.project.asc())
    )
    with catalog.session() as db:
        return [(project, int(count)) for project, count in db.execute(statement).all()]


def _page_statement(query: SessionQuery, now: float) -> Select[Any]:
    return (
        select(
            _S.id,
            _S.name,
            _S.project,
            _S.cluster,
            _S.user,
            _S.owner,
            _S.state,
            _S.reason,
            _S.exit_code,
            _S.gpus,
            _S.elapsed_s,
            _S.started_at,
            _S.last_step,
            _S.last_metrics_json,
            _S.memo,
            _S.created_at,
            _M.last_value.label("key_last"),
            _best_column(query).label("key_best"),
            _best_step_column(query).label("key_best_step"),
        )
        .select_from(_joined(query))
        .where(*_where(query))
        .order_by(*_order(query, now))
    )


def session_page(
    catalog: Catalog, query: SessionQuery, offset: int, limit: int, *, now: float
) -> list[SessionRow]:
    """Rows ``offset`` .. ``offset + limit`` of the table in its current order."""
    from nsml_hpc.catalog.sessions import holds_other_users

    statement = _page_statement(query, now).offset(max(offset, 0)).limit(max(limit, 0))
    with catalog.session() as db:
        rows = db.execute(statement).all()
    shared = holds_other_users(catalog)
    page = [
        session_row(
            row,
            now,
            key_last=row.key_last,
            key_best=row.key_best,
            key_best_step=row.key_best_step,
            shared=shared,
        )
        for row in rows
    ]
    return with_nodes(catalog, page)


def matching_names(catalog: Catalog, query: SessionQuery) -> list[str]:
    """Every session name the filter matches (for "select all"), as the table shows them."""
    from nsml_hpc.catalog.sessions import holds_other_users

    statement = select(_S.owner, _S.name).where(*_where(query)).order_by(_S.created_at.desc())
    with catalog.session() as db:
        rows = db.execute(statement).all()
    shared = holds_other_users(catalog)
    return [f"{owner}/{name}" if shared else name for owner, name in rows]


__all__ = [
    "FILTER_FIELDS",
    "SORT_COLUMNS",
    "FilterTerm",
    "SessionQuery",
    "count_sessions",
    "default_descending",
    "matching_names",
    "parse_filter",
    "project_counts",
    "session_clusters",
    "session_page",
]


def session_clusters(catalog: Catalog) -> list[str]:
    """Clusters that sessions in the catalog ran on, sorted."""
    statement = select(_S.cluster).where(_S.state != SessionState.PREPARING).distinct()
    with catalog.session() as db:
        return sorted(row[0] for row in db.execute(statement).all())
