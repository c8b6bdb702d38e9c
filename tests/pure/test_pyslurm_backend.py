"""The pyslurm backend's pure parts: the version check that decides whether pyslurm may be
used at all, the mapping of pyslurm's job objects to the records sync works with (attribute
values as pyslurm 22.5.3 gave them on the sandbox's Slurm 22.05), the #SBATCH lines as submit
fields, and failures as one line. That pyslurm itself drives a real Slurm is shown in
tests/slurm/test_backend_contract.py and tests/slurm/test_pyslurm_api.py."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace
from typing import Any

import pytest

from nsml_hpc.backends.pyslurm_errors import error_parts, libslurm_stderr, pyslurm_error
from nsml_hpc.backends.pyslurm_loader import import_problem, version_problem
from nsml_hpc.backends.pyslurm_records import (
    display_id,
    job_ids,
    records_from_job,
    waiting_tasks,
    wanted_records,
)
from nsml_hpc.backends.pyslurm_submit import (
    read_directives,
    sbatch_environment,
    submit_fields,
    warn_signal,
)
from nsml_hpc.errors import BackendError, ConnectionFailed, SubmitRefused
from nsml_hpc.slurm.states import SessionState
from tests.pure.conftest import GOLDEN_DIR


@pytest.mark.parametrize(
    ("pyslurm", "slurm", "problem"),
    [
        ("25.11.2", "25.11.0", None),
        ("24.11.0", "24.11.5", None),
        ("22.5.3", "22.05.8", None),
        (
            "25.11.2",
            "22.05.8",
            "pyslurm 25.11.2 is built for Slurm 25.11, but this cluster runs Slurm 22.05.8",
        ),
        (
            "22.5.3",
            "24.11.1",
            "pyslurm 22.5.3 is built for Slurm 22.5, but this cluster runs Slurm 24.11.1",
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


def test_a_missing_libslurm_names_the_library_and_its_package():
    stderr = (
        "Traceback (most recent call last):\n  ...\n"
        "ImportError: libslurm.so.38: cannot open shared object file: No such file or directory\n"
    )
    problem = import_problem("22.5.3", stderr)
    assert problem.startswith("pyslurm 22.5.3 cannot load libslurm.so.38 (")
    assert "apt-get install libslurm38" in problem
    assert "\n" not in problem


def test_libslurms_fatal_configuration_error_is_quoted_in_one_line():
    stderr = (
        'python: error: Parse error in file /tmp/x/slurm.conf line 1: "garbage line"\n'
        "python: error: ClusterName needs to be specified\n"
        "python: fatal: Unable to process configuration file\n"
    )
    problem = import_problem("22.5.3", stderr)
    assert problem.startswith("libslurm cannot start (Parse error in file /tmp/x/slurm.conf line 1")
    assert "correct the Slurm configuration" in problem and "\n" not in problem


# --- records ------------------------------------------------------------------------------


def _job(**values: Any) -> SimpleNamespace:
    defaults = dict(
        id=42,
        state="COMPLETED",
        state_reason="None",
        exit_code=0,
        exit_code_signal=0,
        submit_time=1_700_000_000,
        start_time=1_700_000_005,
        end_time=1_700_000_065,
        array_id=None,
        array_task_id=None,
        array_tasks_waiting=None,
    )
    return SimpleNamespace(**{**defaults, **values})


def test_a_finished_accounting_job_maps_to_a_record():
    (record,) = records_from_job(_job(elapsed_time=60, nodelist="vm"))
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


def test_an_accounting_job_reads_back_what_slurm_gave_it_as_sacct_does():
    """Values as pyslurm 22.5.3's db.Job gave them for sandbox jobs whose sacct line read
    ``debug|root|normal|365-00:00:00|1`` and ``...|UNLIMITED|1``."""
    job = _job(partition="debug", account="root", qos="normal", time_limit=525600, num_nodes=1)
    (record,) = records_from_job(job, accounting=True)
    assert (record.partition, record.account, record.qos, record.time_limit, record.nodes) == (
        "debug",
        "root",
        "normal",
        "365-00:00:00",
        1,
    )
    assert record.allocation_complete and record.gpus is None  # db.Job has no TRES in 22.5
    (unlimited,) = records_from_job(
        _job(partition="debug", account="root", qos="normal", time_limit=None, num_nodes=1),
        accounting=True,
    )
    assert unlimited.time_limit == "UNLIMITED"


def test_a_pending_accounting_job_reads_as_sacct_prints_it_but_for_its_node_count():
    """pyslurm 22.5.3 on a held job whose sacct line read ``debug|1|...|Partition_Limit``:
    ``num_nodes`` 0 (not started) and ``time_limit`` "PartitionLimit"."""
    job = _job(
        state="PENDING",
        partition="debug",
        account="root",
        qos="normal",
        time_limit="PartitionLimit",
        num_nodes=0,
    )
    (pending,) = records_from_job(job, accounting=True)
    assert (pending.partition, pending.time_limit, pending.allocation_complete) == (
        "debug",
        "Partition_Limit",
        True,
    )
    assert pending.nodes is None  # sacct: 1 (asked for); pyslurm 22.5 gives 0 until it starts


def test_an_accounting_record_without_its_partition_is_incomplete_and_the_queue_gives_none():
    (early,) = records_from_job(
        _job(partition=None, account="root", qos=None, time_limit="PartitionLimit", num_nodes=0),
        accounting=True,
    )
    assert (early.partition, early.time_limit, early.nodes) == (None, None, None)
    assert not early.allocation_complete  # asked again later, as with sacct
    queued = _job(partition="debug", account="root", qos="normal", time_limit=60, num_nodes=1)
    (record,) = records_from_job(queued)
    assert (record.partition, record.time_limit, record.allocation_complete) == (None, None, True)


def test_a_pending_queue_job_keeps_its_reason_and_has_no_times():
    job = _job(
        id=7,
        state="PENDING",
        state_reason="Resources",
        exit_code=None,
        start_time=0,
        end_time=0,
        allocated_nodes=None,
    )
    (record,) = records_from_job(job)
    assert (record.state, record.reason, record.started_at, record.node_list) == (
        SessionState.PENDING,
        "Resources",
        None,
        None,
    )


def test_accountings_none_assigned_is_no_node():
    (record,) = records_from_job(_job(state="PENDING", nodelist="None assigned"))
    assert record.node_list is None


@pytest.mark.parametrize(
    ("text", "tasks"),
    [
        ("2-3", [2, 3]),
        ("2,5-7", [2, 5, 6, 7]),
        ("0-9%2", list(range(10))),
        ("0xC", [2, 3]),  # slurmdbd's bitmap: bits 2 and 3
        ("0x1", [0]),
        ("", []),
    ],
)
def test_waiting_array_tasks_are_read_from_ranges_and_from_slurmdbds_bitmap(text, tasks):
    assert waiting_tasks(text) == tasks


def test_array_tasks_get_sacct_style_ids_and_task_zero_is_not_lost():
    # What pyslurm 22.5.3 gave for array 25 (0-3%2) on the sandbox: task 0 has job id 26 and
    # array_task_id None (pyslurm reads a 0 as "no value"); task 3 kept the array's own id.
    task0 = _job(id=26, array_id=25)
    task1 = _job(id=27, array_id=25, array_task_id=1)
    waiting_db = _job(id=25, state="PENDING", array_id=25, array_tasks_waiting="0xC")
    waiting_ctl = _job(id=25, state="PENDING", array_id=25, array_tasks_waiting="2-3")
    assert job_ids(task0) == ["25_0"]
    assert job_ids(task1) == ["25_1"]
    assert job_ids(waiting_db) == job_ids(waiting_ctl) == ["25_2", "25_3"]
    assert display_id(waiting_ctl) == "25_[2-3]"
    assert display_id(task1) == "25_1"
    assert [r.job_id for r in records_from_job(waiting_db)] == ["25_2", "25_3"]


def test_the_queue_answers_only_for_the_wanted_ids():
    waiting = _job(id=25, array_id=25, array_tasks_waiting="1-2")
    jobs = [_job(id=5), _job(id=26, array_id=25), waiting]
    found = wanted_records(jobs, {"5", "25_0", "25_2", "99"})
    assert sorted(record.job_id for record in found) == ["25_0", "25_2", "5"]


def test_a_state_nsml_hpc_does_not_know_gives_no_record():
    assert records_from_job(_job(state="SOMETHING_NEW")) == []


# --- submit fields ------------------------------------------------------------------------


def test_the_golden_script_becomes_these_submit_fields():
    path = GOLDEN_DIR / "four_gpus.sbatch"
    fields = submit_fields(str(path), path.read_text())
    assert fields == {
        "script": str(path),
        "name": "mnist/7",
        "standard_output": "/shared/runs/alice/mnist/7/slurm-%j.out",
        "working_directory": "/shared/runs/alice/mnist/7",
        "log_files_open_mode": "append",
        "nodes": "1",
        "gres_per_node": "gpu:4",
        "cpus_per_gpu": 8,
        "memory_per_node": "64G",
        "time_limit": "1-00:00:00",
        "partitions": "debug",
        "account": "research",
        "qos": "normal",
        "constraints": "a100|h100",
        "signal": {"signal": signal.SIGUSR2.value, "time": 120, "batch_only": True},
        "is_requeueable": True,
    }


def test_directives_end_at_the_first_command_like_sbatchs():
    script = (
        "#!/bin/bash\n#SBATCH --time=5\n\n# a note\n#SBATCH --no-requeue\necho\n#SBATCH --qos=x\n"
    )
    assert read_directives(script) == [("time", "5"), ("no-requeue", "")]
    fields = submit_fields("/x", script)
    assert (fields["time_limit"], fields["is_requeueable"]) == (5, False)  # minutes as an int


def test_a_directive_without_a_field_is_refused_not_dropped():
    with pytest.raises(BackendError, match=r"cannot submit #SBATCH --exclusive"):
        submit_fields("/x", "#!/bin/bash\n#SBATCH --exclusive\ntrue\n")
    with pytest.raises(BackendError, match="only --long options"):
        read_directives("#!/bin/bash\n#SBATCH -t 5\n")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("B:USR2@120", {"signal": 12, "time": 120, "batch_only": True}),
        ("USR1@30", {"signal": 10, "time": 30}),
        ("SIGTERM", {"signal": 15, "time": 60}),
        ("R:10@5", {"signal": 10, "time": 5, "allow_reservation_overlap": True}),
    ],
)
def test_signal_directives_become_numeric_signal_dicts(value, expected):
    assert warn_signal(value) == expected


def test_an_unknown_signal_is_refused():
    with pytest.raises(BackendError, match="unknown signal 'NOPE'"):
        warn_signal("B:NOPE@10")


# --- failures as one line -----------------------------------------------------------------


class _RPCError(Exception):
    def __init__(self, errno: int, msg: str) -> None:
        super().__init__(msg)
        self.errno, self.msg = errno, msg


def test_an_unreachable_slurmctld_is_a_connection_failure_naming_the_fix(monkeypatch):
    monkeypatch.setenv("SLURM_CONF", "/tmp/x/slurm.conf")
    exc = _RPCError(1800, "Unable to contact slurm controller (connect failure)")
    error = pyslurm_error("hpc", "queue query", exc)
    assert isinstance(error, ConnectionFailed)
    assert str(error) == (
        "cluster hpc: slurmctld does not answer (Unable to contact slurm controller (connect "
        "failure)); start slurmctld, or correct SlurmctldHost/SlurmctldPort in /tmp/x/slurm.conf"
    )


def test_a_refusing_slurmdbd_is_named_with_what_libslurm_logged(monkeypatch):
    monkeypatch.delenv("SLURM_CONF", raising=False)
    logged = (
        "python: error: slurm_persist_conn_open_without_init: failed to open persistent "
        "connection to host:localhost:1: Connection refused\n"
        "python: error: Sending PersistInit msg: Connection refused\n"
        "python: error: DBD_GET_JOBS_COND failure: Unspecified error\n"
    )
    exc = _RPCError(-1, "Failed to get Jobs from slurmdbd")
    error = pyslurm_error("hpc", "accounting query", exc, logged)
    # slurmctld still answers: a BackendError (sync goes on degraded), not ConnectionFailed.
    assert type(error) is BackendError
    text = str(error)
    assert text.startswith("cluster hpc: slurmdbd refused the connection (Failed to get Jobs")
    assert "failed to open persistent connection to host:localhost:1: Connection refused" in text
    assert "AccountingStorageHost/AccountingStoragePort in /etc/slurm/slurm.conf" in text


def test_a_refused_job_stays_a_refusal_and_other_failures_a_backend_error():
    refused = _RPCError(2014, "Requested node configuration is not available")
    error = pyslurm_error("hpc", "submit", refused, submitting=True)
    assert isinstance(error, SubmitRefused)
    assert str(error) == "Slurm refused the job on cluster hpc: " + refused.msg
    other = pyslurm_error("hpc", "node query", _RPCError(2017, "Invalid job id specified"))
    assert type(other) is BackendError
    assert str(other) == "pyslurm node query failed on cluster hpc: Invalid job id specified"


def test_the_old_dictionary_apis_value_errors_carry_message_and_errno():
    assert error_parts(ValueError("Unable to contact slurm controller", 1800)) == (
        1800,
        "Unable to contact slurm controller",
    )
    assert error_parts(ValueError("plain")) == (None, "plain")


def test_what_libslurm_writes_to_fd_2_is_caught_not_shown(capfd):
    with libslurm_stderr() as logged:
        os.write(2, b"python: error: something from C\n")
    os.write(2, b"after\n")
    assert logged.text == "python: error: something from C\n"
    assert capfd.readouterr().err == "after\n"


def test_a_multi_node_job_gets_one_task_per_node_as_under_sbatch():
    script = "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --gres=gpu:4\ntrue\n"
    assert submit_fields("/x", script)["ntasks"] == 2
    assert "ntasks" not in submit_fields("/x", "#!/bin/bash\n#SBATCH --nodes=1\ntrue\n")


def test_the_job_environment_is_sbatchs_the_callers_plus_what_sbatch_adds():
    env = sbatch_environment({"PATH": "/usr/bin", "A": "1"}, "mnist/7", "/home/me", "login1", 0)
    assert env == {
        "PATH": "/usr/bin",
        "A": "1",
        "SLURM_JOB_NAME": "mnist/7",
        "SLURM_SUBMIT_DIR": "/home/me",
        "SLURM_SUBMIT_HOST": "login1",
        "SLURM_PRIO_PROCESS": "0",
    }
