"""Dataset versions and the sessions that read them; which sessions capture their printed
metrics. The rows a session links to are written in the transaction that reserves its number
(:func:`link_session_rows`), so a session never exists without them, and a dataset version
being deleted can never gain a new reader: the reservation and ``dataset rm``'s claim both
lock the version's row, and each refuses what the other has done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from nsml_hpc.catalog.dataset_models import (
    DatasetVersionRecord,
    SessionDatasetRecord,
    StdoutCaptureRecord,
)
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.errors import NotFoundError, SpecError
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState


@dataclass(frozen=True)
class VersionFacts:
    """One version as the cluster's manifest describes it (what a scan stores)."""

    name: str
    version: int
    path: str
    bytes: int
    file_count: int
    digest: str
    created_at: float
    created_by: str
    source: str


# --- versions -----------------------------------------------------------------------------------


def store_versions(
    catalog: Catalog, cluster: str, name: str | None, found: Sequence[VersionFacts]
) -> None:
    """Make the catalog's rows of ``cluster`` (of dataset ``name``, or of all) match what the
    cluster holds: new versions added, changed ones updated, vanished ones dropped (unless a
    deletion claimed them, or a session still names them)."""
    with catalog.session() as db:
        query = select(DatasetVersionRecord).where(DatasetVersionRecord.cluster == cluster)
        if name is not None:
            query = query.where(DatasetVersionRecord.name == name)
        rows = {(row.name, row.version): row for row in db.exec(query).all()}
        for facts in found:
            row = rows.pop((facts.name, facts.version), None)
            if row is None:
                row = DatasetVersionRecord(
                    cluster=cluster, name=facts.name, version=facts.version, path=facts.path
                )
            row.path, row.bytes, row.file_count = facts.path, facts.bytes, facts.file_count
            row.digest, row.created_at = facts.digest, facts.created_at
            row.created_by, row.source = facts.created_by, facts.source
            db.add(row)
        for row in rows.values():
            if not row.deleting:
                db.delete(row)


def dataset_versions(
    catalog: Catalog, *, cluster: str | None = None, name: str | None = None
) -> list[DatasetVersionRecord]:
    """Versions (not being deleted), by cluster, name and version."""
    query = select(DatasetVersionRecord).where(col(DatasetVersionRecord.deleting).is_(False))
    if cluster is not None:
        query = query.where(DatasetVersionRecord.cluster == cluster)
    if name is not None:
        query = query.where(DatasetVersionRecord.name == name)
    query = query.order_by(
        col(DatasetVersionRecord.cluster),
        col(DatasetVersionRecord.name),
        col(DatasetVersionRecord.version),
    )
    with catalog.session() as db:
        return list(db.exec(query).all())


def get_version(catalog: Catalog, cluster: str, name: str, version: int) -> DatasetVersionRecord:
    with catalog.session() as db:
        row = db.exec(
            select(DatasetVersionRecord).where(
                DatasetVersionRecord.cluster == cluster,
                DatasetVersionRecord.name == name,
                DatasetVersionRecord.version == version,
            )
        ).first()
    if row is None or row.deleting:
        raise NotFoundError(f"cluster {cluster} has no dataset {name}:{version}")
    return row


# --- sessions that read a version ---------------------------------------------------------------

LIVE_READER_STATES = [
    state for state in SessionState if state not in TERMINAL_STATES
]  # PREPARING included: a session being submitted reads it too


def readers(
    catalog: Catalog, cluster: str, name: str, version: int | None = None
) -> list[tuple[str, str, int]]:
    """(session name, state, version) of the sessions that read ``name`` (``version``)."""
    query = (
        select(SessionRecord.name, SessionRecord.state, SessionDatasetRecord.version)
        .join(SessionRecord, col(SessionRecord.id) == col(SessionDatasetRecord.session_id))
        .where(SessionDatasetRecord.cluster == cluster, SessionDatasetRecord.name == name)
        .order_by(col(SessionRecord.id))
    )
    if version is not None:
        query = query.where(SessionDatasetRecord.version == version)
    with catalog.session() as db:
        return [(session, state, used) for session, state, used in db.exec(query).all()]


def sessions_on_dataset(
    catalog: Catalog, name: str, version: int | None = None
) -> list[SessionDatasetRecord]:
    """The dataset links of every session that read ``name`` (``version``), any cluster."""
    query = select(SessionDatasetRecord).where(SessionDatasetRecord.name == name)
    if version is not None:
        query = query.where(SessionDatasetRecord.version == version)
    with catalog.session() as db:
        return list(db.exec(query).all())


def dataset_of(catalog: Catalog, session_id: int) -> SessionDatasetRecord | None:
    with catalog.session() as db:
        return db.get(SessionDatasetRecord, session_id)


