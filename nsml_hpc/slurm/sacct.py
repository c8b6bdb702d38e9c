"""Build the ONE sacct command per sync and parse its ``--parsable2 --noheader`` output."""

from __future__ import annotations

import time

from nsml_hpc.job.duration import parse_duration
from nsml_hpc.slurm.arrays import expand_task_ids
from nsml_hpc.slurm.gres import gpus_in_tres
from nsml_hpc.slurm.records import JobRecord, clean_reason, parse_exit_code
from nsml_hpc.slurm.states import SessionState, session_state
from nsml_hpc.slurm.timefmt import parse_timestamp, relative_start

SACCT_FIELDS = (
    "JobID",
    "JobIDRaw",
    "State",
    "ExitCode",
    "Reason",
    "Submit",
    "Start",
    "End",
    "Elapsed",
    "AllocTRES",
    "NodeList",
    # What the job got, read back so the catalog never reports only what was asked.
    "Partition",
    "Account",
    "QOS",
    "Timelimit",
    "NNodes",
    "ReqTRES",  # a pending job has no AllocTRES yet
)


def sacct_command(job_ids: list[str], since: float, now: float | None = None) -> list[str]:
    """argv of one sacct call for all ``job_ids``, with a start time (``-S``) relative to the
    cluster's clock, so no time zone is involved (run it with ``TIME_FORMAT_ENV``)."""
    start = relative_start(since, time.time() if now is None else now)
    return [
        "sacct",
        "--parsable2",
        "--noheader",
        "--allocations",
        f"--starttime={start}",
        f"--format={','.join(SACCT_FIELDS)}",
        f"--jobs={','.join(job_ids)}",
    ]


def _node_list(text: str) -> str | None:
    """sacct prints ``None assigned`` for a job that never ran."""
    text = text.strip()
    return None if not text or text.startswith("None") else text


def parse_sacct(text: str) -> list[JobRecord]:
    """Records from sacct output; lines of other shapes (warnings) are skipped."""
    records: list[JobRecord] = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) != len(SACCT_FIELDS):
            continue
        row = dict(zip(SACCT_FIELDS, fields, strict=True))
        try:
            state = session_state(row["State"])
        except ValueError:
            continue
        exit_code, signal = parse_exit_code(row["ExitCode"])
        for job_id in expand_task_ids(row["JobID"]):  # pending array tasks share one line
            records.append(_record(job_id, state, row, exit_code, signal))
    return records


def _record(
    job_id: str, state: SessionState, row: dict[str, str], exit_code: int | None, signal: int | None
) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        state=state,
        slurm_state=row["State"],
        reason=clean_reason(row["Reason"]),
        exit_code=exit_code,
        signal=signal,
        submitted_at=parse_timestamp(row["Submit"]),
        started_at=parse_timestamp(row["Start"]),
        ended_at=parse_timestamp(row["End"]),
        elapsed_s=parse_duration(row["Elapsed"]),
        gpus=_gpus(row["AllocTRES"], row["ReqTRES"]),
        node_list=_node_list(row["NodeList"]),
        partition=_text(row["Partition"]),
        account=_text(row["Account"]),
        qos=_text(row["QOS"]),
        time_limit=_text(row["Timelimit"]),
        nodes=int(row["NNodes"]) if row["NNodes"].strip().isdigit() else None,
        allocation_complete=_text(row["Partition"]) is not None,
    )


def _text(value: str) -> str | None:
    value = value.strip()
    return None if value in ("", "(null)") else value


def _gpus(alloc_tres: str, req_tres: str) -> int | None:
    """GPUs allocated (or, before the job starts, asked for): 0 for a job without any."""
    tres = alloc_tres.strip() or req_tres.strip()
    if not tres:
        return None
    return gpus_in_tres(tres) or 0
