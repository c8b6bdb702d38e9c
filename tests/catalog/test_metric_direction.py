"""One direction rule everywhere: for ``val/fid`` (lower is better) the leaderboard, compare,
the session table's "best" column, ``load``/``fork``'s ``best:`` selector and gc's keep-best
all pick the same session or snapshot; with ``[metrics] fid = "max"`` they all flip together.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, store_metric_batch
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.errors import SpecError
from nsml_hpc.experiments.compare import compare_sessions
from nsml_hpc.experiments.views import leaderboard, ranking_goal
from nsml_hpc.job.direction import NO_OVERRIDES, Directions
from nsml_hpc.job.snapshot_format import Manifest, choose, parse_selector
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.runfiles.scrape import parse_metric_lines
from nsml_hpc.sessions.query import SessionQuery, default_descending, session_page
from nsml_hpc.snapshots.retention import SnapshotFacts, best_of, policies_from

METRIC = "val/fid"
FIDS = {"gan/1": [40.0, 31.0], "gan/2": [25.0, 12.5, 14.0], "gan/3": [60.0, 55.0]}
LOWEST, HIGHEST = "gan/2", "gan/3"
FLIPPED = Directions.of({"fid": "max"})


@pytest.fixture
def gan(catalog_url: str, tmp_path: Path) -> Iterator[Catalog]:
    catalog = open_catalog(catalog_url)
    for index, (name, values) in enumerate(FIDS.items()):
        record = reserve_session(
            catalog,
            spec=SessionSpec(project="gan", script="train.py"),
            user="alice",
            run_dir_for=lambda n: str(tmp_path / "gan" / str(n)),
            is_free=lambda n: True,
            now=1000.0 + index,
        )
        assert record.id is not None and record.name == name
        mark_submitted(catalog, record.id, job_id=str(10 + index), cluster="local", now=1001.0)
        lines = [{"step": step, "time": 2000.0, METRIC: v} for step, v in enumerate(values)]
        chunk = "".join(json.dumps(line) + "\n" for line in lines).encode()
        batch = parse_metric_lines(chunk, 0, record.id)
        store_metric_batch(catalog, record.id, batch, CursorState(), len(chunk), 3000.0)
    yield catalog
    catalog.close()


def _first_by_every_ranking(catalog: Catalog, directions: Directions) -> set[str]:
    """The best session by leaderboard, compare and the session table; the best snapshot by
    the ``best:`` selector and gc's keep-best (one snapshot per session, named after it)."""
    metric, goal = ranking_goal(METRIC, None, directions)
    board = leaderboard(catalog, "gan", metric, goal)[0].session
    compared = compare_sessions(catalog, list(FIDS), directions).best_session(METRIC)
    assert compared is not None
    query = SessionQuery(
        key_metric=METRIC,
        sort="best",
        descending=default_descending("best", METRIC, directions),
        directions=directions,
    )
    table = session_page(catalog, query, 0, 10, now=4000.0)[0].name
    manifests = [
        Manifest(tag=name.replace("/", "-"), step=0, metrics={METRIC: best}, files=(), created=1.0)
        for name, best in _bests(goal).items()
    ]
    chosen = choose(manifests, parse_selector(f"best:{METRIC}", directions), "gan").tag
    config = {"gc": {"keep_best": 1, "best_metric": METRIC}, "metrics": directions.as_dict()}
    policy = policies_from(config).default
    facts = [
        SnapshotFacts(i, 1, m.tag, 0, 1.0, 1, dict(m.metrics)) for i, m in enumerate(manifests)
    ]
    kept = best_of(facts, policy)[0].tag
    return {board, compared, table, chosen.replace("-", "/"), kept.replace("-", "/")}


def _bests(goal: str) -> dict[str, float]:
    pick = min if goal == "min" else max
    return {name: pick(values) for name, values in FIDS.items()}


def test_every_ranking_picks_the_lowest_fid(gan: Catalog) -> None:
    assert _first_by_every_ranking(gan, NO_OVERRIDES) == {LOWEST}


def test_a_metrics_override_flips_every_ranking_together(gan: Catalog) -> None:
    assert _first_by_every_ranking(gan, FLIPPED) == {HIGHEST}


def test_the_leaderboard_takes_the_direction_from_a_flag_or_a_suffix(gan: Catalog) -> None:
    assert ranking_goal("val/fid:max", None, NO_OVERRIDES) == ("val/fid", "max")
    assert ranking_goal("val/fid", "max", NO_OVERRIDES) == ("val/fid", "max")
    assert ranking_goal("val/fid", None, FLIPPED) == ("val/fid", "max")
    assert ranking_goal("val/fid:min", "min", FLIPPED) == ("val/fid", "min")
    with pytest.raises(SpecError, match="--max contradicts 'val/fid:min'"):
        ranking_goal("val/fid:min", "max", NO_OVERRIDES)
    board = leaderboard(gan, "gan", *ranking_goal("val/fid:max", None, NO_OVERRIDES))
    assert [standing.session for standing in board] == ["gan/3", "gan/1", "gan/2"]
