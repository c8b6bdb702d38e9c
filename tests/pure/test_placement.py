"""--partition auto: reading sbatch --test-only answers (captured from the sandbox) and
choosing the earliest start."""

from __future__ import annotations

from pathlib import Path

from nsml_hpc.slurm.placement import StartEstimate, choose_partition, explain, parse_test_only

DATA = Path(__file__).resolve().parents[1] / "data"


def test_a_start_estimate_is_read_from_sbatch_test_only() -> None:
    estimate = parse_test_only("debug", (DATA / "sbatch_test_only_ok.txt").read_text())
    assert estimate.partition == "debug" and estimate.nodes == "vm"
    assert estimate.start_at is not None and estimate.refusal is None


def test_a_refusal_keeps_slurms_reason() -> None:
    estimate = parse_test_only("debug", (DATA / "sbatch_test_only_refused.txt").read_text())
    assert estimate.start_at is None
    assert estimate.refusal == "Requested node configuration is not available"


def test_the_earliest_partition_wins_and_the_choice_is_explained() -> None:
    estimates = [
        StartEstimate("busy", 1000.0 + 7800),
        StartEstimate("free", 1000.0),
        StartEstimate("small", None, refusal="Requested node configuration is not available"),
    ]
    choice = choose_partition(estimates)
    assert choice is not None and choice.partition == "free"
    assert explain(choice, estimates, now=1000.0) == (
        "partition free: starts now (busy: in 2h 10m; small: refused "
        "(Requested node configuration is not available))"
    )


def test_no_partition_when_every_one_refuses() -> None:
    assert choose_partition([StartEstimate("a", None, refusal="x")]) is None
