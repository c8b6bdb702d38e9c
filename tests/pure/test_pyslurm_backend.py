"""The pyslurm backend's pure parts: the version check that decides whether pyslurm may be
used at all, and the mapping of pyslurm job objects (attribute names as in pyslurm 25.11's
pyslurm.db.Job / pyslurm.Job) to the records sync works with. That pyslurm itself drives a
real Slurm is NOT shown here: see tests/slurm/test_backend_contract.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nsml_hpc.backends.pyslurm_backend import PyslurmBackend, record_from_job, version_problem
from nsml_hpc.errors import BackendError
from nsml_hpc.slurm.states import SessionState


@pytest.mark.parametrize(
    ("pyslurm", "slurm", "problem"),
    [
        ("25.11.2", "25.11.0", None),
        ("24.11.0", "24.11.5", None),
        (
            "25.11.2",
            "22.05.8",
            "pyslurm 25.11.2 is built for Slurm 25.11, but this cluster runs Slurm 22.05.8",
        ),
        (None, "22.05.8", "pyslurm is not installed"),
        ("25.11.2", None, "no running Slurm was found"),
    ],
)
def test_pyslurm_is_used_only_with_the_slurm_release_it_was_built_for(pyslurm, slurm, problem):
    found = version_problem(pyslurm, slurm)
    assert (found is None) == (problem is None)
    if problem:
        assert found is not None and problem in found


def test_a_finished_accounting_job_maps_to_a_record():
    job = SimpleNamespace(
        id=42,
        state="COMPLETED",
        state_reason="None",
        exit_code=0,
        exit_code_signal=0,
        submit_time=1_700_000_000,
        start_time=1_700_000_005,
        end_time=1_700_000_065,
        elapsed_time=60,
        nodelist="vm",
    )
    record = record_from_job(job)
    assert (record.job_id, record.state, record.reason, record.exit_code) == (
        "42",
        SessionState.COMPLETED,
        None,
        0,
    )
    assert (record.started_at, record.ended_at, record.elapsed_s, record.node_list) == (
        1_700_000_005.0,
        1_700_000_065.0,
        60.0,
        "vm",
    )


def test_a_pending_queue_job_keeps_its_reason_and_has_no_times():
    job = SimpleNamespace(
        id=7,
        state="PENDING",
        state_reason="Resources",
        exit_code=None,
        exit_code_signal=None,
        submit_time=1_700_000_000,
        start_time=None,
        end_time=None,
        allocated_nodes=None,
    )
    record = record_from_job(job)
    assert (record.state, record.reason, record.started_at, record.node_list) == (
        SessionState.PENDING,
        "Resources",
        None,
        None,
    )


class _RPCError(Exception):
    pass


def _fake_pyslurm() -> SimpleNamespace:
    """pyslurm 25.11's object shapes (Nodes/Partitions/Jobs ``load()`` dicts) for the mapping."""
    node = SimpleNamespace(
        name="g01",
        partitions=["gpu", "long"],
        state="MIXED",
        allocated_cpus=8,
        total_cpus=64,
        configured_gres={"gpu:a100": 4},
        allocated_gres={"gpu:a100": 3},
    )
    partitions = {
        "gpu": SimpleNamespace(name="gpu", is_default=True),
        "long": SimpleNamespace(name="long", is_default=False),
    }
    jobs = {
        5: SimpleNamespace(
            id=5,
            user_name="alice",
            state="RUNNING",
            state_reason="None",
            partition="gpu",
            gres_per_node={"gpu": 2},
            run_time=3725,
            time_limit=60,
            num_nodes=1,
            submit_time=1_700_000_000,
            start_time=1_700_000_010,
            nodelist="g01",
            name="train",
        ),
        6: SimpleNamespace(id=6, user_name="bob", state="PENDING"),
    }
    return SimpleNamespace(
        RPCError=_RPCError,
        Nodes=SimpleNamespace(load=lambda: {"g01": node}),
        Partitions=SimpleNamespace(load=lambda: partitions),
        Jobs=SimpleNamespace(load=lambda: jobs),
    )


def test_pyslurm_nodes_partitions_and_queue_map_to_the_shared_records():
    backend = PyslurmBackend("hpc", module=_fake_pyslurm())  # type: ignore[arg-type]
    nodes = backend.cluster_gpus()
    assert [(n.partition, n.is_default, n.gpus_total, n.gpus_used) for n in nodes] == [
        ("gpu", True, 4, 3),
        ("long", False, 4, 3),
    ]
    assert nodes[0].gpu_types == ("a100",)
    assert backend.partitions() == ["gpu", "long"]
    (job,) = backend.user_queue("alice")
    assert (job.job_id, job.state, job.gpus, job.time_used, job.time_limit) == (
        "5",
        "RUNNING",
        2,
        "1:02:05",
        "1:00:00",
    )


def test_pyslurm_cannot_estimate_a_start_and_says_which_backend_can():
    backend = PyslurmBackend("hpc", module=_fake_pyslurm())  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="use the local or ssh backend"):
        backend.estimate_start(["--gres=gpu:1"], "gpu")
    with pytest.raises(BackendError, match="MaxArraySize"):
        backend.max_array_size()  # this pyslurm has no slurmctld.Config
