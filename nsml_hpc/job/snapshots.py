"""The in-job snapshot API: ``save``, ``load``, ``should_checkpoint`` (and torch helpers).
Standard library only; torch is imported only when a torch helper is called.

    with nsml_hpc.save(step=epoch) as folder:          # a temp folder; atomic on exit
        torch.save(model.state_dict(), folder / "model.pt")
    nsml_hpc.save(lambda folder: ..., step=epoch)     # the same, as a callback
    path = nsml_hpc.load("best:val_loss", session="mnist/3")
    if nsml_hpc.should_checkpoint(): ...              # Slurm warned: the job ends soon

Inside a session snapshots go to ``<run_dir>/snapshots/<tag>/``; outside one (a laptop) to
``./nsml-snapshots/<tag>/`` (``NSML_HPC_LOCAL_SNAPSHOTS`` moves it), so scripts run anywhere.

With several ranks only global rank 0 writes snapshots (``nsml_hpc.session.rank``). On other
ranks ``save`` hands the block (or the callback) a scratch folder in the node's temporary
directory and removes it afterwards, so code that saves on every rank (a collective
``state_dict`` gather, say) runs unchanged and nothing is written twice; guard large writes
with ``if nsml_hpc.session.is_primary`` to skip them there. ``load`` and
``should_checkpoint`` work on every rank.
"""

from __future__ import annotations

import getpass
import importlib
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, overload

from nsml_hpc.errors import NotFoundError, SnapshotError, SpecError
from nsml_hpc.job.api import SessionInfo, global_rank, latest_metrics
from nsml_hpc.job.layout import (
    CHECKPOINT_FLAG,
    LOCAL_SNAPSHOTS_DIR,
    LOCAL_SNAPSHOTS_ENV,
    RESTART_COUNT_ENV,
    RUN_DIR_ENV,
    RUN_ROOT_ENV,
    SESSION_ENV,
    SESSION_FILE,
    SNAPSHOTS_DIR,
)
from nsml_hpc.job.snapshot_format import choose, default_tag, parse_selector
from nsml_hpc.job.snapshot_store import PendingSnapshot, list_snapshots

FLAG_CHECK_SECONDS = 1.0
_SESSION_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class SnapshotWarning(UserWarning):
    """A snapshot was skipped (damaged, edited by hand)."""


def _run_dir() -> Path | None:
    run_dir = os.environ.get(RUN_DIR_ENV)
    return Path(run_dir) if run_dir else None


def snapshots_root() -> Path:
    """Where ``save`` writes: the session's ``snapshots/``, or the local folder outside one."""
    run_dir = _run_dir()
    if run_dir is not None:
        return run_dir / SNAPSHOTS_DIR
    return Path(os.environ.get(LOCAL_SNAPSHOTS_ENV) or LOCAL_SNAPSHOTS_DIR).absolute()


def _session_name() -> str | None:
    return os.environ.get(SESSION_ENV) or None


class SnapshotWriter:
    """``with nsml_hpc.save(...) as folder:`` -- ``path`` is the snapshot after the block."""

    def __init__(self, tag: str | None, step: int | None) -> None:
        if step is not None and (isinstance(step, bool) or not hasattr(step, "__index__")):
            raise TypeError(f"save(step=...) must be an int, got {step!r}")
        self._tag = tag
        self._step = int(step) if step is not None else None
        self._pending: PendingSnapshot | None = None
        self._scratch: Path | None = None
        self.path: Path | None = None
        self.target: Path | None = None  # where the snapshot goes (rank 0 writes it)

    def __enter__(self) -> Path:
        last_step, _ = latest_metrics()
        if self._step is None:
            self._step = last_step
        tag = self._tag if self._tag is not None else default_tag(self._step, time.time())
        self.target = snapshots_root() / tag
        rank = global_rank()
        if rank != 0:
            self._scratch = Path(tempfile.mkdtemp(prefix=f"nsml-hpc-rank{rank}-"))
            return self._scratch
        self._pending = PendingSnapshot.begin(snapshots_root(), tag)
        return self._pending.folder

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
            return
        pending = self._pending
        if pending is None:
            return
        if exc_type is not None:
            pending.abort()
            return
        try:
            metrics_step, metrics = latest_metrics()
            self.path = pending.commit(
                step=self._step,
                metrics={name: _finite(value) for name, value in metrics.items()},
                job_id=os.environ.get("SLURM_JOB_ID"),
                session=_session_name(),
                restart_count=int(os.environ.get(RESTART_COUNT_ENV, "0") or 0),
                extra={"metrics_step": metrics_step, "host": os.uname().nodename},
            )
        except BaseException:
            pending.abort()
            raise


