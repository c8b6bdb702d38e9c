"""pyslurm's job objects as the records sync works with (pure: plain attribute reads).

``pyslurm.db.Job`` (accounting) and ``pyslurm.Job`` (slurmctld's queue) share the attribute
names used here in pyslurm 22.5 and 25.11: ``id``, ``state``, ``state_reason``, ``exit_code``,
``exit_code_signal``, ``submit_time``, ``start_time``, ``end_time``, ``array_id``,
``array_task_id``, ``array_tasks_waiting``; ``elapsed_time`` and ``nodelist`` exist on the
accounting job only, ``allocated_nodes`` on the queue job.

Array tasks are named as sacct and squeue name them, ``<array id>_<task>``. Two things of
pyslurm's (both releases) that the mapping has to undo, seen on the sandbox's Slurm 22.05:

- ``array_task_id`` is ``None`` for task 0 (pyslurm reads a 0 as "no value"); a job whose
  ``array_id`` is set is task 0 when neither a task id nor waiting tasks are given.
- the record of an array's tasks that have not started carries them in
  ``array_tasks_waiting``: ``2-3`` / ``2,5-7`` from slurmctld, but a hex bitmap such as
  ``0xC`` (tasks 2 and 3) from slurmdbd.
"""

from __future__ import annotations

from typing import Any

from nsml_hpc.slurm.records import JobRecord, clean_reason
from nsml_hpc.slurm.states import session_state
from nsml_hpc.slurm.timefmt import format_time_limit


def waiting_tasks(text: str) -> list[int]:
    """Task indices in ``2-3,7`` (ranges) or ``0xC`` (slurmdbd's hex bitmap), ``%N`` ignored."""
    text = text.split("%", 1)[0].strip()
    if not text:
        return []
    if text.lower().startswith("0x"):
        bits = int(text, 16)
        return [index for index in range(bits.bit_length()) if bits >> index & 1]
    tasks: list[int] = []
    for part in text.strip("[]").split(","):
        low, _, high = part.partition("-")
        if low.strip().isdigit() and (not high or high.strip().isdigit()):
            tasks.extend(range(int(low), int(high or low) + 1))
    return tasks


def job_ids(job: Any) -> list[str]:
    """The ids sacct/squeue would give this job: ``42``; ``8_3``; every waiting task of an
    array's not-yet-started record (``8_2``, ``8_3``)."""
    array_id = getattr(job, "array_id", None)
    if not array_id:
        return [str(job.id)]
    waiting = getattr(job, "array_tasks_waiting", None)
    task = getattr(job, "array_task_id", None)
    if waiting:
        return [f"{array_id}_{index}" for index in waiting_tasks(str(waiting))]
    return [f"{array_id}_{task if task is not None else 0}"]


def display_id(job: Any) -> str:
    """One id per job as squeue prints it without ``--array``: ``8_[2-3]`` for waiting tasks."""
    array_id = getattr(job, "array_id", None)
    waiting = getattr(job, "array_tasks_waiting", None)
    if array_id and waiting:
        return f"{array_id}_[{waiting}]"
    return job_ids(job)[0]


def _time(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return None if text in ("", "(null)", "None") else text


def time_limit_text(limit: Any) -> str | None:
    """``db.Job.time_limit`` as sacct's ``Timelimit`` prints it: minutes (an int), None for
    INFINITE (``UNLIMITED``), ``"PartitionLimit"`` for none set (sacct: ``Partition_Limit``)."""
    if limit is None or isinstance(limit, int):
        return format_time_limit(limit)
    text = str(limit).strip()
    return "Partition_Limit" if text == "PartitionLimit" else text or None


def allocation(job: Any) -> dict[str, Any]:
    """What accounting says a ``pyslurm.db.Job`` got, as sacct's read-back fills a
    :class:`JobRecord` (``nsml_hpc.slurm.sacct``): partition, account, QOS, time limit (as
    sacct prints it), node count; incomplete while the record has no partition yet. Not
    reported (None), where sacct has a value: the GPU count (pyslurm 22.5's ``db.Job`` has no
    TRES: its ``tres_alloc_str`` holds numeric TRES ids and is not exposed) and the node count
    of a job that has not started (``num_nodes`` is 0 there; sacct shows the nodes asked for)."""
    partition = _text(getattr(job, "partition", None))
    nodes = getattr(job, "num_nodes", None)
    return {
        "partition": partition,
        "account": _text(getattr(job, "account", None)),
        "qos": _text(getattr(job, "qos", None)),
        # sacct prints no Timelimit in a record without its partition (slurmdbd has the job's
        # end before its start record); pyslurm would say PartitionLimit there.
        "time_limit": (
            time_limit_text(getattr(job, "time_limit", None)) if partition is not None else None
        ),
        "nodes": nodes if isinstance(nodes, int) and nodes > 0 else None,
        "allocation_complete": partition is not None,
    }


def records_from_job(job: Any, *, accounting: bool = False) -> list[JobRecord]:
    """One :class:`JobRecord` per id of ``job`` (see :func:`job_ids`); none for a state
    nsml-hpc does not know. Sync needs no GPU count from here (the session knows its own).
    ``accounting``: a ``db.Job``, whose :func:`allocation` is read back as sacct's is (the
    queue's records carry none, as squeue's do not)."""
    state_text = str(job.state)
    try:
        state = session_state(state_text)
    except ValueError:
        return []
    nodes = getattr(job, "nodelist", None) or getattr(job, "allocated_nodes", None)
    given = allocation(job) if accounting else {}
    return [
        JobRecord(
            job_id=job_id,
            state=state,
            slurm_state=state_text,
            reason=clean_reason(str(job.state_reason or "")),
            exit_code=job.exit_code,
            signal=job.exit_code_signal,
            submitted_at=_time(job.submit_time),
            started_at=_time(job.start_time),
            ended_at=_time(job.end_time),
            elapsed_s=_time(getattr(job, "elapsed_time", None)),
            node_list=str(nodes) if nodes and not str(nodes).startswith("None") else None,
            **given,
        )
        for job_id in job_ids(job)
    ]


def wanted_records(jobs: Any, wanted: set[str]) -> list[JobRecord]:
    """Records of ``jobs`` (pyslurm job objects) whose id is in ``wanted``; every id once."""
    found: dict[str, JobRecord] = {}
    for job in jobs:
        for record in records_from_job(job):
            if record.job_id in wanted:
                found[record.job_id] = record
    return list(found.values())
