"""The shipped fake of the backend seam: it has every member of the Protocols with the same
signature (so a fake cannot drift from the seam again), and it answers as the real backends
do: sacct and squeue views, arrays, pending reasons, cancel, requeue, refusals, the call log."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.fake import Call, FakeBackend, FakeJob, MemoryFiles, Step, sbatch_options
from nsml_hpc.backends.files import LocalFiles, RunFiles
from nsml_hpc.backends.openssh_files import OpenSshFiles
from nsml_hpc.backends.pyslurm_backend import PyslurmBackend
from nsml_hpc.backends.sftp_files import SftpFiles
from nsml_hpc.backends.ssh import SshBackend
from nsml_hpc.code.selection import CodeFile
from nsml_hpc.code.upload import Seed, local_files
from nsml_hpc.errors import BackendError, SubmitRefused
from nsml_hpc.slurm.demand import Demand
from nsml_hpc.slurm.sinfo import NodeGpus
from nsml_hpc.slurm.states import SessionState

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def protocol_members(protocol: type) -> set[str]:
    """Every public member a Protocol declares: methods, properties and attributes."""
    names: set[str] = set()
    for base in protocol.__mro__:
        if base is object or base.__module__ == "typing":
            continue
        names |= {name for name in vars(base) if not name.startswith("_")}
        names |= {name for name in getattr(base, "__annotations__", {}) if name[0] != "_"}
    return names


def _signature(function: Any, returns: bool) -> inspect.Signature:
    signature = inspect.signature(function)
    return signature if returns else signature.replace(return_annotation=inspect.Signature.empty)


def drift(protocol: type, implementation: type, instance: object | None = None) -> list[str]:
    """How ``implementation`` differs from ``protocol``: a member missing, or a method whose
    signature (names, kinds, defaults, annotations) is not the Protocol's."""
    found: list[str] = []
    annotations = getattr(implementation, "__annotations__", {})
    for name in sorted(protocol_members(protocol)):
        declared = inspect.getattr_static(protocol, name, None)
        actual = inspect.getattr_static(implementation, name, None)
        if callable(declared):
            if actual is None:
                found.append(f"{name}: missing")
                continue
            # a decorator (@contextmanager) makes what is returned: compare the parameters then
            returns = not hasattr(actual, "__wrapped__")
            want, have = _signature(declared, returns), _signature(actual, returns)
            if have != want:
                found.append(f"{name}{have} is not {want}")
            continue
        if isinstance(declared, property):
            wanted = inspect.signature(declared.fget).return_annotation if declared.fget else None
        else:
            wanted = protocol.__annotations__.get(name)
        if instance is not None and not hasattr(instance, name):
            found.append(f"{name}: missing")
        elif isinstance(actual, property):
            got = inspect.signature(actual.fget).return_annotation if actual.fget else None
            if got != wanted:
                found.append(f"{name}: {got} is not {wanted}")
        elif name in annotations and annotations[name] != wanted:
            found.append(f"{name}: {annotations[name]} is not {wanted}")
        elif name not in annotations and actual is None and instance is None:
            found.append(f"{name}: missing")
    return found


def test_the_fake_backend_has_every_member_of_the_protocol_with_its_signature() -> None:
    assert {"submit", "query", "queue", "cancel", "user", "files", "cluster", "close"} <= (
        protocol_members(SlurmBackend)
    )
    assert drift(SlurmBackend, FakeBackend, FakeBackend()) == []


def test_the_fake_files_have_every_member_of_the_protocol_with_its_signature() -> None:
    assert {"read_many", "upload_tree", "remove_tree"} <= protocol_members(RunFiles)
    assert drift(RunFiles, MemoryFiles, MemoryFiles()) == []


@pytest.mark.parametrize("backend", [CliBackend, PyslurmBackend, SshBackend])
def test_the_real_backends_methods_have_the_protocols_signatures(backend: type) -> None:
    methods = {name for name in protocol_members(SlurmBackend) if name not in ("cluster", "files")}
    assert [line for line in drift(SlurmBackend, backend) if line.split(":")[0] in methods] == []


@pytest.mark.parametrize("files", [LocalFiles, SftpFiles, OpenSshFiles])
def test_the_real_run_files_have_the_protocols_signatures(files: type) -> None:
    assert drift(RunFiles, files) == []


