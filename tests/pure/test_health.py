"""Cluster health from sync reports, and the sync loop's backoff."""

from __future__ import annotations

from nsml_hpc.catalog.models import ClusterPoll
from nsml_hpc.clusters.health import Backoff, something_changed, unreachable_clusters
from nsml_hpc.sync.run import SyncReport


def test_errors_of_our_sync_make_a_cluster_unreachable() -> None:
    report = SyncReport(queried=["local"], errors={"local": "sacct failed"})
    assert unreachable_clusters(report) == {"local": "sacct failed"}


def test_a_cluster_another_process_just_asked_shares_that_answer() -> None:
    report = SyncReport(skipped_by_floor=["a", "b"])
    polls = {
        "a": ClusterPoll(
            cluster="a", user="me", last_ok=False, last_error="sacct: connection refused"
        ),
        "b": ClusterPoll(cluster="b", user="me", last_ok=True),
    }
    assert unreachable_clusters(report, polls) == {"a": "sacct: connection refused"}
    assert unreachable_clusters(SyncReport(queried=["a"]), polls) == {}


def test_backoff_doubles_while_nothing_changes_and_resets_on_change() -> None:
    backoff = Backoff(interval=5.0, maximum=60.0)
    quiet = SyncReport()
    assert backoff.next_wait(5.0, quiet) == 10.0
    assert backoff.next_wait(40.0, quiet) == 60.0
    assert backoff.next_wait(60.0, SyncReport(new_points=3)) == 5.0
    assert backoff.next_wait(60.0, SyncReport(errors={"x": "down"})) == 5.0
    assert backoff.next_wait(60.0, None) == 5.0
    assert something_changed(SyncReport(state_changes=1))
    assert not something_changed(quiet)
