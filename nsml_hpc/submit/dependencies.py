"""``--after SESSION``: a session that starts once other sessions of its cluster completed.

Each named session is looked up in the catalog (sync its cluster first for a fresh state) and
becomes ``afterok:<its latest job id>`` in the spec's ``--dependency``. A session that already
COMPLETED needs no dependency (Slurm forgets finished jobs after MinJobAge and would then refuse
the id); one that ended otherwise could never satisfy ``afterok``, and one on another cluster
cannot be waited for at all (Slurm dependencies stay within one cluster): both are refused,
before anything is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.sessions import get_session, jobs_of
from nsml_hpc.errors import SpecError
from nsml_hpc.job.spec import SessionSpec, validate_dependency
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState

DEPENDENCY_TYPE = "afterok"


@dataclass(frozen=True)
class Resolved:
    spec: SessionSpec
    waits_for: dict[str, str] = field(default_factory=dict)  # session -> job id
    already_done: list[str] = field(default_factory=list)  # COMPLETED: nothing to wait for


def _job_of(catalog: Catalog, name: str, cluster: str) -> str | None:
    """The job id to wait for (None: the session already completed)."""
    record = get_session(catalog, name)
    if record.cluster != cluster:
        raise SpecError(
            f"--after {name}: that session is on cluster {record.cluster}, this one goes to "
            f"{cluster} (Slurm dependencies work within one cluster)"
        )
    if record.state == SessionState.COMPLETED:
        return None
    if record.state in TERMINAL_STATES:
        raise SpecError(
            f"--after {name}: it ended {record.state}; a session after it would never start"
        )
    assert record.id is not None
    jobs = jobs_of(catalog, [record.id])[record.id]
    if not jobs:
        raise SpecError(f"--after {name}: it has no Slurm job yet")
    return jobs[-1].job_id


def resolve_after(catalog: Catalog, spec: SessionSpec) -> Resolved:
    """``spec`` with its ``after`` sessions added to ``resources.dependency``."""
    if not spec.after:
        return Resolved(spec)
    waits: dict[str, str] = {}
    done: list[str] = []
    for name in spec.after:
        job = _job_of(catalog, name, spec.cluster)
        if job is None:
            done.append(name)
        else:
            waits[name] = job
    if not waits:
        return Resolved(spec, waits, done)
    given = spec.resources.dependency
    if given and "?" in given:
        raise SpecError(
            f"--dependency {given!r} waits for any one of its jobs ('?'); --after waits for "
            "all of them: give the job ids in --dependency instead"
        )
    ours = f"{DEPENDENCY_TYPE}:{':'.join(dict.fromkeys(waits.values()))}"
    dependency = validate_dependency(f"{given},{ours}" if given else ours)
    resources = replace(spec.resources, dependency=dependency)
    return Resolved(replace(spec, resources=resources), waits, done)
