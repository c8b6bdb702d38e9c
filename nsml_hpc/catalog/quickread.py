"""The login node's fast path: ``ps`` and ``show`` read a SQLite catalog with the standard
library's ``sqlite3``, read-only, without importing SQLAlchemy or SQLModel (which alone take
longer to import than ``ps`` may take in all).

:func:`open_quick` gives a :class:`QuickReader` only when nothing is unusual: a SQLite URL
naming an existing file that is readable and writable on a local disk, holding exactly the
schema revision this module was written for (:data:`REVISION`, tests/catalog/test_quickread.py
keeps it at the migrations' head). Anything else (PostgreSQL, another revision, a catalog on a
network file system, a URL with options, a database error) gives None, and so does any
question the reader cannot answer exactly (a session name it does not find at once, an
ambiguous one, a sweep it does not see): it raises :class:`Fallback`, and the caller asks the
full catalog, which answers or says what is wrong. A slower answer, never a different one.

The reader only fetches rows; every rule that makes them into what ``ps`` and ``show`` print
is :mod:`nsml_hpc.sessions.views`' (the same for both paths). Rows are
:class:`types.SimpleNamespace` objects with the catalog models' attribute names.
"""

from __future__ import annotations

import getpass
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from nsml_hpc.catalog.filesystem import mount_of_path
from nsml_hpc.catalog.hparam_events import TAKEN
from nsml_hpc.catalog.names import parse_session_ref
from nsml_hpc.errors import NsmlError
from nsml_hpc.job.layout import METRICS_FILE
from nsml_hpc.runfiles.idle import IdleState
from nsml_hpc.runfiles.scrape import stored_event_fields

REVISION = "0006_retired_number"  # the alembic revision whose tables these queries read
PREPARING = "PREPARING"
TASK_EVENTS = ("started", "task_started", "task_ended")  # nsml_hpc.sessions.nodes.TASK_EVENTS


class Fallback(Exception):
    """The fast path cannot answer this exactly: ask the full catalog."""


