"""The job wrapper: runs on the compute node as ``python -m nsml_hpc.job RUN_DIR``.

It records lifecycle events in ``events.jsonl``, starts the training script with its
arguments exactly as submitted (read from ``session.json``, never through a shell), forwards
signals to it, and exits with its exit code. Standard library only.

Preemption and time limits: the batch script asks Slurm for ``USR2`` ``grace`` seconds before
the end and ``exec``s this wrapper, so the wrapper gets it. It then writes
``.nsml/checkpoint-requested`` (what :func:`nsml_hpc.should_checkpoint` reads), forwards USR2
to the training process only if that process catches USR2 (its default action would kill
it), waits up to the grace period for a new snapshot, stops the training process and requeues
the job with ``scontrol requeue`` (at most ``max_requeues`` times, counted by Slurm's
``SLURM_RESTART_COUNT``). On every start it finishes snapshot writes a crash interrupted,
picks the snapshot to resume from (the latest of this session after a requeue, the parent's
on a fork) and passes it to the script as ``NSML_HPC_RESUME_FROM``.

Events: started (with restart_count, metrics_line = lines of metrics.jsonl written by earlier
runs, resume_tag/resume_step, heartbeat), resumed, signal, checkpointed / checkpoint_missed,
ended, requeued / requeue_refused / requeue_failed. While the training process runs, an
``alive`` line every ``heartbeat`` seconds (``NSML_HPC_HEARTBEAT``, default 15; 0: none) tells
the front end the wrapper still runs: one that stops without an ``ended`` line was killed,
and only then does the front end need to ask Slurm early.

Launch modes other than plain (docs/multi-node.md): the batch script runs this wrapper with
the command to supervise after ``--`` (``srun ... python -m nsml_hpc.job RUN_DIR --task
[-- torchrun ...]``) instead of the training script. srun starts the wrapper again on every
node in task mode (:mod:`nsml_hpc.job.task`), which writes task_started / task_ended events
(host, node, task, CUDA_VISIBLE_DEVICES, exit code) to a file of its own under
``.nsml/tasks/``; this wrapper, the one writer of events.jsonl, relays them there (and per-rank
metric lines from ``.nsml/ranks/`` into metrics.jsonl), so no two nodes ever append to the same
file on a shared file system. Slurm's warning reaches srun, which forwards it to every task.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from nsml_hpc.errors import NsmlError
from nsml_hpc.job.gpu_monitor import GpuMonitor
from nsml_hpc.job.layout import (
    CHECKPOINT_FLAG,
    CODE_DIR,
    DATASET_ENV,
    DATASET_NAME_ENV,
    EVENTS_FILE,
    HEARTBEAT_ENV,
    HEARTBEAT_EVENT,
    METRICS_FILE,
    RANKS_DIR,
    RESTART_COUNT_ENV,
    RESUME_FROM_ENV,
    RESUME_STEP_ENV,
    SESSION_FILE,
    SNAPSHOTS_DIR,
    TASKS_DIR,
    job_id_from_env,
)
from nsml_hpc.job.permissions import MODE_KEY, apply_run_dir_mode
from nsml_hpc.job.snapshot_format import FileEntry, Manifest, ManifestError, recency_key
from nsml_hpc.job.snapshot_store import check_files, list_snapshots, read_manifest, recover
from nsml_hpc.job.spec import SessionSpec, warning_seconds
from nsml_hpc.job.staging import Staged, StagingError, stage, unstage

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGCONT)
POLL_SECONDS = 0.25
STOP_SECONDS = 10.0  # SIGTERM -> SIGKILL for the training process once the snapshot is in
REQUEUE_TIMEOUT = 30.0
DEFAULT_HEARTBEAT_SECONDS = 15.0
EXIT_NO_START_SNAPSHOT = 66
RELAY_SECONDS = 1.0  # how often task events and per-rank metrics are relayed
RELAY_MAX_BYTES = 4 << 20  # read at most this much of one file per relay

EXIT_STAGING_FAILED = 67


class EventLog:
    def __init__(self, run_dir: Path, path: Path | None = None) -> None:
        self.path = path or run_dir / EVENTS_FILE
        self.job_id = job_id_from_env()

    def write(self, event: str, **data: Any) -> None:
        line = {"event": event, "time": time.time(), "job_id": self.job_id, **data}
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)


def append_lines(path: Path, data: bytes) -> None:
    """Append complete lines with single ``write`` calls on an ``O_APPEND`` descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class Relay:
    """Copies complete lines from the task wrappers' event files (``.nsml/tasks/``) into
    events.jsonl and from per-rank metric files (``.nsml/ranks/``) into metrics.jsonl.

    Each of those files has one writer (one task, one rank) and is read here from where the
    last look stopped, so a partly written last line waits for the next look."""

    def __init__(self, run_dir: Path) -> None:
        self.pairs = (
            (run_dir / TASKS_DIR, run_dir / EVENTS_FILE),
            (run_dir / RANKS_DIR, run_dir / METRICS_FILE),
        )
        self.offsets: dict[str, int] = {}
        self.next_at = 0.0

    def clear(self) -> None:
        """Remove the files of earlier runs (no task of ours is alive yet)."""
        for folder, _ in self.pairs:
            shutil.rmtree(folder, ignore_errors=True)

    def poll(self, *, force: bool = False) -> int:
        """Relay what is new (at most every RELAY_SECONDS unless ``force``); lines copied."""
        now = time.monotonic()
        if not force and now < self.next_at:
            return 0
        self.next_at = now + RELAY_SECONDS
        copied = 0
        for folder, target in self.pairs:
            chunks = [self._new_lines(path) for path in self._files(folder)]
            data = b"".join(chunks)
            if data:
                append_lines(target, data)
                copied += data.count(b"\n")
        return copied

    @staticmethod
    def _files(folder: Path) -> list[str]:
        try:
            return sorted(
                entry.path
                for entry in os.scandir(folder)
                if entry.name.endswith(".jsonl") and entry.is_file()
            )
        except OSError:
            return []

    def _new_lines(self, path: str) -> bytes:
        offset = self.offsets.get(path, 0)
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(RELAY_MAX_BYTES)
        except OSError:
            return b""
        end = data.rfind(b"\n") + 1
        if end == 0 and len(data) == RELAY_MAX_BYTES:
            self.offsets[path] = offset + len(data)  # a line longer than a read: dropped
            return b""
        self.offsets[path] = offset + end
        return data[:end]


