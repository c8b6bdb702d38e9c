"""squeue as the fallback for jobs that sacct does not show yet, and its parser."""

from __future__ import annotations

from nsml_hpc.slurm.gres import gpu_count, parse_gres
from nsml_hpc.slurm.records import JobRecord, clean_reason
from nsml_hpc.slurm.states import session_state

SQUEUE_FORMAT = "%i|%T|%r|%b|%N"
_COLUMNS = 5


def squeue_command(job_ids: list[str]) -> list[str]:
    return [
        "squeue",
        "--noheader",
        "--states=all",
        "--array",  # one line per array task, not "8_[2-9%2]"
        f"--format={SQUEUE_FORMAT}",
        f"--jobs={','.join(job_ids)}",
    ]


def parse_squeue(text: str) -> list[JobRecord]:
    records: list[JobRecord] = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) != _COLUMNS:
            continue
        job_id, state_text, reason, gres, nodes = (field.strip() for field in fields)
        try:
            state = session_state(state_text)
        except ValueError:
            continue
        records.append(
            JobRecord(
                job_id=job_id,
                state=state,
                slurm_state=state_text,
                reason=clean_reason(reason),
                gpus=gpu_count(parse_gres(gres)),  # %b: gres:gpu:2, gres/gpu:2, N/A
                node_list=nodes or None,
            )
        )
    return records