def test_drift_is_found() -> None:
    class Drifted:
        cluster: str
        files: Path  # not RunFiles

        def submit(self, script_path: Path) -> str:  # not str
            return "1"

    found = drift(SlurmBackend, Drifted)
    assert "files: Path is not RunFiles" in found
    assert (
        "submit(self, script_path: 'Path') -> 'str' is not (self, script_path: 'str') -> 'str'"
        in (found)
    )
    assert "query: missing" in found


# --- submit, sacct and squeue -----------------------------------------------------------------


def _backend(**options: Any) -> tuple[FakeBackend, MemoryFiles, Clock]:
    clock = Clock()
    files = MemoryFiles("hpc", home="/home/alice", clock=clock)
    backend = FakeBackend("hpc", files=files, user="alice", clock=clock, **options)
    return backend, files, clock


def _script(files: MemoryFiles, *directives: str, name: str = "job.sbatch") -> str:
    path = f"/home/alice/runs/{name}"
    files.make_dirs("/home/alice/runs")
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives), "srun true", "#SBATCH --x"]
    files.write_bytes(path, "\n".join(lines).encode())
    return path


def test_a_submitted_job_is_pending_and_takes_its_sbatch_lines() -> None:
    backend, files, _ = _backend()
    path = _script(files, "--job-name=mnist/7", "--gres=gpu:2", "--time=1-00:00:00")
    assert backend.submit(path) == "1000"
    job = backend.job("1000")
    assert (job.state, job.reason, job.user, job.partition) == (
        "PENDING",
        "Priority",
        "alice",
        "debug",
    )
    assert (job.name, job.gpus, job.time_limit, job.submitted_at) == ("mnist/7", 2, 86400.0, T0)
    assert backend.submitted == [path]
    assert backend.calls == [Call("submit", argument=path)]


def test_sbatch_options_stop_at_the_first_command() -> None:
    script = "#!/bin/bash\n#SBATCH --array=0-3%2\n#SBATCH --partition gpu\n# note\n"
    script += "echo\n#SBATCH --time=1\n"
    assert sbatch_options(script) == {"array": "0-3%2", "partition": "gpu"}


def test_refusals_are_what_sbatch_says() -> None:
    backend, files, _ = _backend()
    with pytest.raises(SubmitRefused, match="on cluster hpc: Unable to open file /nowhere"):
        backend.submit("/nowhere")
    with pytest.raises(SubmitRefused, match="invalid partition specified: gpux"):
        backend.submit(_script(files, "--partition=gpux"))
    with pytest.raises(SubmitRefused, match="Requested node configuration is not available"):
        backend.submit(_script(files, "--gres=gpu:5"))
    with pytest.raises(SubmitRefused, match="Invalid job array specification"):
        backend.submit(_script(files, "--array=0-1001"))
    assert backend.jobs == {}
    assert backend.count("submit") == 4


def test_sacct_lacks_the_pending_reason_and_squeue_has_it() -> None:
    backend, files, clock = _backend()
    job_id = backend.submit(_script(files, "--gres=gpu:1"))
    backend.apply(job_id, Step("PENDING", reason="Resources"))
    [accounting] = backend.query([job_id], since=T0 - 300)
    [queued] = backend.queue([job_id])
    assert (accounting.state, accounting.reason, accounting.node_list) == ("PENDING", None, None)
    assert (queued.state, queued.reason) == ("PENDING", "Resources")
    clock.now += 60
    backend.apply(job_id, Step("RUNNING"))
    [running] = backend.query([job_id], since=T0)
    assert (running.started_at, running.node_list, running.gpus) == (T0 + 60, "vm", 1)
    clock.now += 30
    assert backend.query([job_id], since=T0)[0].elapsed_s == 30.0


def test_sacct_lags_and_squeue_forgets_ended_jobs_after_min_job_age() -> None:
    backend, files, clock = _backend()
    job_id = backend.submit(_script(files))
    backend.job(job_id).in_accounting = False
    assert backend.query([job_id], since=T0) == []
    assert [record.job_id for record in backend.queue([job_id])] == [job_id]
    backend.job(job_id).in_accounting = True
    backend.apply(job_id, Step("RUNNING"))
    clock.now += 10
    backend.apply(job_id, Step("FAILED", exit_code=3))
    [failed] = backend.query([job_id], since=T0)
    assert (failed.state, failed.exit_code, failed.ended_at) == (SessionState.FAILED, 3, T0 + 10)
    assert backend.query([job_id], since=T0 + 11) == []  # over before the window
    clock.now += 299
    assert [record.state for record in backend.queue([job_id])] == [SessionState.FAILED]
    clock.now += 1
    assert backend.queue([job_id]) == []


