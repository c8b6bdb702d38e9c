"""Automatic GPU placement, NSML-style, without touching the scheduler: ask Slurm when the
job would start in each eligible partition (``sbatch --test-only``) and take the earliest."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nsml_hpc.slurm.timefmt import parse_timestamp

_WILL_START = re.compile(
    r"Job (?P<job>\d+) to start at (?P<when>\S+) using (?P<cpus>\d+) processors on nodes "
    r"(?P<nodes>\S+) in partition (?P<partition>\S+)"
)


@dataclass(frozen=True)
class StartEstimate:
    partition: str
    start_at: float | None  # None: Slurm refused the job there
    nodes: str | None = None
    refusal: str | None = None


def parse_test_only(partition: str, output: str) -> StartEstimate:
    """What ``sbatch --test-only`` printed (on stderr) for one partition."""
    match = _WILL_START.search(output)
    if match:
        try:
            when = parse_timestamp(match.group("when"))
        except ValueError as exc:
            return StartEstimate(partition, None, refusal=str(exc))
        return StartEstimate(partition, when, nodes=match.group("nodes"))
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    reason = lines[-1].removeprefix("allocation failure: ") if lines else "no answer"
    reason = reason.removeprefix("sbatch: error: ")
    return StartEstimate(partition, None, refusal=reason)


def choose_partition(estimates: list[StartEstimate]) -> StartEstimate | None:
    """The partition where the job starts first (ties: the first one listed)."""
    possible = [e for e in estimates if e.start_at is not None]
    if not possible:
        return None
    return min(possible, key=lambda e: e.start_at or 0.0)


def explain(choice: StartEstimate, estimates: list[StartEstimate], now: float) -> str:
    """One line saying why: ``partition gpu: starts now (debug: in 2h 10m; big: refused …)``."""

    def when(estimate: StartEstimate) -> str:
        if estimate.start_at is None:
            return f"refused ({estimate.refusal})"
        wait = estimate.start_at - now
        if wait <= 60:
            return "starts now"
        hours, minutes = divmod(int(wait // 60), 60)
        return f"in {hours}h {minutes:02d}m" if hours else f"in {minutes}m"

    others = "; ".join(f"{e.partition}: {when(e)}" for e in estimates if e is not choice)
    return f"partition {choice.partition}: {when(choice)}" + (f" ({others})" if others else "")
