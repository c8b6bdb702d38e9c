"""Retention of checkpoints the training code wrote itself (found): a kind of their own, with
the protections of saved snapshots, and files still being written are never deleted."""

from __future__ import annotations

from nsml_hpc.snapshots.retention import Policies, Policy, SessionFacts, SnapshotFacts, plan


def _snap(
    sid: int, tag: str, created: float, *, found: bool = False, **flags: object
) -> SnapshotFacts:
    return SnapshotFacts(
        id=sid,
        session_id=1,
        tag=tag,
        step=None,
        created=created,
        bytes=10,
        found=found,
        **flags,  # type: ignore[arg-type]
    )


def _decisions(snaps: list[SnapshotFacts], live: bool, policy: Policy) -> dict[str, str]:
    session = SessionFacts(id=1, name="p/1", project="p", live=live, ended_at=None if live else 1.0)
    result = plan(snaps, [session], Policies(default=policy), now=100.0)
    return {d.snapshot.tag: ("delete" if d.delete else d.reason) for d in result.decisions}


def test_the_newest_of_each_kind_of_a_live_session_is_kept() -> None:
    snaps = [
        _snap(1, "step-1", 1.0),
        _snap(2, "step-2", 2.0),
        _snap(3, "code/a.pt", 3.0, found=True),
        _snap(4, "code/b.pt", 4.0, found=True),
        _snap(5, "code/c.pt", 5.0, found=True, writing=True, damaged=True),
    ]
    assert _decisions(snaps, True, Policy(keep_last=0)) == {
        "step-1": "delete",
        "step-2": "latest of a live session",
        "code/a.pt": "delete",
        "code/b.pt": "latest of a live session",  # c.pt is still being written
        "code/c.pt": "still being written",
    }


def test_keep_last_counts_each_kind_and_protections_hold() -> None:
    snaps = [
        _snap(1, "step-1", 1.0),
        _snap(2, "code/a.pt", 2.0, found=True, pinned=True),
        _snap(3, "code/b.pt", 3.0, found=True, forked_from=True),
        _snap(4, "code/c.pt", 4.0, found=True),
        _snap(5, "code/d.pt", 5.0, found=True),
    ]
    assert _decisions(snaps, False, Policy(keep_last=1)) == {
        "step-1": "among the newest",
        "code/a.pt": "pinned",
        "code/b.pt": "a session was forked from it",
        "code/c.pt": "delete",
        "code/d.pt": "among the newest",
    }