def command_for(document: dict[str, Any], code_dir: Path) -> list[str]:
    spec = document["spec"]
    script = str(code_dir / spec["script"])
    args = [str(arg) for arg in spec.get("args", [])]
    if script.endswith(".py"):
        return [document.get("interpreter") or sys.executable, script, *args]
    return [script, *args]


def heartbeat_seconds() -> float | None:
    """Seconds between ``alive`` lines (``NSML_HPC_HEARTBEAT``); None: no heartbeat."""
    text = os.environ.get(HEARTBEAT_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_HEARTBEAT_SECONDS
    except ValueError:
        value = DEFAULT_HEARTBEAT_SECONDS
    return value if 0 < value < 1e6 else None


def restart_count() -> int:
    text = os.environ.get("SLURM_RESTART_COUNT", "0").strip()
    return int(text) if text.isdigit() else 0


def close_and_count_lines(path: Path) -> int:
    """Lines earlier runs wrote to ``path``; a partial last line (a run killed mid-write) is
    terminated first, so this run's lines start on a line of their own."""
    try:
        handle = open(path, "rb+")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return 0
    with handle:
        count = 0
        last = b"\n"
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
        if last != b"\n":
            handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
            count += 1
    return count


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for (or ignores) ``signum`` (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return False
    bit = 1 << (signum - 1)
    caught = int(fields.get("SigCgt", "0").strip() or "0", 16)
    ignored = int(fields.get("SigIgn", "0").strip() or "0", 16)
    return bool((caught | ignored) & bit)


@dataclass(frozen=True)
class ResumePoint:
    path: Path
    manifest: Manifest
    source: str  # "requeue" | "fork"


class Wrapper:
    def __init__(self, run_dir: Path, launch_command: list[str] | None = None) -> None:
        self.run_dir = run_dir
        self.launch_command = launch_command  # srun ... (multi-node launch modes)
        self.relay = Relay(run_dir)
        self.document: dict[str, Any] = json.loads((run_dir / SESSION_FILE).read_text("utf-8"))
        self.spec = SessionSpec.from_dict(self.document["spec"])
        self.events = EventLog(run_dir)
        self.snapshots = run_dir / SNAPSHOTS_DIR
        self.flag = run_dir / CHECKPOINT_FLAG
        self.restart = restart_count()
        self.grace = warning_seconds(self.spec)
        self.child: subprocess.Popen[bytes] | None = None
        self.warned_at: float | None = None  # USR2 received, not yet handled
        self.warning_handled = False
        self.requeued = False
        self.term_pending = False  # multi-node: SIGTERM to pass on to the tasks
        self.staged: Staged | None = None
        self.heartbeat = heartbeat_seconds()
        self.beat_at = time.monotonic()

    # --- start ---------------------------------------------------------------------------

    def _latest_own_snapshot(self) -> ResumePoint | None:
        listing = list_snapshots(self.snapshots)
        for name, why in sorted(listing.damaged.items()):
            self.events.write("snapshot_damaged", snapshot=name, problem=why)
        if not listing.intact:
            return None
        manifest, path = max(listing.intact, key=lambda item: recency_key(item[0]))
        return ResumePoint(path, manifest, "requeue")

    def _fork_snapshot(self) -> ResumePoint | None:
        fork = self.document.get("fork")
        if not isinstance(fork, dict) or not fork.get("snapshot_path"):
            return None
        path = Path(str(fork["snapshot_path"]))
        if fork.get("found"):
            return self._found_checkpoint(fork, path)
        try:
            manifest = read_manifest(path)
        except (ManifestError, OSError) as exc:
            raise FileNotFoundError(
                f"the snapshot to start from, {path}, is unusable: {exc}"
            ) from exc
        problem = check_files(manifest, path)
        if problem is not None:
            raise FileNotFoundError(f"the snapshot to start from, {path}, is damaged: {problem}")
        if fork.get("created") is not None and manifest.created != fork.get("created"):
            self.events.write(
                "warning",
                message=f"{fork.get('session')}:{manifest.tag} was replaced after the fork; "
                "starting from its current content",
            )
        return ResumePoint(path, manifest, "fork")

    def _found_checkpoint(self, fork: dict[str, Any], path: Path) -> ResumePoint:
        """A checkpoint file the parent's training code wrote itself (found, not saved with
        nsml_hpc.save): the file is what the child resumes from."""
        try:
            info = path.stat()
        except OSError as exc:
            raise FileNotFoundError(f"the checkpoint to start from, {path}, is gone") from exc
        if not path.is_file():
            raise FileNotFoundError(f"the checkpoint to start from, {path}, is not a file")
        step = fork.get("step")
        manifest = Manifest(
            tag=str(fork.get("snapshot")),
            step=step if isinstance(step, int) and not isinstance(step, bool) else None,
            metrics={},
            files=(FileEntry(path.name, info.st_size),),
            created=info.st_mtime,
        )
        if fork.get("bytes") is not None and fork.get("bytes") != info.st_size:
            self.events.write(
                "warning",
                message=f"{fork.get('session')}:{manifest.tag} changed after the fork; "
                "starting from its current content",
            )
        return ResumePoint(path, manifest, "fork")

    def _prepare(self) -> tuple[ResumePoint | None, int, list[str]]:
        try:
            repairs = recover(self.snapshots, drop_temp=True)  # no process of ours is alive
        except (NsmlError, OSError) as exc:
            repairs = []
            self.events.write("warning", message=f"cannot tidy {self.snapshots}: {exc}")
        try:
            self.flag.unlink(missing_ok=True)
            self.relay.clear()
            metrics_line = close_and_count_lines(self.run_dir / METRICS_FILE)
        except OSError as exc:
            self.events.write("warning", message=f"cannot read {METRICS_FILE}: {exc}")
            metrics_line = 0
        resume = self._latest_own_snapshot() if self.restart > 0 else None
        if resume is None:
            resume = self._fork_snapshot()
        return resume, metrics_line, repairs

    def _child_env(self, resume: ResumePoint | None) -> dict[str, str]:
        env = dict(os.environ)
        env[RESTART_COUNT_ENV] = str(self.restart)
        env.pop(RESUME_FROM_ENV, None)
        env.pop(RESUME_STEP_ENV, None)
        if resume is not None:
            env[RESUME_FROM_ENV] = str(resume.path)
            if resume.manifest.step is not None:
                env[RESUME_STEP_ENV] = str(resume.manifest.step)
        dataset = self.spec.dataset
        env.pop(DATASET_ENV, None)
        env.pop(DATASET_NAME_ENV, None)
        if dataset is not None and dataset.path:
            env[DATASET_ENV] = str(self.staged.path if self.staged else dataset.path)
            env[DATASET_NAME_ENV] = f"{dataset.name}:{dataset.version}"
        if self.spec.captures_stdout:
            env.setdefault("PYTHONUNBUFFERED", "1")  # printed metrics reach the output promptly
        return env

    # --- dataset staging -------------------------------------------------------------------

    def _stage_dataset(self) -> None:
        """Copy a ``--stage`` dataset to node-local scratch (StagingError says why not)."""
        dataset = self.spec.dataset
        if dataset is None or not dataset.stage or not dataset.path:
            return
        nodes = self.spec.resources.nodes
        self.staged = stage(
            Path(dataset.path), f"{dataset.name}-{dataset.version}", self.events.job_id, nodes
        )
        self.events.write(
            "dataset_staged",
            dataset=f"{dataset.name}:{dataset.version}",
            path=str(self.staged.path),
            files=self.staged.files,
            bytes=self.staged.bytes,
            seconds=self.staged.seconds,
            method=self.staged.method,
            nodes=nodes,
        )

    def _unstage_dataset(self) -> None:
        if self.staged is not None:
            unstage(self.staged)
            self.events.write("dataset_unstaged", path=str(self.staged.path))
            self.staged = None

    # --- signals -------------------------------------------------------------------------

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        if self.requeued:
            return  # Slurm is ending this run after our own requeue
        self.events.write("signal", signal=signal.Signals(signum).name)
        if signum == signal.SIGTERM:
            self._write_flag(reason="SIGTERM")
            if self.launch_command is not None:
                # srun answers SIGTERM by killing its tasks (SIGKILL): the main loop asks
                # Slurm to send the tasks SIGTERM instead.
                self.term_pending = True
                return
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def _signal_tasks(self, name: str) -> None:
        """``scancel --signal=NAME <job>``: every job step's tasks (not this batch shell)
        get the signal as such; srun itself would turn TERM into KILL."""
        job_id, scancel = os.environ.get("SLURM_JOB_ID"), shutil.which("scancel")
        if not job_id or scancel is None:
            return
        try:
            subprocess.run(
                [scancel, f"--signal={name}", job_id],
                capture_output=True,
                timeout=REQUEUE_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.events.write("warning", message=f"scancel --signal={name} {job_id}: {exc}")

    def _on_warning(self, _signum: int, _frame: FrameType | None) -> None:
        if self.warned_at is None:
            self.warned_at = time.time()

    def _write_flag(self, *, reason: str) -> None:
        data = {"time": time.time(), "reason": reason, "restart_count": self.restart}
        self.flag.parent.mkdir(parents=True, exist_ok=True)
        temp = self.flag.with_name(f".{self.flag.name}.{os.getpid()}")
        temp.write_text(json.dumps(data), encoding="utf-8")
        temp.replace(self.flag)

    # --- the warning: checkpoint, stop, requeue ----------------------------------------------

    def _entries(self) -> dict[str, int]:
        try:
            return {
                entry.name: entry.stat().st_mtime_ns
                for entry in os.scandir(self.snapshots)
                if not entry.name.startswith(".")
            }
        except OSError:
            return {}

    def _new_snapshot(self, before: dict[str, int], since: float) -> Manifest | None:
        for name, mtime in self._entries().items():
            if before.get(name) == mtime:
                continue
            try:
                manifest = read_manifest(self.snapshots / name)
            except (ManifestError, OSError):
                continue
            if manifest.created >= since - 1.0:
                return manifest
        return None

    def _handle_warning(self, child: subprocess.Popen[bytes]) -> int | None:
        """Checkpoint, then stop and requeue; the training process's exit code if it was
        stopped, None if it keeps running (requeue off or capped)."""
        assert self.warned_at is not None
        self.warning_handled = True
        start = self.warned_at
        before = self._entries()
        self.events.write("signal", signal="USR2", grace=self.grace)
        self._write_flag(reason="USR2")
        if child.poll() is None and catches(child.pid, signal.SIGUSR2):
            child.send_signal(signal.SIGUSR2)
        deadline = start + max(self.grace - STOP_SECONDS, 1.0)
        snapshot: Manifest | None = None
        while time.time() < deadline:
            snapshot = self._new_snapshot(before, start)
            if snapshot is not None or child.poll() is not None:
                break
            self.relay.poll()
            self._beat()
            time.sleep(POLL_SECONDS)
        if snapshot is None:
            snapshot = self._new_snapshot(before, start)
        if snapshot is not None:
            self.events.write(
                "checkpointed",
                snapshot=snapshot.tag,
                step=snapshot.step,
                seconds=round(time.time() - start, 3),
            )
        else:
            reason = "the training process exited" if child.poll() is not None else "timeout"
            self.events.write("checkpoint_missed", reason=reason)
        policy = self.spec.preemption
        if not policy.requeue:
            self.events.write("requeue_refused", reason="requeue is off for this session")
            return None
        if self.restart >= policy.max_requeues:
            self.events.write(
                "requeue_refused",
                reason=f"requeued {self.restart} times already (max_requeues "
                f"{policy.max_requeues})",
            )
            return None
        exit_code = self._stop(child)
        self.relay.poll(force=True)
        self.events.write("ended", exit_code=exit_code, requeue=True)
        self._requeue()
        return exit_code if exit_code != 0 else 75  # EX_TEMPFAIL when the requeue failed

    def _beat(self) -> None:
        """An ``alive`` line every heartbeat (a full disk costs the line, not the job)."""
        if self.heartbeat is None or time.monotonic() - self.beat_at < self.heartbeat:
            return
        self.beat_at = time.monotonic()
        with contextlib.suppress(OSError):
            self.events.write(HEARTBEAT_EVENT)

    def _stop(self, child: subprocess.Popen[bytes]) -> int:
        if child.poll() is None and self.launch_command is not None:
            self._signal_tasks("TERM")  # the tasks stop their ranks; srun then ends
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=STOP_SECONDS)
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        code = child.returncode
        return code if code >= 0 else 128 - code

    def _requeue(self) -> None:
        job_id = os.environ.get("SLURM_JOB_ID")
        scontrol = shutil.which("scontrol")
        if not job_id or scontrol is None:
            self.events.write("requeue_failed", error="not in a Slurm job (or no scontrol)")
            return
        self.requeued = True
        try:
            done = subprocess.run(
                [scontrol, "requeue", job_id],
                capture_output=True,
                text=True,
                timeout=REQUEUE_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.requeued = False
            self.events.write("requeue_failed", error=str(exc))
            return
        if done.returncode != 0:
            self.requeued = False
            self.events.write("requeue_failed", error=(done.stderr or done.stdout).strip())
            return
        self.events.write("requeued", restart_count=self.restart + 1)

    # --- main ----------------------------------------------------------------------------

    def run(self) -> int:
        problem = apply_run_dir_mode(self.run_dir, self.document.get(MODE_KEY))
        if problem:
            print(f"nsml-hpc: run_dir_mode: cannot change {problem}", file=sys.stderr)
        try:
            resume, metrics_line, repairs = self._prepare()
        except FileNotFoundError as exc:
            self.events.write("started", host=socket.gethostname(), restart_count=self.restart)
            self.events.write("ended", exit_code=EXIT_NO_START_SNAPSHOT, error=str(exc))
            print(f"nsml-hpc: {exc}", file=sys.stderr)
            return EXIT_NO_START_SNAPSHOT
        self.events.write(
            "started",
            host=socket.gethostname(),
            restart_count=self.restart,
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            pid=os.getpid(),
            **self._launch_details(),
            heartbeat=self.heartbeat,
            metrics_line=metrics_line,
            resume_tag=resume.manifest.tag if resume else None,
            resume_step=resume.manifest.step if resume else None,
            resume_source=resume.source if resume else None,
            repairs=repairs or None,
        )
        if resume is not None:
            self.events.write(
                "resumed",
                snapshot=resume.manifest.tag,
                step=resume.manifest.step,
                source=resume.source,
                restart_count=self.restart,
            )
        try:
            self._stage_dataset()
        except StagingError as exc:
            self.events.write("ended", exit_code=EXIT_STAGING_FAILED, error=str(exc))
            print(f"nsml-hpc: cannot stage the dataset: {exc}", file=sys.stderr)
            return EXIT_STAGING_FAILED
        monitor = GpuMonitor.start_if_available(self.run_dir)
        try:
            return self._supervise(resume)
        finally:
            if monitor is not None:
                monitor.stop()
            self._unstage_dataset()

    def _launch_details(self) -> dict[str, Any]:
        """What the started event says about a multi-node launch (nothing for plain)."""
        if self.launch_command is None:
            return {}
        return {
            "launch": self.spec.launch,
            "nodes": os.environ.get("SLURM_JOB_NODELIST"),
            "node_count": self.spec.resources.nodes,
            "master_addr": os.environ.get("MASTER_ADDR"),
            "master_port": os.environ.get("MASTER_PORT"),
        }

    def _supervise(self, resume: ResumePoint | None) -> int:
        code_dir = self.run_dir / CODE_DIR
        command = self.launch_command or command_for(self.document, code_dir)
        try:
            child = subprocess.Popen(command, cwd=code_dir, env=self._child_env(resume))
        except OSError as exc:
            self.events.write("ended", exit_code=127, error=str(exc))
            print(f"nsml-hpc: cannot start the training script: {exc}", file=sys.stderr)
            return 127
        self.child = child
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self._forward)
        signal.signal(signal.SIGUSR2, self._on_warning)
        while True:
            try:
                returncode = child.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            self.relay.poll()
            if self.term_pending:
                self.term_pending = False
                self._signal_tasks("TERM")
            self._beat()
            if self.warned_at is not None and not self.warning_handled:
                stopped = self._handle_warning(child)
                if stopped is not None:
                    return 0 if self.requeued else stopped
        if self.warned_at is not None and not self.warning_handled:
            # The warning came as the script ended by itself: it finished, nothing to requeue.
            self.events.write("signal", signal="USR2", note="after the training script ended")
        exit_code = returncode if returncode >= 0 else 128 - returncode
        self.relay.poll(force=True)
        self.events.write(
            "ended",
            exit_code=exit_code,
            signal=signal.Signals(-returncode).name if returncode < 0 else None,
        )
        return exit_code


def run(run_dir: Path, launch_command: list[str] | None = None) -> int:
    return Wrapper(run_dir, launch_command).run()
