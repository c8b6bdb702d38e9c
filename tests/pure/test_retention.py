"""The retention plan on random snapshot sets, session states, lineages and policies:
protected snapshots are never deleted, and every other one follows the policy exactly (each
rule restated here independently of nsml_hpc.snapshots.retention)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsml_hpc.errors import ConfigError
from nsml_hpc.snapshots.retention import (
    DAY,
    GIB,
    Policies,
    Policy,
    SessionFacts,
    SnapshotFacts,
    load_policies,
    plan,
    policies_from,
)

NOW = 1_000_000.0
PROJECTS = ["a", "b"]


World = tuple[list[SnapshotFacts], list[SessionFacts], Policies]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    sessions = []
    for index in range(draw(st.integers(1, 4))):
        live = draw(st.booleans())
        ended = None if live else NOW - draw(st.floats(0, 60)) * DAY
        sessions.append(
            SessionFacts(index + 1, f"p/{index + 1}", draw(st.sampled_from(PROJECTS)), live, ended)
        )
    snapshots = []
    next_id = 1
    for session in sessions:
        for _ in range(draw(st.integers(0, 7))):
            metric = draw(st.one_of(st.none(), st.floats(-5, 5), st.sampled_from([0.0, 1.0])))
            snapshots.append(
                SnapshotFacts(
                    id=next_id,
                    session_id=session.id,
                    tag=f"t{next_id}",
                    step=draw(st.one_of(st.none(), st.integers(0, 50))),
                    created=float(draw(st.integers(0, 20))),  # ties on purpose
                    bytes=draw(st.integers(0, 10)) * GIB // 4,
                    metrics={} if metric is None else {"val_loss": metric},
                    pinned=draw(st.booleans()) and draw(st.booleans()),
                    forked_from=draw(st.booleans()) and draw(st.booleans()),
                    damaged=draw(st.integers(0, 9)) == 0,
                )
            )
            next_id += 1

    def policy(budget: bool) -> Policy:
        keep_best = draw(st.one_of(st.none(), st.integers(0, 3)))
        return Policy(
            keep_last=draw(st.one_of(st.none(), st.integers(0, 4))),
            keep_best=keep_best,
            best_metric="val_loss" if keep_best is not None or draw(st.booleans()) else None,
            maximize=draw(st.booleans()),
            finished_days=draw(st.one_of(st.none(), st.floats(0, 40))),
            disk_budget_bytes=draw(
                st.one_of(st.none(), st.integers(0, 12).map(lambda g: g * GIB // 2))
            )
            if budget
            else None,
        )

    default = policy(budget=True)
    projects = {name: policy(budget=True) for name in PROJECTS if draw(st.booleans())}
    return snapshots, sessions, Policies(default=default, projects=projects)


def _protected(snap: SnapshotFacts, snaps: list[SnapshotFacts], session: SessionFacts) -> bool:
    if snap.pinned or snap.forked_from or snap.damaged:
        return True
    intact = [s for s in snaps if not s.damaged]
    if not session.live or not intact:
        return False
    newest = max(
        intact, key=lambda s: (s.created, s.step if s.step is not None else -1, s.tag, s.id)
    )
    return snap.id == newest.id


def _kept_by_counts(snap: SnapshotFacts, snaps: list[SnapshotFacts], policy: Policy) -> bool:
    ranked = [s for s in snaps if not s.damaged]
    by_recency = sorted(
        ranked, key=lambda s: (s.created, s.step if s.step is not None else -1, s.tag, s.id)
    )
    keep = policy.keep_last or 0
    newest = {s.id for s in by_recency[max(0, len(by_recency) - keep) :]} if keep else set()
    scored = [(s, value) for s in ranked if (value := s.metrics.get("val_loss")) is not None]
    sign = 1 if policy.maximize else -1
    best_order = sorted(
        scored,
        key=lambda pair: (
            sign * pair[1],
            pair[0].created,
            pair[0].step if pair[0].step is not None else -1,
            pair[0].tag,
            pair[0].id,
        ),
        reverse=True,
    )
    best = {s.id for s, _ in best_order[: policy.keep_best or 0]} if policy.best_metric else set()
    return snap.id in newest or snap.id in best


def _policy_for(policies: Policies, project: str) -> Policy:
    return policies.projects.get(project, policies.default)


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_protected_snapshots_are_never_deleted(world: World) -> None:
    snapshots, sessions, policies = world
    by_session = {s.id: [x for x in snapshots if x.session_id == s.id] for s in sessions}
    result = plan(snapshots, sessions, policies, NOW)
    session_of = {s.id: s for s in sessions}
    for decision in result.decisions:
        snap = decision.snapshot
        if _protected(snap, by_session[snap.session_id], session_of[snap.session_id]):
            assert not decision.delete, decision
            assert decision.protected


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_without_budgets_the_rest_follow_the_policy_exactly(world: World) -> None:
    snapshots, sessions, policies = world
    policies = Policies(
        default=Policy(**{**policies.default.__dict__, "disk_budget_bytes": None}),
        projects={
            name: Policy(**{**p.__dict__, "disk_budget_bytes": None})
            for name, p in policies.projects.items()
        },
    )
    by_session = {s.id: [x for x in snapshots if x.session_id == s.id] for s in sessions}
    session_of = {s.id: s for s in sessions}
    for decision in plan(snapshots, sessions, policies, NOW).decisions:
        snap = decision.snapshot
        session = session_of[snap.session_id]
        snaps = by_session[session.id]
        policy = _policy_for(policies, session.project)
        if _protected(snap, snaps, session):
            expected = False
        elif (
            not session.live
            and session.ended_at is not None
            and policy.finished_days is not None
            and NOW - session.ended_at > policy.finished_days * DAY
        ):
            expected = True
        elif policy.keep_last is None and policy.keep_best is None:
            expected = False
        else:
            expected = not _kept_by_counts(snap, snaps, policy)
        assert decision.delete == expected, (decision, policy)


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_budgets_are_met_with_the_fewest_oldest_unprotected_deletions(world: World) -> None:
    snapshots, sessions, policies = world
    without = Policies(
        default=Policy(**{**policies.default.__dict__, "disk_budget_bytes": None}),
        projects={
            name: Policy(**{**p.__dict__, "disk_budget_bytes": None})
            for name, p in policies.projects.items()
        },
    )
    base = {d.snapshot.id: d for d in plan(snapshots, sessions, without, NOW).decisions}
    result = {d.snapshot.id: d for d in plan(snapshots, sessions, policies, NOW).decisions}
    project_of = {s.id: s.project for s in sessions}
    # Budgets only ever add deletions, and never of protected snapshots.
    for snap_id, decision in result.items():
        if base[snap_id].delete:
            assert decision.delete
        if decision.protected:
            assert not decision.delete
    scopes = [
        (budget, {sid for sid, d in result.items() if project_of[d.snapshot.session_id] == name})
        for name, p in policies.projects.items()
        if (budget := p.disk_budget_bytes) is not None
    ]
    if policies.default.disk_budget_bytes is not None:
        scopes.append((policies.default.disk_budget_bytes, set(result)))
    for budget, scope in scopes:
        kept = [result[sid] for sid in scope if not result[sid].delete]
        total = sum(d.snapshot.bytes for d in kept)
        if total > budget:  # only allowed when nothing deletable is left in the scope
            assert all(d.protected for d in kept)
    for snap_id, decision in result.items():
        if decision.delete and not base[snap_id].delete:
            assert "budget" in decision.reason


def test_a_concrete_plan_reads_as_expected() -> None:
    sessions = [SessionFacts(1, "p/1", "a", live=True, ended_at=None)]
    snaps = [
        SnapshotFacts(i, 1, f"step-{i}", i, float(i), GIB, {"val_loss": abs(i - 3)})
        for i in range(1, 8)
    ]
    policies = Policies(default=Policy(keep_last=2, keep_best=1, best_metric="val_loss"))
    decisions = {d.snapshot.tag: d for d in plan(snaps, sessions, policies, NOW).decisions}
    assert [tag for tag, d in decisions.items() if not d.delete] == ["step-3", "step-6", "step-7"]
    assert decisions["step-7"].reason == "latest of a live session"
    assert decisions["step-1"].reason == "not among the last 2 / best 1 by val_loss"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[gc]\nkeep_last = -1\n", "keep_last must be a whole number >= 0"),
        ("[gc]\nkeep_best = 2\n", "keep_best needs best_metric"),
        ("[gc]\nfinished_days = -3\n", "finished_days must be >= 0"),
        ("[gc]\ndisk_budget_gb = 0\n", "disk_budget_gb must be > 0"),
        ("[gc]\ndisk_budget_gb = -5.5\n", "disk_budget_gb must be > 0"),
        ("[gc]\nkeep_last = true\n", "keep_last must be a whole number"),
        ("[gc]\nkeep_lst = 3\n", "unknown setting 'keep_lst'"),
        ('[gc]\nbest_metric = "acc:up"\n', "use NAME, NAME:min or NAME:max"),
        ("[gc.project.mnist]\nkeep_last = -2\n", "[gc.project.mnist]: keep_last"),
    ],
)
def test_bad_policies_are_one_clear_config_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_policies(path)


def test_project_sections_override_the_global_policy() -> None:
    policies = policies_from(
        {
            "gc": {
                "keep_last": 3,
                "best_metric": "val_acc",
                "disk_budget_gb": 10,
                "project": {"mnist": {"keep_last": 5, "disk_budget_gb": 1}},
            }
        }
    )
    mnist = policies.for_project("mnist")
    other = policies.for_project("cifar")
    assert (mnist.keep_last, mnist.best_metric, mnist.maximize) == (5, "val_acc", True)
    assert mnist.disk_budget_bytes == GIB
    assert (other.keep_last, other.disk_budget_bytes) == (3, None)
    assert policies.default.disk_budget_bytes == 10 * GIB
