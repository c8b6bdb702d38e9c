"""The pyslurm backend's pure parts: the version check that decides whether pyslurm may be
used at all, and the mapping of pyslurm job objects (attribute names as in pyslurm 25.11's
pyslurm.db.Job / pyslurm.Job) to the records sync works with. That pyslurm itself drives a
real Slurm is NOT shown here: see tests/integration/test_backend_contract.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nsml_hpc.backends.pyslurm_backend import record_from_job, version_problem
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
        assert problem in found


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