def _locked_version(
    db: Session, cluster: str, name: str, version: int
) -> DatasetVersionRecord | None:
    return db.exec(
        select(DatasetVersionRecord)
        .where(
            DatasetVersionRecord.cluster == cluster,
            DatasetVersionRecord.name == name,
            DatasetVersionRecord.version == version,
        )
        .with_for_update()
    ).first()


def claim_version_deletion(catalog: Catalog, row_id: int) -> list[str]:
    """Take the right to delete a version: refused (the live readers are returned) while a
    session that is not finished reads it. An empty list: the claim is ours."""
    with catalog.session() as db:
        row = db.exec(
            select(DatasetVersionRecord)
            .where(col(DatasetVersionRecord.id) == row_id)
            .with_for_update()
        ).first()
        if row is None or row.deleting:
            raise NotFoundError("the dataset version is gone or already being deleted")
        live = db.exec(
            select(SessionRecord.name)
            .join(
                SessionDatasetRecord,
                col(SessionRecord.id) == col(SessionDatasetRecord.session_id),
            )
            .where(
                SessionDatasetRecord.cluster == row.cluster,
                SessionDatasetRecord.name == row.name,
                SessionDatasetRecord.version == row.version,
                col(SessionRecord.state).in_(LIVE_READER_STATES),
            )
            .order_by(col(SessionRecord.id))
        ).all()
        if live:
            return list(live)
        db.execute(
            update(DatasetVersionRecord)
            .where(col(DatasetVersionRecord.id) == row_id)
            .values(deleting=True)
        )
    return []


def release_version_claim(catalog: Catalog, row_id: int) -> None:
    with catalog.session() as db:
        db.execute(
            update(DatasetVersionRecord)
            .where(col(DatasetVersionRecord.id) == row_id)
            .values(deleting=False)
        )


def drop_version(catalog: Catalog, row_id: int) -> None:
    with catalog.session() as db:
        row = db.get(DatasetVersionRecord, row_id)
        if row is not None:
            db.delete(row)


def claimed_versions(catalog: Catalog, cluster: str) -> list[DatasetVersionRecord]:
    with catalog.session() as db:
        return list(
            db.exec(
                select(DatasetVersionRecord).where(
                    DatasetVersionRecord.cluster == cluster,
                    col(DatasetVersionRecord.deleting).is_(True),
                )
            ).all()
        )


# --- links written with a session's reservation -------------------------------------------------


def link_session_rows(db: Session, sessions: Sequence[tuple[int, SessionSpec]]) -> None:
    """In the reserving transaction: the dataset version each session reads and whether its
    printed metrics are captured, one multi-row INSERT per table (a sweep's thousand
    sessions share one dataset version, checked once). A version that ``dataset rm`` has
    claimed is refused."""
    checked: set[tuple[str, str, int]] = set()
    datasets: list[dict[str, object]] = []
    captures: list[dict[str, object]] = []
    for session_id, spec in sessions:
        use = spec.dataset
        if use is not None:
            if use.version is None or use.path is None:
                raise SpecError(f"dataset {use.name} was not resolved to a version before submit")
            key = (spec.cluster, use.name, use.version)
            if key not in checked:
                row = _locked_version(db, *key)
                if row is not None and row.deleting:
                    raise SpecError(f"dataset {use.name}:{use.version} is being deleted")
                checked.add(key)
            datasets.append(
                {
                    "session_id": session_id,
                    "cluster": spec.cluster,
                    "name": use.name,
                    "version": use.version,
                    "path": use.path,
                    "staged": use.stage,
                }
            )
        if spec.captures_stdout:
            captures.append({"session_id": session_id, "pattern": spec.stdout_pattern})
    if datasets:
        db.execute(insert(SessionDatasetRecord), datasets)
    if captures:
        db.execute(insert(StdoutCaptureRecord), captures)


def stdout_captures(catalog: Catalog, session_ids: Sequence[int]) -> dict[int, str | None]:
    """Sessions of ``session_ids`` that capture their printed metrics -> their pattern."""
    if not session_ids:
        return {}
    with catalog.session() as db:
        rows = db.exec(
            select(StdoutCaptureRecord).where(
                col(StdoutCaptureRecord.session_id).in_(list(session_ids))
            )
        ).all()
    return {row.session_id: row.pattern for row in rows}


__all__ = [
    "VersionFacts",
    "claim_version_deletion",
    "claimed_versions",
    "dataset_of",
    "dataset_versions",
    "drop_version",
    "get_version",
    "link_session_rows",
    "readers",
    "release_version_claim",
    "sessions_on_dataset",
    "stdout_captures",
    "store_versions",
]