def _namespace(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> SimpleNamespace:
    names = [column[0] for column in cursor.description]
    return SimpleNamespace(**dict(zip(names, row, strict=True)))


def sqlite_path(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (None for anything else)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    database = url[len(prefix) :]
    if not database or database == ":memory:":
        return None
    return Path(database).expanduser()


def open_quick(url: str) -> QuickReader | None:
    """A reader for ``url`` when the fast path can serve it exactly, else None."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return None
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        return None  # the full path says what is wrong with it
    mount = mount_of_path(path)
    if mount is not None and mount.is_network:
        return None  # the journal mode is decided (and noted) by the full path
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error:
        return None
    try:
        found = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        conn.close()
        return None
    if found != [(REVISION,)]:
        conn.close()
        return None
    conn.row_factory = _namespace
    logging.getLogger(__name__).info("catalog sqlite:///%s (read-only, sqlite3)", path)
    return QuickReader(conn)


# The session columns a sync reads or writes (the sync's side of the watch list)
_SYNCED_SESSION_COLUMNS = (
    "name",
    "owner",
    "cluster",
    "state",
    "reason",
    "exit_code",
    "run_dir",
    "gpus",
    "created_at",
    "submitted_at",
    "started_at",
    "ended_at",
    "elapsed_s",
    "last_step",
    "last_metrics_json",
    "metric_count",
    "malformed_lines",
    "updated_at",
)


def _marks(ids: Sequence[Any]) -> str:
    return ",".join("?" * len(ids))


class QuickReader:
    """:class:`nsml_hpc.sessions.views.ReadSource` over a SQLite catalog, read-only."""

    def __init__(self, conn: sqlite3.Connection, user: str | None = None) -> None:
        self.conn = conn
        self._user = user or getpass.getuser()

    @property
    def user(self) -> str:
        return self._user

    def close(self) -> None:
        self.conn.close()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise Fallback(str(exc)) from exc

    def _by_session(
        self, table: str, session_ids: Sequence[int], order: str
    ) -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {session_id: [] for session_id in session_ids}
        if not session_ids:
            return found
        for row in self._all(
            f"SELECT * FROM {table} WHERE session_id IN ({_marks(session_ids)}) ORDER BY {order}",
            session_ids,
        ):
            found[row.session_id].append(row)
        return found

    # --- ps ---------------------------------------------------------------------------------

    def list_sessions(
        self, *, project: str | None, cluster: str | None, limit: int | None, owner: str | None
    ) -> Sequence[Any]:
        where: list[str] = ["state != ?"]
        params: list[Any] = [PREPARING]
        for column, value in (("owner", owner), ("project", project), ("cluster", cluster)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT * FROM session WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self._all(sql, params)

    def sweep_members(self, sweep: str) -> Sequence[Any]:
        project, _, tail = sweep.rpartition("/")
        word = tail.removeprefix("sweep-")
        if not project or not word.isdigit():
            raise Fallback("not a sweep name")
        head = self._all(
            "SELECT created_at FROM session WHERE project = ? AND number = ? AND owner = ? LIMIT 1",
            (project, int(word), self.user),
        )
        if not head:
            raise Fallback("no such sweep")
        members = self._all(
            "SELECT * FROM session WHERE project = ? AND owner = ? AND created_at = ? "
            "AND state != ? ORDER BY number DESC",
            (project, self.user, head[0].created_at, PREPARING),
        )
        if len(members) < 2 or min(row.number for row in members) != int(word):
            raise Fallback("not plainly a sweep")  # the full path's rule decides
        return members

    def get_session(self, name: str) -> Any:
        try:
            ref = parse_session_ref(name)
        except NsmlError as exc:
            raise Fallback(str(exc)) from exc
        sql = "SELECT * FROM session WHERE project = ? AND number = ? AND state != ?"
        params: list[Any] = [ref.project, ref.number, PREPARING]
        if ref.owner is not None:
            sql += " AND owner = ?"
            params.append(ref.owner)
        rows = self._all(sql + " ORDER BY owner", params)
        mine = [row for row in rows if row.owner == self.user]
        if mine:
            return mine[0]
        if len(rows) == 1:
            return rows[0]
        raise Fallback("not found, or ambiguous")  # the full path says which, and suggests

    def jobs_of(self, session_ids: Sequence[int]) -> dict[int, list[Any]]:
        return self._by_session("job", session_ids, "id")

    def gpu_states(self, session_ids: Sequence[int]) -> dict[int, IdleState]:
        if not session_ids:
            return {}
        return {
            row.session_id: IdleState(
                row.idle_since, row.last_sample_at, row.last_util, row.samples, row.warnings
            )
            for row in self._all(
                f"SELECT * FROM gpu_usage WHERE session_id IN ({_marks(session_ids)})",
                session_ids,
            )
        }

    def requeue_counts(self, session_ids: Sequence[int]) -> dict[int, int]:
        if not session_ids:
            return {}
        rows = self._all(
            "SELECT session_id, max(restart_count) AS restarts, "
            "sum(CASE WHEN outcome = 'requeued' THEN 1 ELSE 0 END) AS ends FROM job_run "
            f"WHERE session_id IN ({_marks(session_ids)}) GROUP BY session_id",
            session_ids,
        )
        return {row.session_id: max(int(row.restarts or 0), int(row.ends or 0)) for row in rows}

    def holds_other_users(self) -> bool:
        return bool(
            self._all(
                "SELECT id FROM session WHERE owner != ? AND state != ? LIMIT 1",
                (self.user, PREPARING),
            )
        )

    def spec_jsons(self, session_ids: Sequence[int]) -> dict[int, str]:
        if not session_ids:
            return {}
        return {
            row.id: row.spec_json
            for row in self._all(
                f"SELECT id, spec_json FROM session WHERE id IN ({_marks(session_ids)})",
                session_ids,
            )
        }

    def task_events(self, session_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:

        found: dict[int, list[dict[str, Any]]] = {session_id: [] for session_id in session_ids}
        if not session_ids:
            return found
        for row in self._all(
            f"SELECT session_id, kind, data_json FROM event WHERE session_id IN "
            f"({_marks(session_ids)}) AND kind IN ({_marks(TASK_EVENTS)}) ORDER BY id",
            [*session_ids, *TASK_EVENTS],
        ):
            found[row.session_id].append({"event": row.kind, **stored_event_fields(row.data_json)})
        return found

    # --- show -------------------------------------------------------------------------------

    def malformed_lines(self, session_id: int) -> int:
        rows = self._all(
            "SELECT malformed FROM scrape_cursor WHERE session_id = ? AND file = ?",
            (session_id, METRICS_FILE),
        )
        return int(rows[0].malformed) if rows else 0

    def allocations(self, jobs: Sequence[Any]) -> dict[str, dict[str, Any]]:
        ids = {job.id: job.job_id for job in jobs if job.id is not None}
        if not ids:
            return {}
        rows = self._all(
            f"SELECT * FROM job_allocation WHERE job_row_id IN ({_marks(list(ids))})", list(ids)
        )
        by_row = {row.job_row_id: row for row in rows}
        return {
            job_id: {
                name: getattr(by_row[row_id], name)
                for name in ("partition", "account", "qos", "gpus", "time_limit", "nodes")
            }
            for row_id, job_id in ids.items()
            if row_id in by_row
        }

    def job_runs(self, session_id: int) -> list[Any]:
        return self._by_session("job_run", [session_id], "started_at, id")[session_id]

    def snapshots(self, session_id: int) -> list[Any]:
        rows = self._all(
            "SELECT * FROM snapshot WHERE session_id = ? AND deleting = 0 ORDER BY created_at, id",
            (session_id,),
        )
        for row in rows:
            row.pinned, row.deleting = bool(row.pinned), bool(row.deleting)
        return rows

    def lineage(self, session_id: int) -> Any:
        rows = self._all("SELECT * FROM lineage WHERE child_session_id = ?", (session_id,))
        return rows[0] if rows else None

    def children(self, session_id: int) -> list[tuple[str, str]]:
        rows = self._all(
            "SELECT session.name AS name, lineage.parent_tag AS tag FROM lineage "
            "JOIN session ON session.id = lineage.child_session_id "
            "WHERE lineage.parent_session_id = ? ORDER BY session.id",
            (session_id,),
        )
        return [(row.name, row.tag) for row in rows]

    def superseded_count(self, session_id: int) -> int:
        rows = self._all(
            "SELECT count(*) AS n FROM metric_point AS p WHERE p.session_id = ? AND EXISTS ("
            "SELECT 1 FROM job_run AS r WHERE r.session_id = p.session_id "
            "AND r.supersede_from_step IS NOT NULL AND p.line >= 0 AND p.line < r.first_line "
            "AND p.step >= r.supersede_from_step)",
            (session_id,),
        )
        return int(rows[0].n)

    def dataset(self, session_id: int) -> Any:
        rows = self._all("SELECT * FROM session_dataset WHERE session_id = ?", (session_id,))
        return rows[0] if rows else None

    def stdout_captures(self, session_ids: Sequence[int]) -> dict[int, str | None]:
        if not session_ids:
            return {}
        return {
            row.session_id: row.pattern
            for row in self._all(
                f"SELECT session_id, pattern FROM stdout_capture WHERE session_id IN "
                f"({_marks(session_ids)})",
                session_ids,
            )
        }

    def hparam_events(self, session_id: int) -> list[Any]:
        return self._all(
            "SELECT * FROM event WHERE session_id = ? AND kind = ? ORDER BY id",
            (session_id, TAKEN),
        )

    def ingest_problems(self, session_id: int) -> list[dict[str, Any]]:
        return [
            {"file": row.file, "line": row.line, "problem": row.problem}
            for row in self._all(
                "SELECT file, line, problem FROM ingest_problem WHERE session_id = ? ORDER BY id",
                (session_id,),
            )
        ]

    def metric_sources(self, session_id: int) -> dict[str, str]:
        rows = self._all(
            "SELECT name, source FROM metric_source WHERE session_id = ?", (session_id,)
        )
        return {row.name: row.source for row in rows}

    def non_finite_count(self, session_id: int) -> int:
        rows = self._all(
            "SELECT count(*) AS n FROM metric_point WHERE session_id = ? AND value IS NULL",
            (session_id,),
        )
        return int(rows[0].n)

    def state_history(self, session_id: int) -> list[Any]:
        return self._all(
            "SELECT * FROM state_change WHERE session_id = ? ORDER BY at, id", (session_id,)
        )

    def events_of(self, session_id: int) -> list[Any]:
        return self._by_session("event", [session_id], "id")[session_id]

    # --- whose sessions ---------------------------------------------------------------------

    def has_sync_work(
        self, *, terminal: Sequence[str], since: float, provisional: str, legacy_lost: str
    ) -> bool:
        """Whether a sync could have anything to do for the caller: a reservation, a session
        not ended, one that ended since ``since``, an unconfirmed end, an old LOST."""
        where, params = self._sync_work(terminal, since, provisional, legacy_lost)
        return bool(self._all(f"SELECT id FROM session WHERE {where} LIMIT 1", params))

    def _sync_work(
        self, terminal: Sequence[str], since: float, provisional: str, legacy_lost: str
    ) -> tuple[str, list[Any]]:
        """The WHERE clause (and its parameters) of the caller's sessions a sync looks at."""
        return (
            f"owner = ? AND (state NOT IN ({_marks(terminal)}) OR ended_at >= ? "
            "OR substr(reason, 1, ?) = ? OR (state = 'LOST' AND reason = ?))",
            [self.user, *terminal, since, len(provisional), provisional, legacy_lost],
        )

    def sync_fingerprint(
        self, *, terminal: Sequence[str], since: float, provisional: str, legacy_lost: str
    ) -> str:
        """A digest of every catalog row a sync of the caller reads or writes for the sessions
        it looks at (those of :meth:`has_sync_work`; reservations among them), and of the
        caller's Slurm clocks and poll claims: equal digests, nothing in the catalog changed
        that could make a sync do something else (:mod:`nsml_hpc.catalog.watchlist`)."""
        import hashlib

        where, params = self._sync_work(terminal, since, provisional, legacy_lost)
        digest = hashlib.sha256()

        def add(sql: str, values: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
            try:
                cursor = self.conn.cursor()
                cursor.row_factory = None
                rows: list[tuple[Any, ...]] = cursor.execute(sql, tuple(values)).fetchall()
            except sqlite3.Error as exc:
                raise Fallback(str(exc)) from exc
            digest.update(repr((sql, rows)).encode())
            return rows

        # (not the memo, hyperparameters or spec: the user's to edit, never a sync's to read)
        sessions = add(
            f"SELECT id, {', '.join(_SYNCED_SESSION_COLUMNS)} FROM session WHERE {where} "
            "ORDER BY id",
            params,
        )
        ids = ",".join(str(int(row[0])) for row in sessions)  # id first, by name
        mine = f"session_id IN ({ids})"
        for sql in (
            f"SELECT * FROM job WHERE {mine} ORDER BY id",
            # every write moves an offset or a time forward: sums and counts show it
            'SELECT count(*), total("offset"), total(lines), total(malformed), '
            f"total(updated_at), max(updated_at) FROM scrape_cursor WHERE {mine}",
            f"SELECT * FROM gpu_usage WHERE {mine} ORDER BY session_id",
            f"SELECT * FROM stdout_capture WHERE {mine} ORDER BY session_id",
            f"SELECT * FROM snapshot_scan WHERE {mine} ORDER BY session_id",
            "SELECT session_id, count(*), max(id), sum(deleting) FROM snapshot "
            f"WHERE {mine} GROUP BY session_id ORDER BY session_id",
            "SELECT session_id, count(*), max(snapshot_id) FROM found_checkpoint "
            f"WHERE {mine} GROUP BY session_id ORDER BY session_id",
            f"SELECT count(*), max(id), total(session_id) FROM event WHERE {mine}",
            f"SELECT * FROM job_run WHERE {mine} ORDER BY id",
        ):
            if ids:
                add(sql)
        add("SELECT * FROM slurm_clock WHERE user = ? ORDER BY cluster", [self.user])
        add("SELECT * FROM cluster_poll WHERE user = ? ORDER BY cluster", [self.user])
        return digest.hexdigest()

    def catalog_users(self) -> list[str]:
        rows = self._all("SELECT DISTINCT owner FROM session WHERE state != ?", (PREPARING,))
        return sorted(str(row.owner) for row in rows)
