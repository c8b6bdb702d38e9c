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

import bisect
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import and_, case, false, func, literal, not_, or_, select
from sqlalchemy.sql import ColumnElement, Select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.summary_models import MetricSummary
from nsml_hpc.job.direction import NO_OVERRIDES, Directions
from nsml_hpc.sessions.views import format_state
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


def default_descending(
    column: SortColumn, key_metric: str | None, directions: Directions = NO_OVERRIDES
) -> bool:
    """The natural first direction of a column: newest, longest, most GPUs, best first."""
    if column in ("last", "best"):
        return key_metric is not None and directions.goal(key_metric) == "max"
    return column in ("created", "gpus", "elapsed")


@dataclass(frozen=True)
class ListedSession:
    """One row of the session table."""

    id: int
    name: str
    project: str
    cluster: str
    user: str
    state: str
    reason: str | None
    exit_code: int | None
    gpus: int
    elapsed_s: float | None
    last_step: int | None
    memo: str
    created_at: float
    key_last: float | None = None
    key_best: float | None = None
    key_best_step: int | None = None
    started_at: float | None = None

    @property
    def state_text(self) -> str:
        return format_state(self.state, self.reason, self.exit_code)

    def elapsed_at(self, now: float) -> float | None:
        """Elapsed time, still advancing with the clock while the session runs."""
        if self.state == SessionState.RUNNING and self.started_at:
            return max(self.elapsed_s or 0.0, now - self.started_at)
        return self.elapsed_s


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
                for column in (_S.name, _S.memo, _S.state, _S.reason, _S.cluster, _S.user)
            )
        )
    else:
        column = _S[term.field]
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

    elapsed = case(
        (
            and_(_S.state == SessionState.RUNNING, _S.started_at.is_not(None)),
            literal(now) - _S.started_at,
        ),
        else_=_S.elapsed_s,
    )
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
            _S.state,
            _S.reason,
            _S.exit_code,
            _S.gpus,
            _S.elapsed_s,
            _S.started_at,
            _S.last_step,
            _S.memo,
            _S.created_at,
            _M.last_value,
            _best_column(query),
            _best_step_column(query),
        )
        .select_from(_joined(query))
        .where(*_where(query))
        .order_by(*_order(query, now))
    )


def session_page(
    catalog: Catalog, query: SessionQuery, offset: int, limit: int, *, now: float
) -> list[ListedSession]:
    """Rows ``offset`` .. ``offset + limit`` of the table in its current order."""
    statement = _page_statement(query, now).offset(max(offset, 0)).limit(max(limit, 0))
    with catalog.session() as db:
        rows = db.execute(statement).all()
    listed: list[ListedSession] = []
    for row in rows:
        (
            session_id,
            name,
            project,
            cluster,
            user,
            state,
            reason,
            exit_code,
            gpus,
            elapsed_s,
            started_at,
            last_step,
            memo,
            created_at,
            last_value,
            best_value,
            best_step,
        ) = row
        if state == SessionState.RUNNING and started_at:
            elapsed_s = max(elapsed_s or 0.0, now - started_at)
        listed.append(
            ListedSession(
                id=session_id,
                name=name,
                project=project,
                cluster=cluster,
                user=user,
                state=state,
                reason=reason,
                exit_code=exit_code,
                gpus=gpus,
                elapsed_s=elapsed_s,
                last_step=last_step,
                memo=memo,
                created_at=created_at,
                key_last=last_value,
                key_best=best_value,
                key_best_step=best_step,
                started_at=started_at,
            )
        )
    return listed


def matching_names(catalog: Catalog, query: SessionQuery) -> list[str]:
    """Every session name the filter matches (for "select all")."""
    statement = select(_S.name).where(*_where(query)).order_by(_S.created_at.desc())
    with catalog.session() as db:
        return [row[0] for row in db.execute(statement).all()]


@dataclass(frozen=True)
class RowSlot:
    """What one line of a grouped table holds: a project header or the n-th session."""

    kind: Literal["header", "session"]
    project: str
    count: int = 0  # sessions in the group (headers)
    offset: int = 0  # position of the session in the query's order (sessions)


@dataclass(frozen=True)
class GroupLayout:
    """Maps table lines to group headers and sessions when grouped by project.

    Every group has a header line; a collapsed group shows only its header. ``offset`` of a
    session is its position in the SQL order (project first), so a page query fetches it.
    """

    groups: tuple[tuple[str, int], ...]
    collapsed: frozenset[str] = frozenset()
    _starts: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    _offsets: list[int] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        line = offset = 0
        for project, count in self.groups:
            self._starts.append(line)
            self._offsets.append(offset)
            line += 1 + (0 if project in self.collapsed else count)
            offset += count
        self._starts.append(line)

    @property
    def total_lines(self) -> int:
        return self._starts[-1] if self._starts else 0

    def slot(self, line: int) -> RowSlot | None:
        if line < 0 or line >= self.total_lines:
            return None
        index = bisect.bisect_right(self._starts, line) - 1
        project, count = self.groups[index]
        within = line - self._starts[index]
        if within == 0:
            return RowSlot("header", project, count=count)
        return RowSlot("session", project, offset=self._offsets[index] + within - 1)

    def header_line(self, project: str) -> int | None:
        for index, (name, _count) in enumerate(self.groups):
            if name == project:
                return self._starts[index]
        return None


def visible_offsets(layout: GroupLayout | None, lines: Sequence[int]) -> list[int]:
    """Session offsets shown on ``lines`` (ungrouped: the line is the offset)."""
    if layout is None:
        return [line for line in lines if line >= 0]
    offsets = []
    for line in lines:
        slot = layout.slot(line)
        if slot is not None and slot.kind == "session":
            offsets.append(slot.offset)
    return offsets


__all__ = [
    "FILTER_FIELDS",
    "SORT_COLUMNS",
    "FilterTerm",
    "GroupLayout",
    "ListedSession",
    "RowSlot",
    "SessionQuery",
    "count_sessions",
    "default_descending",
    "matching_names",
    "parse_filter",
    "project_counts",
    "session_clusters",
    "session_page",
    "visible_offsets",
]


def session_clusters(catalog: Catalog) -> list[str]:
    """Clusters that sessions in the catalog ran on, sorted."""
    statement = select(_S.cluster).where(_S.state != SessionState.PREPARING).distinct()
    with catalog.session() as db:
        return sorted(row[0] for row in db.execute(statement).all())
