"""Is a cluster answering? Read from the last sync (and, when another process synced inside
the poll floor, from the shared poll record), plus the pacing of a repeating sync.

Pure functions, used by the TUI's status line and sync loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nsml_hpc.catalog.models import ClusterPoll
from nsml_hpc.sync.run import SyncReport


def unreachable_clusters(
    report: SyncReport, polls: Mapping[str, ClusterPoll] | None = None
) -> dict[str, str]:
    """Clusters whose last query failed, with the error.

    A cluster skipped by the floor was asked by another process moments ago: its recorded
    result counts as ours, so every open TUI shows the same health.
    """
    down = dict(report.errors)
    for cluster in report.skipped_by_floor:
        poll = (polls or {}).get(cluster)
        if poll is not None and not poll.last_ok and cluster not in down:
            down[cluster] = poll.last_error or "the last query failed"
    return down


def something_changed(report: SyncReport) -> bool:
    return bool(report.state_changes or report.new_points or report.new_events)


@dataclass(frozen=True)
class Backoff:
    """Sync again after ``interval``; double it (up to ``maximum``) while nothing changes."""

    interval: float
    maximum: float

    def next_wait(self, current: float, report: SyncReport | None) -> float:
        if report is None or something_changed(report) or report.errors:
            return self.interval
        return min(max(current, self.interval) * 2, self.maximum)