def test_scripted_transitions_move_one_step_per_advance() -> None:
    backend, files, clock = _backend()
    first, second = (backend.submit(_script(files, name=f"{n}.sbatch")) for n in (1, 2))
    backend.script(first, Step("RUNNING", node_list="gpu01"), Step("COMPLETED"))
    backend.script(second, Step("PENDING", reason="Resources"))
    assert backend.advance() == [first, second]
    assert (backend.job(first).state, backend.job(first).node_list) == ("RUNNING", "gpu01")
    assert backend.job(second).reason == "Resources"
    clock.now += 5
    assert backend.advance() == [first]
    assert (backend.job(first).state, backend.job(first).ended_at) == ("COMPLETED", T0 + 5)
    assert backend.advance() == []


def test_an_array_is_one_id_with_one_record_per_task() -> None:
    backend, files, _ = _backend(max_array_size=10)
    array_id = backend.submit(_script(files, "--array=0-3%2", "--gres=gpu:1"))
    assert sorted(backend.jobs) == [f"{array_id}_{k}" for k in range(4)]
    backend.apply(f"{array_id}_0", Step("RUNNING"))
    records = backend.query([array_id], since=T0)
    assert [(r.job_id, r.state) for r in records] == [
        (f"{array_id}_0", "RUNNING"),
        *((f"{array_id}_{k}", "PENDING") for k in (1, 2, 3)),
    ]
    assert [job.job_id for job in backend.user_queue("alice")] == [
        f"{array_id}_0",
        f"{array_id}_[1-3]",
    ]
    assert backend.pending_demand() == {"debug": Demand(jobs=3, gpus=3)}
    backend.cancel([array_id])
    assert {job.slurm_state for job in backend.jobs.values()} == {"CANCELLED by 0"}
    assert backend.cancelled == [array_id]


def test_cancel_ends_only_live_jobs_and_ignores_unknown_ids_like_scancel() -> None:
    backend, files, clock = _backend()
    job_id = backend.submit(_script(files))
    backend.apply(job_id, Step("RUNNING"))
    clock.now += 7
    backend.cancel([job_id, "999"])
    [record] = backend.query([job_id], since=T0)
    assert (record.state, record.slurm_state, record.elapsed_s) == (
        "CANCELLED",
        "CANCELLED by 0",
        7.0,
    )
    clock.now += 1
    backend.cancel([job_id])
    assert backend.job(job_id).ended_at == T0 + 7
    assert backend.cancelled == [job_id, "999", job_id]


def test_a_requeued_job_keeps_its_id_and_starts_again() -> None:
    backend, files, clock = _backend()
    job_id = backend.submit(_script(files))
    backend.apply(job_id, Step("RUNNING"))
    clock.now += 100
    backend.apply(job_id, Step("PREEMPTED", signal=15))
    assert backend.query([job_id], since=T0)[0].ended_at == T0 + 100
    backend.requeue(job_id)
    job = backend.job(job_id)
    assert (job.state, job.reason, job.restarts, job.started_at, job.ended_at) == (
        "PENDING",
        "BeginTime",
        1,
        None,
        None,
    )
    clock.now += 5
    backend.apply(job_id, Step("RUNNING"))
    assert backend.query([job_id], since=T0)[0].started_at == T0 + 105
    backend.apply(job_id, Step("REQUEUED"))
    clock.now += 5
    backend.apply(job_id, Step("RUNNING"))  # straight back, as a requeue without a wait
    again = backend.job(job_id)
    assert (again.restarts, again.started_at, again.ended_at) == (2, T0 + 110, None)


def test_a_forgotten_job_is_gone_from_both_views() -> None:
    backend, files, _ = _backend()
    job_id = backend.submit(_script(files))
    backend.forget(job_id)
    assert backend.query([job_id], since=0) == backend.queue([job_id]) == []
    with pytest.raises(KeyError, match="no job 1000"):
        backend.apply(job_id, Step("RUNNING"))
    with pytest.raises(ValueError, match="unknown Slurm job state"):
        Step("SLEEPING")


def test_jobs_added_by_hand_take_the_backends_defaults() -> None:
    backend, _, clock = _backend()
    clock.now += 3 * 3600
    backend.add(
        FakeJob("101", "RUNNING", None, gpus=4, started_at=T0 + 3000, node_list="vm", name="m/2"),
        FakeJob("102", reason="Resources", gpus=4, start_at=T0 + 86400, name="m/3"),
        FakeJob("103", "RUNNING", None, user="bob", started_at=T0),
    )
    running, pending = backend.user_queue("alice")
    assert (running.job_id, running.time_used, running.where, running.time_limit) == (
        "101",
        "2:10:00",
        "vm",
        "UNLIMITED",
    )
    assert (pending.job_id, pending.where, pending.start_at, pending.partition) == (
        "102",
        "(Resources)",
        T0 + 86400,
        "debug",
    )
    assert backend.count("user_queue") == 1


