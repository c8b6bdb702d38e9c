"""Build the ONE sacct command per sync and parse its ``--parsable2 --noheader`` output."""

from __future__ import annotations

from datetime import datetime

from nsml_hpc.slurm.records import JobRecord, clean_reason, gpus_in_tres, parse_exit_code
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState, session_state
from nsml_hpc.slurm.timefmt import parse_duration, parse_timestamp

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


def _reason(state: SessionState, text: str) -> str | None:
    """A requeued job keeps its pending reason (BeginTime) in accounting after it ended."""
    reason = clean_reason(text)
    if reason == "BeginTime" and state in TERMINAL_STATES:
        return None
    return reason


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
        records.append(
            JobRecord(
                job_id=row["JobID"],
                state=state,
                slurm_state=row["State"],
                reason=_reason(state, row["Reason"]),
                exit_code=exit_code,
                signal=signal,
                submitted_at=parse_timestamp(row["Submit"]),
                started_at=parse_timestamp(row["Start"]),
                ended_at=parse_timestamp(row["End"]),
                elapsed_s=parse_duration(row["Elapsed"]),
                gpus=gpus_in_tres(row["AllocTRES"]),
                node_list=_node_list(row["NodeList"]),
            )
        )
    return records
