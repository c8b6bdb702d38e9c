"""Pending GPU demand parsing (squeue's shape) and plot smoothing."""

from __future__ import annotations

from nsml_hpc.experiments.views import smooth
from nsml_hpc.slurm.demand import Demand, parse_demand


def test_pending_demand_adds_up_per_partition() -> None:
    text = "debug|gres:gpu:2|1\ndebug|gres/gpu:a100:4|2\nsmall,debug|N/A|1\nbroken line\n"
    assert parse_demand(text) == {"debug": Demand(3, 10), "small": Demand(1, 0)}


def test_smoothing_is_a_trailing_moving_average() -> None:
    assert smooth([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert smooth([1.0, 2.0], 1) == [1.0, 2.0]