def test_the_cluster_views_come_from_the_nodes() -> None:
    nodes = [
        NodeGpus("vm", "debug", True, "mixed", 1, 2, 4, 1),
        NodeGpus("g1", "a100", False, "idle", 0, 64, 8, 0, ("a100",)),
    ]
    backend, _, _ = _backend(nodes=nodes, waits={"debug": 600.0})
    assert backend.partitions() == ["debug", "a100"]
    assert backend.cluster_gpus() == nodes
    probe = backend.probe()
    assert (probe.slurm_version, probe.sacct_error) == ("22.05.8", None)
    assert [p.name for p in probe.partitions] == ["debug", "a100"]
    assert backend.estimate_start(["--gres=gpu:8"], "debug").refusal == (
        "Requested node configuration is not available"
    )
    assert backend.estimate_start(["--gres=gpu:2"], "debug").start_at == T0 + 600
    assert backend.estimate_start(["--gres=gpu:8"], "a100").nodes == "g1"
    assert backend.estimate_start([], "nosuch").start_at is None
    assert backend.max_array_size() == 1001


def test_failures_are_raised_logged_and_recovered() -> None:
    backend, _, _ = _backend()
    backend.fail("query", "queue", error=BackendError("slurmctld is down"))
    with pytest.raises(BackendError, match="slurmctld is down"):
        backend.query(["1"], since=0)
    assert backend.probe().sacct_error == "slurmctld is down"
    backend.recover("query")
    assert backend.query(["1"], since=0) == []
    with pytest.raises(BackendError):
        backend.queue(["1"])
    backend.recover()
    assert backend.queue(["1"]) == []
    assert [call.method for call in backend.calls] == ["query", "probe", "query", "queue", "queue"]
    with pytest.raises(ValueError, match="no method 'sacct'"):
        backend.fail("sacct", error=BackendError("x"))
    backend.close()
    assert backend.closed


# --- the files --------------------------------------------------------------------------------


def test_memory_upload_keeps_what_the_seed_already_has(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "a.py").write_text("a" * 10)
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o755)
    snapshot = local_files(source, [CodeFile("pkg/a.py", 10), CodeFile("run.sh", 10)])
    files = MemoryFiles()
    first = files.upload_tree(source, snapshot, "/runs/1/code")
    assert (first.sent, first.kept, first.bytes_sent) == (2, 0, 20)
    (source / "pkg" / "a.py").write_text("b" * 10)
    changed = local_files(source, [CodeFile("pkg/a.py", 10), CodeFile("run.sh", 10)])
    seen: list[tuple[int, int]] = []
    second = files.upload_tree(
        source,
        changed,
        "/runs/2/code",
        seed=Seed("/runs/1/code", first.manifest),
        progress=lambda sent, total: seen.append((sent, total)),
    )
    assert (second.sent, second.kept, seen) == (1, 1, [(10, 10)])
    assert files.read_bytes("/runs/2/code/pkg/a.py", 100) == b"b" * 10
    out = tmp_path / "out"
    files.copy_out("/runs/2/code", out)
    assert (out / "pkg" / "a.py").read_text() == "b" * 10
    assert (out / "run.sh").stat().st_mode & 0o111


def test_memory_files_log_calls_append_and_fail() -> None:
    files = MemoryFiles("hpc", home="/home/alice")
    files.make_dirs("runs")
    files.append("runs/metrics.jsonl", b'{"step": 0}\n{"st')
    assert files.read_from("/home/alice/runs/metrics.jsonl", 0, 100) == b'{"step": 0}\n{"st'
    assert files.sizes(["runs/metrics.jsonl", "runs/gone"]) == {
        "runs/metrics.jsonl": 16,
        "runs/gone": None,
    }
    assert files.calls == ["make_dirs", "read_from", "sizes"]
    files.fail("read_many", error=BackendError("connection lost"))
    with pytest.raises(BackendError, match="connection lost"):
        files.read_many([("runs/metrics.jsonl", 0, 10)])
    files.recover()
    assert files.read_many([("runs/metrics.jsonl", 0, 4)]) == [b'{"st']
