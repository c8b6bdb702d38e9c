"""Alembic's migration environment for the catalog.

nsml-hpc runs it itself (:func:`nsml_hpc.catalog.migrations.upgrade`) with an open connection
in ``config.attributes["connection"]``; a developer can also run the ``alembic`` command with
``-x url=sqlite:///path`` (e.g. ``alembic -c nsml_hpc/catalog/migrations/alembic.ini
-x url=... revision --autogenerate -m "..."`` to draft the next revision).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from nsml_hpc.catalog.migrations import target_metadata


def run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata(), render_as_batch=True
        )
        context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("give the catalog: alembic -x url=sqlite:///path ...")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata(), render_as_batch=True)
        context.run_migrations()
    engine.dispose()


if hasattr(context, "config"):  # run by alembic (a plain import, e.g. by a test, runs nothing)
    run()