def _finite(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


@overload
def save(
    writer: None = None, /, *, tag: str | None = None, step: int | None = None
) -> SnapshotWriter: ...


@overload
def save(
    writer: Callable[[Path], object], /, *, tag: str | None = None, step: int | None = None
) -> Path: ...


def save(
    writer: Callable[[Path], object] | None = None,
    /,
    *,
    tag: str | None = None,
    step: int | None = None,
) -> Any:
    """Make a snapshot. Without ``writer``: a context manager yielding the folder to write
    into. With ``writer``: call ``writer(folder)`` and return the snapshot's path.

    The tag defaults to ``step-<step>``; ``step`` to the last reported step. The manifest
    records the step, the last value of every reported metric, and each file's size. Saving a
    tag that exists replaces it (atomically, for readers). On ranks other than 0 the folder
    is a scratch folder, removed afterwards, and the path returned is where rank 0's
    snapshot of that tag goes."""
    snapshot = SnapshotWriter(tag, step)
    if writer is None:
        return snapshot
    with snapshot as folder:
        writer(folder)
    path = snapshot.path or snapshot.target
    assert path is not None
    return path


# --- load -------------------------------------------------------------------------------------


def _config_file() -> Path:
    """The front end's config file (``nsml_hpc.config.locations.config_file``, with the
    standard library only: this module runs inside jobs)."""
    named = os.environ.get("NSML_HPC_CONFIG")
    if named:
        return Path(named).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "nsml-hpc" / "config.toml"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nsml-hpc" / "config.toml"


def configured_run_root() -> Path:
    """The run root as the front end sees it: ``NSML_HPC_RUN_ROOT``, else the config file's
    ``run_root``, else ``~/nsml-runs`` (what ``load(session=...)`` searches outside a job)."""
    env_root = os.environ.get(RUN_ROOT_ENV)
    if env_root:
        return Path(env_root).expanduser()
    try:
        import tomllib

        data = tomllib.loads(_config_file().read_text("utf-8"))
    except (OSError, ValueError):
        data = {}
    configured = data.get("run_root")
    if isinstance(configured, str) and configured.strip():
        return Path(configured).expanduser()
    return Path.home() / "nsml-runs"


def _run_root_and_user() -> tuple[Path, str]:
    own = _run_dir()
    env_root = os.environ.get(RUN_ROOT_ENV)
    if own is not None and len(own.parents) >= 3:
        root = Path(env_root) if env_root else own.parents[2]
        return root, own.parents[1].name
    return configured_run_root(), getpass.getuser()


def _holds_session(run_dir: Path, name: str) -> bool:
    try:
        document = json.loads((run_dir / SESSION_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("name") == name


def resolve_run_dir(session: str) -> Path:
    """``project/N`` (own user first, then any user under the run root), ``user/project/N``,
    or an absolute run directory."""
    if session.startswith("/"):
        path = Path(session)
        if (path / SESSION_FILE).is_file() or (path / SNAPSHOTS_DIR).is_dir():
            return path
        raise NotFoundError(f"{session} is not a session's run directory")
    parts = session.split("/")
    if (
        len(parts) not in (2, 3)
        or not parts[-1].isdigit()
        or not all(_SESSION_PART.fullmatch(part) and ".." not in part for part in parts)
    ):
        raise SpecError(f"a session is named PROJECT/N or USER/PROJECT/N, got {session!r}")
    root, user = _run_root_and_user()
    if len(parts) == 3:
        path = root.joinpath(*parts)
        if path.is_dir():
            return path
        raise NotFoundError(f"no session {session!r} under {root}")
    name = "/".join(parts)
    mine = root / user / parts[0] / parts[1]
    if mine.is_dir():
        return mine
    try:
        users = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    except OSError:
        users = []
    for other in users:
        candidate = root / other / parts[0] / parts[1]
        if candidate.is_dir() and _holds_session(candidate, name):
            return candidate
    raise NotFoundError(f"no session {name!r} under {root}")


def load(selector: str = "latest", session: str | None = None) -> Path:
    """The folder of a snapshot: ``"latest"``, a tag, or ``"best:<metric>[:min|max]"``
    (without ``:min``/``:max`` the direction follows :mod:`nsml_hpc.job.direction` and this
    session's ``[metrics]`` overrides), of this session or of ``session``. Damaged snapshots
    (files missing) are skipped with a warning; naming a damaged one by its tag is an error."""
    choice = parse_selector(selector, SessionInfo(_run_dir()).metric_directions)
    if session is None:
        root, where = snapshots_root(), _session_name() or str(snapshots_root())
    else:
        root, where = resolve_run_dir(session) / SNAPSHOTS_DIR, session
    listing = list_snapshots(root)
    if choice.kind == "tag" and choice.tag in listing.damaged:
        raise SnapshotError(
            f"snapshot {where}:{choice.tag} is damaged ({listing.damaged[choice.tag]})"
        )
    for name, why in sorted(listing.damaged.items()):
        warnings.warn(
            f"nsml-hpc: snapshot {where}:{name} is damaged ({why}); skipped",
            SnapshotWarning,
            stacklevel=2,
        )
    chosen = choose([manifest for manifest, _ in listing.intact], choice, where)
    return root / chosen.tag


# --- checkpoint requests ------------------------------------------------------------------------


class _CheckpointRequest:
    def __init__(self) -> None:
        self.requested = False
        self.ready = False
        self.flag: Path | None = None
        self.next_check = 0.0

    def setup(self) -> None:
        self.ready = True
        run_dir = _run_dir()
        self.flag = run_dir / CHECKPOINT_FLAG if run_dir is not None else None
        if self.flag is None or threading.current_thread() is not threading.main_thread():
            return
        # Only where nobody else handles USR2: the training code's own handler wins (the
        # wrapper then forwards the signal to it, and the flag file still tells us).
        if signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL:
            signal.signal(signal.SIGUSR2, self._on_signal)

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True

    def check_flag(self) -> bool:
        assert self.flag is not None
        try:
            data = json.loads(self.flag.read_text("utf-8"))
        except (OSError, ValueError):
            return False
        restart = int(os.environ.get(RESTART_COUNT_ENV, "0") or 0)
        return isinstance(data, dict) and data.get("restart_count", restart) == restart


_request = _CheckpointRequest()


def should_checkpoint() -> bool:
    """True once Slurm has warned that this job ends soon (time limit or preemption): save a
    snapshot now; the job is requeued and resumes from it. Cheap enough to call every step."""
    if _request.requested:
        return True
    if not _request.ready:
        _request.setup()
    if _request.flag is None:
        return False
    now = time.monotonic()
    if now < _request.next_check:
        return False
    _request.next_check = now + FLAG_CHECK_SECONDS
    if _request.check_flag():
        _request.requested = True
    return _request.requested


# --- torch helpers (torch imported on first use only) -------------------------------------------


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise SnapshotError(
            f"the torch helpers need PyTorch, which is not importable: {exc}"
        ) from exc


def _file_name(name: str) -> str:
    if not _SESSION_PART.fullmatch(name) or ".." in name:
        raise SpecError(f"invalid object name {name!r} for a snapshot file")
    return f"{name}.pt"


def save_torch(*, step: int | None = None, tag: str | None = None, **objects: Any) -> Path:
    """Snapshot torch objects: ``save_torch(step=5, model=model, optimizer=opt)`` writes each
    one's ``state_dict()`` (or the object itself) to ``<name>.pt``."""
    torch = _torch()

    def write(folder: Path) -> None:
        for name, obj in objects.items():
            state = obj.state_dict() if hasattr(obj, "state_dict") else obj
            torch.save(state, folder / _file_name(name))

    return save(write, step=step, tag=tag)


def load_torch(
    source: str | Path = "latest",
    *,
    session: str | None = None,
    map_location: Any = "cpu",
    **objects: Any,
) -> dict[str, Any]:
    """Load ``<name>.pt`` of a snapshot (a selector, or a folder such as
    ``nsml_hpc.session.resume_from``) into each object with ``load_state_dict``; returns what
    was loaded, by name."""
    torch = _torch()
    folder = Path(source) if isinstance(source, Path) else load(source, session=session)
    loaded: dict[str, Any] = {}
    for name, obj in objects.items():
        path = folder / _file_name(name)
        if not path.is_file():
            raise SnapshotError(f"snapshot {folder} has no {path.name}")
        state = torch.load(path, map_location=map_location)
        if hasattr(obj, "load_state_dict"):
            obj.load_state_dict(state)
        loaded[name] = state
    return loaded
