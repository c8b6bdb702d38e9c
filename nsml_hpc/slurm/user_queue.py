"""The user's own queue (ONE squeue call for all their jobs) and its parser.

The job name comes last in the format because it is the one field a user may fill with
anything, ``|`` included: the line is split at most ``len(QUEUE_FIELDS) - 1`` times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nsml_hpc.errors import SpecError
from nsml_hpc.slurm.gres import gpus_in_gres
from nsml_hpc.slurm.records import clean_reason
from nsml_hpc.slurm.timefmt import parse_timestamp

# %i job id, %T state, %r reason, %P partition, %b GRES asked, %M time used, %l time limit,
# %D nodes, %V submitted, %S (expected) start, %R node list or (reason), %j name
QUEUE_FIELDS = ("%i", "%T", "%r", "%P", "%b", "%M", "%l", "%D", "%V", "%S", "%R", "%j")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class QueueJob:
    job_id: str
    state: str
    reason: str | None
    partition: str
    gpus: int
    time_used: str
    time_limit: str
    nodes: int
    submitted_at: float | None
    start_at: float | None
    where: str
    name: str


def user_queue_command(user: str) -> list[str]:
    if not _USER.fullmatch(user):
        raise SpecError(f"{user!r} is not a user name Slurm knows")
    return [
        "squeue",
        "--noheader",
        f"--user={user}",
        "--sort=-t,i",
        f"--format={'|'.join(QUEUE_FIELDS)}",
    ]


def _timestamp(text: str) -> float | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def parse_user_queue(text: str) -> list[QueueJob]:
    jobs: list[QueueJob] = []
    for line in text.splitlines():
        fields = line.split("|", len(QUEUE_FIELDS) - 1)
        if len(fields) != len(QUEUE_FIELDS):
            continue
        job_id, state, reason, partition, gres, used, limit, nodes, submit, start, where, name = (
            fields
        )
        if not job_id.strip():
            continue
        jobs.append(
            QueueJob(
                job_id=job_id.strip(),
                state=state.strip(),
                reason=clean_reason(reason),
                partition=partition.strip(),
                gpus=gpus_in_gres(gres),
                time_used=used.strip(),
                time_limit=limit.strip(),
                nodes=int(nodes) if nodes.strip().isdigit() else 0,
                submitted_at=_timestamp(submit),
                start_at=_timestamp(start),
                where=where.strip(),
                name=name,
            )
        )
    return jobs
