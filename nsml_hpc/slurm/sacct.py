"""Build the ONE sacct command per sync and parse its ``--parsable2 --noheader`` output."""

from __future__ import annotations

from datetime import datetime

from nsml_hpc.job.duration import parse_duration
from nsml_hpc.slurm.arrays import expand_task_ids
from nsml_hpc.slurm.gres import gpus_in_tres
from nsml_hpc.slurm.records import JobRecord, clean_reason, parse_exit_code
from nsml_hpc.slurm.states import SessionState, session_state
from nsml_hpc.slurm.timefmt import parse_timestamp

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
)


def sacct_command(job_ids: list[str], since: float) -> list[str]:
    """argv of one sacct call for all ``job_ids``, with an explicit start time (``-S``)."""
    start = datetime.fromtimestamp(since).strftime("%Y-%m-%dT%H:%M:%S")
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
        gpus=gpus_in_tres(row["AllocTRES"]),
        node_list=_node_list(row["NodeList"]),
    )
