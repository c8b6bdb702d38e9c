"""The one front-end interface: what the CLI, the TUI and notebooks call.

A :class:`Workspace` is a :class:`~nsml_hpc.context.Context` (settings, catalog, backends) with
the operations users have on it: submit, sweep, sync, list, show, stop, remove, logs, memo,
diff, fork, snapshots, gc, compare, leaderboard, curves, clusters and their health. Each method
delegates to its feature package (which takes a context) and imports it when first called, so
opening a workspace, or printing ``--help``, loads nothing a command does not use. The few
operations a command needs before any catalog exists (cluster profiles, gc's cron line) are
static methods.

    with Workspace.open() as ws:
        for row in ws.sessions(project="mnist"):
            print(row.name, row.state_text, row.elapsed_s)

**The rule for front ends.** ``nsml_hpc/cli/`` and ``tui/`` import from the library only:

1. this module: every *operation*, i.e. anything that reads or writes the catalog, a cluster,
   a run directory, the config files or the crontab, is a :class:`Workspace` method;
2. :mod:`nsml_hpc.errors` (the error tree) and :mod:`nsml_hpc.formatting` (how values print);
3. *values* from the feature packages: the data types the operations take and return
   (classes, type aliases and constants: ``SessionSpec``, ``ForkRequest``, ``SessionRow``,
   ``SessionQuery``, ``SORT_COLUMNS``), and pure functions of values that touch no state, the
   parsers of a user's text and the formatters (``job.spec.parse_count``,
   ``sweeps.grid.parse_grid``, ``snapshots.fork.parse_changes``,
   ``slurm.timefmt.format_duration``).

Never :mod:`nsml_hpc.catalog` or :mod:`nsml_hpc.backends`, not even a type under
``TYPE_CHECKING``: catalog rows and backends stay behind this face (a row reaches a front end
as a :class:`~nsml_hpc.sessions.views.SessionRow`). ``tests/pure/test_headless.py`` checks all
three points on every module of ``cli/`` and ``tui/``, imports inside functions included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar

from nsml_hpc.context import Context

if TYPE_CHECKING:
    import pandas

    from nsml_hpc.backends.base import PassphrasePrompt
    from nsml_hpc.catalog.hparam_events import HParamChange
    from nsml_hpc.catalog.quickread import QuickReader
    from nsml_hpc.catalog.series import Series
    from nsml_hpc.catalog.team import TeamSetup
    from nsml_hpc.clusters.check import ClusterReport
    from nsml_hpc.clusters.hostkeys import HostKeyCheck
    from nsml_hpc.clusters.info import ClusterOverview
    from nsml_hpc.code.upload import Progress as UploadProgress
    from nsml_hpc.config.cluster_profiles import ClusterProfile
    from nsml_hpc.config.settings import Settings
    from nsml_hpc.config.site_policy import SlurmPolicy
    from nsml_hpc.config_report import Entry as SettingEntry
    from nsml_hpc.datasets.store import DatasetVersion, Pushed
    from nsml_hpc.experiments.compare import Comparison
    from nsml_hpc.experiments.views import Curve, Standing
    from nsml_hpc.job.direction import Goal
    from nsml_hpc.job.spec import SessionSpec
    from nsml_hpc.sessions.actions import Removed, StateNote
    from nsml_hpc.sessions.diff import SessionDiff
    from nsml_hpc.sessions.hparams import HParamSet, HParamState
    from nsml_hpc.sessions.logtail import LogTail
    from nsml_hpc.sessions.query import SessionQuery
    from nsml_hpc.sessions.views import SessionRow
    from nsml_hpc.slurm.demand import Demand
    from nsml_hpc.slurm.sinfo import NodeGpus, PartitionGpus
    from nsml_hpc.snapshots.actions import SnapshotRow, Usage
    from nsml_hpc.snapshots.fork import Forked, ForkRequest
    from nsml_hpc.snapshots.gc import GcResult
    from nsml_hpc.snapshots.retention import Policies
    from nsml_hpc.submit.create import Prepared, Submitted
    from nsml_hpc.submit.dependencies import Resolved
    from nsml_hpc.submit.placement import Placement
    from nsml_hpc.sweeps.submit import Progress as SweepProgress
    from nsml_hpc.sweeps.submit import SubmittedSweep
    from nsml_hpc.sync.run import SyncReport


T = TypeVar("T")


class Reader(Protocol):
    """What ``ps`` and ``show`` read through: a :class:`Workspace`, or on the fast path a
    :class:`QuickView` (the same answers, without SQLAlchemy)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def user(self) -> str: ...
    def owner_for(self, user: str | None, all_users: bool) -> str | None: ...
    def sessions(
        self,
        *,
        project: str | None = None,
        cluster: str | None = None,
        limit: int | None = None,
        sweep: str | None = None,
        owner: str | None = None,
    ) -> list[SessionRow]: ...
    def shared(self) -> bool: ...
    def show(self, name: str, *, now: float | None = None) -> dict[str, Any]: ...
    def run_dir_note(self, name: str) -> str | None: ...


class QuickView:
    """:class:`Reader` over a SQLite catalog read with the standard library
    (:mod:`nsml_hpc.catalog.quickread`); any question it cannot answer exactly raises its
    ``Fallback``, which :meth:`Workspace.read` turns into the same question to a full
    workspace."""

    def __init__(self, settings: Settings, reader: QuickReader) -> None:
        self.settings = settings
        self.reader = reader

    @property
    def user(self) -> str:
        return self.reader.user

    def owner_for(self, user: str | None, all_users: bool) -> str | None:
        from nsml_hpc.catalog.quickread import Fallback

        if user is not None and (all_users or user not in self.reader.catalog_users()):
            raise Fallback("the full path says what is wrong with --user")
        return None if all_users else (user if user is not None else self.user)

    def sessions(
        self,
        *,
        project: str | None = None,
        cluster: str | None = None,
        limit: int | None = None,
        sweep: str | None = None,
        owner: str | None = None,
    ) -> list[SessionRow]:
        from nsml_hpc.sessions.views import session_rows

        return session_rows(
            self.reader, project=project, cluster=cluster, limit=limit, sweep=sweep, owner=owner
        )

    def shared(self) -> bool:
        return self.reader.holds_other_users()

    def show(self, name: str, *, now: float | None = None) -> dict[str, Any]:
        from nsml_hpc.sessions.views import session_detail

        return session_detail(self.reader, name, now=now)

    def run_dir_note(self, name: str) -> str | None:
        """None for the caller's own session; another user's needs its cluster: Fallback."""
        from nsml_hpc.catalog.quickread import Fallback

        if self.reader.get_session(name).owner != self.user:
            raise Fallback("whether its run directory is readable is the cluster's to say")
        return None

    def has_sync_work(self, now: float) -> bool:
        """Whether a sync could find anything for the caller (conservative: any session of
        theirs not ended, or ended lately, or with an unconfirmed end, or a site policy
        warning to repeat, says yes)."""
        from nsml_hpc.slurm.states import TERMINAL_STATES
        from nsml_hpc.sync.clocks import LEGACY_LOST_REASON, RECENTLY_ENDED_SECONDS
        from nsml_hpc.sync.events_state import PROVISIONAL_PREFIX

        if self.settings.site.warnings:
            return True
        return self.reader.has_sync_work(
            terminal=sorted(str(state) for state in TERMINAL_STATES),
            since=now - RECENTLY_ENDED_SECONDS,
            provisional=PROVISIONAL_PREFIX,
            legacy_lost=LEGACY_LOST_REASON,
        )

    def sync_is_quiet(self, now: float) -> bool:
        """Whether the last full sync's watch list shows that a sync now would do nothing
        (:mod:`nsml_hpc.sync.watchlist`: no watched file changed, nothing due by the clock,
        no catalog row it reads changed)."""
        from nsml_hpc.sync.watchlist import still_quiet

        if self.settings.site.warnings:
            return False
        return still_quiet(self.settings.catalog_url, self.settings, self.reader, now)


def _no_progress(phase: str, done: int, total: int) -> None:
    """A sweep's progress, shown nowhere."""


class Workspace(Context):
    """Settings, the catalog and the clusters' backends, with the users' operations."""

    # --- the login node's fast path (ps, show) ------------------------------------------------

    @classmethod
    def read(
        cls,
        read: Callable[[Reader], T],
        *,
        settings: Settings | None = None,
        sync: bool = False,
        passphrase_prompt: PassphrasePrompt | None = None,
        on_open: Callable[[Workspace], None] | None = None,
    ) -> T:
        """``read`` (ps, show) on the fast path when the catalog allows it (a SQLite file of
        the known schema; with ``sync``, only when a sync could find nothing new), else, or
        when the fast path cannot answer exactly, on a full workspace (``on_open`` runs first:
        the sync, notes for the user). The same answer either way."""
        from nsml_hpc.catalog.quickread import Fallback, open_quick
        from nsml_hpc.config.settings import load_settings

        settings = settings or load_settings()
        reader = open_quick(settings.catalog_url)
        if reader is not None:
            try:
                view = QuickView(settings, reader)
                now = time.time()
                if not sync or not view.has_sync_work(now) or view.sync_is_quiet(now):
                    return read(view)
            except Fallback:
                pass
            finally:
                reader.close()
        with cls.open(settings, passphrase_prompt=passphrase_prompt) as workspace:
            if on_open is not None:
                on_open(workspace)
            return read(workspace)

    # --- submit and sweep -------------------------------------------------------------------

    @staticmethod
    def code_root_for(script: Path, cwd: Path) -> Path:
        """The folder a submit snapshots: ``cwd`` if it holds ``script``, else its folder."""
        from nsml_hpc.submit.create import code_root_for

        return code_root_for(script, cwd)

    def place(self, spec: SessionSpec) -> Placement:
        """``--partition auto``: the partition where the job starts first (sinfo + test-only)."""
        from nsml_hpc.submit.placement import place

        return place(spec, self.backend_for(spec.cluster))

    def resolve_after(self, spec: SessionSpec) -> Resolved:
        """``--after SESSION``: the job ids of ``spec.after`` (same cluster) added to its
        ``--dependency`` as ``afterok`` (sync the cluster first for fresh states)."""
        from nsml_hpc.submit.dependencies import resolve_after

        return resolve_after(self.catalog, spec)

    def check_fits(self, spec: SessionSpec) -> None:
        """A multi-node or typed-GPU request its partition can never hold: SpecError in one
        line (one sinfo call; nothing is created)."""
        from nsml_hpc.submit.fit import check_fits

        check_fits(spec, self.backend_for(spec.cluster))

    def prepare(self, spec: SessionSpec, code_root: Path) -> Prepared:
        """Validate ``spec`` (with its cluster's defaults) and snapshot ``code_root``; on a
        remote cluster whose profile names no ``remote_python``, find the Python its jobs
        run with (asked once a day: :mod:`nsml_hpc.submit.interpreter`)."""
        from dataclasses import replace

        from nsml_hpc.submit.create import prepare
        from nsml_hpc.submit.interpreter import job_profile

        prepared = prepare(spec, self.settings, code_root)
        if prepared.profile.remote and not prepared.profile.remote_python:
            backend = self.backend_for(prepared.spec.cluster)
            prepared = replace(
                prepared, profile=job_profile(prepared.profile, self.catalog, backend)
            )
        return prepared

    def prepare_submission(
        self,
        spec: SessionSpec,
        code_root: Path,
        *,
        sync: Callable[[list[str]], object] | None = None,
        note: Callable[[str], None] | None = None,
    ) -> Prepared:
        """Every step before a submit or a sweep, the same for the CLI and the notebook
        client: ``--partition auto`` placed, ``--after`` sessions resolved to job ids (their
        cluster synced first by ``sync``, default :meth:`sync`, for fresh states), the spec
        validated with its cluster's defaults and the code snapshotted (:meth:`prepare`),
        and a request no partition can hold refused (:meth:`check_fits`). ``note`` hears
        what the user may want to know (the placement, an ``--after`` already done).
        Nothing is created."""
        from nsml_hpc.submit.placement import AUTO

        tell = note or (lambda text: None)
        if spec.resources.partition == AUTO:
            placement = self.place(spec)
            tell(f"placement: {placement.explanation}")
            spec = placement.spec
        if spec.after:
            (sync or self.sync)([spec.cluster])
            resolved = self.resolve_after(spec)
            for name in resolved.already_done:
                tell(f"--after {name}: it already completed; nothing to wait for")
            spec = resolved.spec
        prepared = self.prepare(spec, code_root)
        self.check_fits(prepared.spec)
        return prepared

    def dry_run(self, prepared: Prepared) -> str:
        """The sbatch script ``submit`` would send; nothing is written or submitted."""
        from nsml_hpc.submit.create import dry_run

        backend = self.backend_for(prepared.spec.cluster)
        return dry_run(prepared, self.catalog, self.settings, backend)

    def submit(self, prepared: Prepared, *, progress: UploadProgress | None = None) -> Submitted:
        """Create the run directory, the catalog row and the Slurm job (all or nothing)."""
        from nsml_hpc.submit.create import submit

        backend = self.backend_for(prepared.spec.cluster)
        done = submit(prepared, self.catalog, self.settings, backend, progress=progress)
        self.ask_slurm_soon([done.cluster], f"{done.name} submitted")
        return done

    def sweep(
        self,
        prepared: Prepared,
        configurations: list[dict[str, str]],
        *,
        max_parallel: int | None = None,
        progress: SweepProgress = _no_progress,
    ) -> SubmittedSweep:
        """One session per configuration, submitted as one job array."""
        from nsml_hpc.sweeps.submit import submit_sweep

        backend = self.backend_for(prepared.spec.cluster)
        done = submit_sweep(
            prepared,
            configurations,
            self.catalog,
            self.settings,
            backend,
            max_parallel=max_parallel,
            progress=progress,
        )
        self.ask_slurm_soon([prepared.spec.cluster], f"sweep {done.name} submitted")
        return done

    def sweep_dry_run(
        self,
        prepared: Prepared,
        configurations: list[dict[str, str]],
        *,
        max_parallel: int | None = None,
    ) -> str:
        """The array script ``sweep`` would submit; nothing is written or submitted."""
        from nsml_hpc.sweeps.submit import dry_run_sweep

        backend = self.backend_for(prepared.spec.cluster)
        return dry_run_sweep(
            prepared,
            configurations,
            self.catalog,
            self.settings,
            backend,
            max_parallel=max_parallel,
        )

    # --- sync and health --------------------------------------------------------------------

    def sync(self, clusters: Collection[str] | None = None, *, refresh: bool = False) -> SyncReport:
        """One sync of every cluster with live sessions (or of ``clusters``): what the run
        directories gained, and at most one sacct each when the Slurm clock says so (or, with
        ``refresh``, a user asked: as soon as the poll floor allows)."""
        from nsml_hpc.sessions.actions import sync_now

        return sync_now(self, clusters, refresh=refresh)

    def ask_slurm_soon(self, clusters: Collection[str], why: str) -> None:
        """A user acted on ``clusters``: their next sync, in any process, asks Slurm as soon
        as the poll floor allows (instead of at the Slurm clock's pace)."""
        from nsml_hpc.catalog.slurm_clock import want_slurm

        want_slurm(self.catalog, clusters, self.catalog.user, time.time(), why)

    def slurm_policy(self) -> SlurmPolicy:
        """The effective Slurm clock: these settings held to the site's policy."""
        return self.settings.slurm_policy

    def unreachable_clusters(self, report: SyncReport) -> dict[str, str]:
        """Clusters whose last query failed, with the error (another process's, if skipped)."""
        from nsml_hpc.catalog.polls import poll_status
        from nsml_hpc.clusters.health import unreachable_clusters

        polls = poll_status(self.catalog) if report.skipped_by_floor else {}
        return unreachable_clusters(report, polls)

    # --- sessions ---------------------------------------------------------------------------

    def sessions(
        self,
        *,
        project: str | None = None,
        cluster: str | None = None,
        limit: int | None = None,
        sweep: str | None = None,
        owner: str | None = None,
    ) -> list[SessionRow]:
        """``ps``: submitted sessions (``owner``'s, or everyone's), newest first, with job ids,
        GPU use, requeues and hyperparameters (of ``project``, ``cluster``, ``sweep``
        ``PROJECT/sweep-N``)."""
        from nsml_hpc.sessions.views import session_rows

        return session_rows(
            self.catalog,
            project=project,
            cluster=cluster,
            limit=limit,
            sweep=sweep,
            owner=owner,
        )

    def session_names(self, prefix: str = "", limit: int = 1000) -> list[str]:
        """Names of sessions starting with ``prefix``, newest first (shell completion)."""
        from nsml_hpc.catalog.sessions import session_names

        return session_names(self.catalog, prefix, limit)

    def sweep_names(self, project: str | None = None) -> list[str]:
        """Sweeps in the catalog, ``PROJECT/sweep-N`` (of ``project`` if given)."""
        from nsml_hpc.catalog.sessions import sweep_names

        return sweep_names(self.catalog, project)

    def session(self, name: str) -> SessionRow:
        """One session's row (:class:`~nsml_hpc.errors.NotFoundError` if there is none)."""
        from nsml_hpc.sessions.views import one_session_row

        return one_session_row(self.catalog, name)

    def session_page(
        self, query: SessionQuery, offset: int, limit: int, *, now: float
    ) -> list[SessionRow]:
        """Rows ``offset`` .. ``offset + limit`` of the filtered, sorted session table."""
        from nsml_hpc.sessions.query import session_page

        return session_page(self.catalog, query, offset, limit, now=now)

    def count_sessions(self, query: SessionQuery) -> int:
        """How many sessions ``query``'s filter matches."""
        from nsml_hpc.sessions.query import count_sessions

        return count_sessions(self.catalog, query)

    def project_counts(self, query: SessionQuery) -> list[tuple[str, int]]:
        """(project, matching sessions) in project order: the groups of a grouped table."""
        from nsml_hpc.sessions.query import project_counts

        return project_counts(self.catalog, query)

    def matching_names(self, query: SessionQuery) -> list[str]:
        """Every session name ``query``'s filter matches (for "mark all")."""
        from nsml_hpc.sessions.query import matching_names

        return matching_names(self.catalog, query)

    def session_clusters(self) -> list[str]:
        """Clusters that sessions in the catalog ran on, sorted."""
        from nsml_hpc.sessions.query import session_clusters

        return session_clusters(self.catalog)

    def show(self, name: str, *, now: float | None = None) -> dict[str, Any]:
        """Everything ``show`` prints about a session, as JSON-ready data."""
        from nsml_hpc.sessions.views import session_detail

        return session_detail(self.catalog, name, now=now)

    def stop(self, name: str) -> list[str]:
        """Cancel the session's live job (one scancel); returns the job ids."""
        from nsml_hpc.sessions.actions import stop_session

        stopped = stop_session(self, name)
        self.ask_slurm_soon([self.session(name).cluster], f"{name} stopped")
        return stopped

    def stop_idle(self, min_idle_seconds: float) -> list[tuple[str, float]]:
        """Cancel running sessions whose GPUs sat at 0 % that long: (session, idle seconds)."""
        from nsml_hpc.sessions.actions import stop_idle_sessions

        stopped = stop_idle_sessions(self, min_idle_seconds)
        clusters = {self.session(name).cluster for name, _ in stopped}
        if clusters:
            self.ask_slurm_soon(clusters, "idle sessions stopped")
        return stopped

    def remove(self, name: str, *, purge: bool = False) -> Removed:
        """Forget a finished session; ``purge`` deletes its run directory too."""
        from nsml_hpc.sessions.actions import remove_session

        return remove_session(self, name, purge=purge)

    def set_memo(self, name: str, memo: str) -> None:
        """Replace the session's memo (one line)."""
        from nsml_hpc.sessions.actions import set_memo

        set_memo(self, name, memo)

    def diff(self, left: str, right: str, *, code: bool = True) -> SessionDiff:
        """How two sessions differ: spec, hyperparameters and (``code``) their code."""
        from nsml_hpc.sessions.diff import diff_sessions

        return diff_sessions(self.catalog, left, right, code=code)

    # --- logs -------------------------------------------------------------------------------

    def log_paths(self, name: str) -> list[str]:
        """The session's Slurm output files on its cluster, one per job id, oldest first."""
        from nsml_hpc.sessions.actions import log_paths

        return log_paths(self, name)

    def read_logs(self, name: str) -> Iterator[bytes]:
        """Everything the session printed so far."""
        from nsml_hpc.sessions.actions import read_logs

        return read_logs(self, name)

    def follow_logs(self, name: str) -> Iterator[bytes]:
        """The session's output, then new output as it comes, until the session ends."""
        from nsml_hpc.sessions.actions import follow_logs

        return follow_logs(self, name)

    def follow(self, name: str) -> Iterator[bytes | StateNote]:
        """The session's output as it comes, with a state note first and whenever its state
        or pending reason changes, until the session ends (``logs -f``, ``submit --follow``)."""
        from nsml_hpc.sessions.actions import follow_session

        return follow_session(self, name)

    def log_tail(self, name: str) -> LogTail:
        """A reader of what the session's log files gain (byte offsets, on its cluster)."""
        from nsml_hpc.catalog.sessions import get_session
        from nsml_hpc.sessions.logtail import LogTail

        return LogTail(self.backend_for(get_session(self.catalog, name).cluster).files)

    # --- snapshots and fork -----------------------------------------------------------------

    def snapshots(self, name: str) -> list[SnapshotRow]:
        """The session's snapshots, re-read from its run directory, oldest first."""
        from nsml_hpc.snapshots.actions import list_models

        return list_models(self, name).snapshots

    def remove_snapshot(self, name: str, tag: str) -> SnapshotRow:
        """Delete one snapshot, refusing pinned, forked-from and a live session's latest."""
        from nsml_hpc.snapshots.actions import remove_model

        return remove_model(self, name, tag)

    def pin_snapshot(self, name: str, tag: str, *, pinned: bool = True) -> str:
        """Pin (keep from gc and deletion) or unpin one snapshot (a tag, ``latest`` or
        ``best:M``); returns its tag."""
        from nsml_hpc.snapshots.actions import pin_model

        return pin_model(self, name, tag, pinned).tag

    def pull_snapshot(self, name: str, tag: str, destination: Path) -> Path:
        """Copy a snapshot folder to ``destination`` on this machine; returns the folder."""
        from nsml_hpc.snapshots.actions import pull_model

        return pull_model(self, name, tag, destination)

    def snapshot_usage(self, project: str | None = None) -> list[Usage]:
        """Disk used by snapshots, per session (of ``project``)."""
        from nsml_hpc.snapshots.actions import disk_usage

        return disk_usage(self, project=project)

    def fork(self, request: ForkRequest, *, dry: bool = False) -> Forked:
        """Submit a child of a session from one of its snapshots (``dry``: the script only)."""
        from nsml_hpc.snapshots.fork import fork_session

        forked = fork_session(self, request, dry=dry)
        if forked.submitted is not None:
            done = forked.submitted
            self.ask_slurm_soon([done.cluster], f"{done.name} submitted")
        return forked

    # --- gc ---------------------------------------------------------------------------------

    @staticmethod
    def gc_policies() -> Policies:
        """The retention policies of the config file's ``[gc]`` tables."""
        from nsml_hpc.config import locations
        from nsml_hpc.snapshots.retention import load_policies

        return load_policies(locations.config_file())

    @staticmethod
    def gc_log_file(policies: Policies) -> Path:
        """Where ``gc --cron`` logs: the policies' ``log_file``, else the data folder's."""
        from nsml_hpc.snapshots.gc import default_log_file

        return policies.log_file or default_log_file()

    def gc_lock(self) -> AbstractContextManager[None]:
        """Hold the gc lock, next to the catalog file (:class:`~nsml_hpc.errors.GcBusy` if
        another gc runs)."""
        from nsml_hpc.snapshots.gc import gc_lock, gc_lock_path

        return gc_lock(gc_lock_path(self.settings.catalog_url))

    def gc(
        self, *, apply: bool = False, project: str | None = None, policies: Policies | None = None
    ) -> GcResult:
        """Plan the deletions the retention policies ask for; with ``apply``, carry them out."""
        from nsml_hpc.snapshots.gc import run_gc

        return run_gc(self, apply=apply, project=project, policies=policies)

    @staticmethod
    def gc_cron_line(schedule: str) -> str:
        """The crontab line that runs ``nsml-hpc gc --cron`` on ``schedule``."""
        from nsml_hpc.snapshots.cron import cron_line

        return cron_line(schedule)

    @staticmethod
    def gc_scrontab(schedule: str) -> str:
        """The ``scrontab -e`` lines running the crontab line's command on ``schedule``."""
        from nsml_hpc.snapshots.cron import scrontab_entry

        return scrontab_entry(schedule)

    @staticmethod
    def install_gc_cron(line: str) -> bool:
        """Put ``line`` in the user's crontab; True if it replaced an earlier gc line."""
        from nsml_hpc.snapshots.cron import install_cron

        return install_cron(line)

    # --- experiments ------------------------------------------------------------------------

    def metric_goal(self, metric: str) -> Goal:
        """Which way ``metric`` is better: the direction rule with the config's ``[metrics]``."""
        return self.settings.metric_directions.goal(metric)

    def ranking_goal(self, metric: str, flag: Goal | None = None) -> tuple[str, Goal]:
        """The metric to rank by and which way: ``flag``, a ``NAME:min|max`` suffix, the rule."""
        from nsml_hpc.experiments.views import ranking_goal

        return ranking_goal(metric, flag, self.settings.metric_directions)

    def key_metric(self, names: Sequence[str]) -> str | None:
        """The metric tables key on: the configured one, else a preferred one of ``names``."""
        from nsml_hpc.experiments.keymetric import pick_key_metric

        return pick_key_metric(names, self.settings.key_metric)

    def metric_names(self, session: str | None = None) -> list[str]:
        """Names of the metrics reported by ``session`` (or by any session), sorted."""
        from nsml_hpc.catalog.summaries import metric_names

        if session is None:
            return metric_names(self.catalog)
        return metric_names(self.catalog, [self._session_id(session)])

    def metric_series(self, session: str, metric: str, buckets: int) -> Series:
        """The curve of ``metric`` in ``session``, downsampled to ``2 * buckets`` points."""
        from nsml_hpc.catalog.series import metric_series

        return metric_series(self.catalog, self._session_id(session), metric, buckets)

    def _session_id(self, name: str) -> int:
        from nsml_hpc.catalog.sessions import get_session

        session_id = get_session(self.catalog, name).id
        assert session_id is not None
        return session_id

    def metric_history(
        self, names: Sequence[str], metrics: Sequence[str] = ()
    ) -> dict[str, list[Any]]:
        """Every point of ``names`` (of ``metrics`` only, if given) as columns session, step,
        time, metric, value; points a resumed run redid are left out."""
        from nsml_hpc.experiments.history import history_columns

        return history_columns(self.catalog, names, metrics)

    def export(
        self,
        names: Sequence[str],
        fmt: str,
        destination: Path | None,
        *,
        metrics: Sequence[str] = (),
        force: bool = False,
        stdout: BinaryIO | None = None,
    ) -> int:
        """``export``: stream the points of ``names`` as csv, jsonl or parquet into
        ``destination`` (refused if it exists, unless ``force``) or ``stdout``."""
        from nsml_hpc.experiments.history import export_points

        return export_points(
            self.catalog, names, fmt, destination, metrics=metrics, force=force, stdout=stdout
        )

    def compare(self, names: Sequence[str]) -> Comparison:
        """Hyperparameters that differ and each metric's best and last per session."""
        from nsml_hpc.experiments.compare import compare_sessions

        return compare_sessions(self.catalog, names, self.settings.metric_directions)

    def comparison_table(
        self,
        names: Sequence[str],
        *,
        project: str | None = None,
        metrics: Sequence[str] = (),
        owner: str | None = None,
    ) -> pandas.DataFrame:
        """``compare``: one row per session (named, or every one of ``project``: everyone's,
        or ``owner``'s)."""
        from nsml_hpc.experiments.views import comparison_frame, sessions_of

        chosen = sessions_of(self.catalog, names, project, owner)
        directions = self.settings.metric_directions
        return comparison_frame(self.catalog, chosen, metrics, directions)

    def leaderboard(
        self,
        project: str,
        metric: str,
        goal: Goal | None = None,
        top: int | None = None,
        owner: str | None = None,
    ) -> list[Standing]:
        """``project``'s sessions (everyone's: the team's board, or ``owner``'s) ranked by
        their best ``metric`` (which way: ranking_goal)."""
        from nsml_hpc.experiments.views import leaderboard

        name, chosen = self.ranking_goal(metric, goal)
        return leaderboard(self.catalog, project, name, chosen, top, owner=owner)

    def curves(
        self,
        names: Sequence[str],
        metric: str,
        *,
        x: str = "step",
        buckets: int = 200,
        smoothing: int = 1,
    ) -> list[Curve]:
        """One downsampled curve of ``metric`` per session, over steps or time."""
        from nsml_hpc.experiments.views import curves

        return curves(self.catalog, names, metric, x=x, buckets=buckets, smoothing=smoothing)

    # --- teams: one catalog, everyone's sessions (docs/teams.md) -----------------------------

    @property
    def user(self) -> str:
        """Who the caller is in the catalog (the owner of what they submit)."""
        return self.catalog.user

    def shared(self) -> bool:
        """The catalog holds someone else's sessions: names show ``owner/project/N``."""
        from nsml_hpc.catalog.sessions import holds_other_users

        return holds_other_users(self.catalog)

    def owner_for(self, user: str | None, all_users: bool) -> str | None:
        """Whose sessions a view shows: ``user`` (who must have sessions here), everyone's
        (``all_users``: None), else the caller's own."""
        from nsml_hpc.catalog.sessions import check_user_exists
        from nsml_hpc.errors import SpecError

        if user is not None and all_users:
            raise SpecError("give --user NAME or --all-users, not both")
        if all_users:
            return None
        if user is not None:
            return check_user_exists(self.catalog, user)
        return self.catalog.user

    def whoami(self) -> dict[str, Any]:
        """Who you are, whether the database enforces ownership, the admins, the users."""
        from nsml_hpc.catalog.ownership import catalog_admins
        from nsml_hpc.catalog.sessions import catalog_users

        return {
            "user": self.catalog.user,
            "row_security": self.catalog.row_security,
            "admins": catalog_admins(self.catalog),
            "users": catalog_users(self.catalog),
        }

    def run_dir_note(self, name: str) -> str | None:
        """For another user's session whose run directory you cannot read: a note saying so."""
        from nsml_hpc.sessions.views import run_dir_note

        return run_dir_note(self, name)

    @staticmethod
    def setup_team(
        admin_url: str, users: list[str], *, admins: list[str], passwords: bool
    ) -> TeamSetup:
        """Make (or bring up to date) a team's PostgreSQL catalog (``catalog setup-team``)."""
        from nsml_hpc.catalog.team import setup_postgres_team

        return setup_postgres_team(admin_url, users, admins=admins, passwords=passwords)

    @staticmethod
    def share_sqlite_catalog(path: Path, group: str) -> str:
        """Share a SQLite catalog file with a Unix group; returns its URL."""
        from nsml_hpc.catalog.team import setup_sqlite_team

        return setup_sqlite_team(path, group)

    @staticmethod
    def upgrade_team_catalog(admin_url: str) -> list[str]:
        """Upgrade a team's catalog as its admin; returns the revisions applied."""
        from nsml_hpc.catalog.team import upgrade_postgres_team

        return upgrade_postgres_team(admin_url)

    @staticmethod
    def schema_head() -> str:
        """The schema revision this release writes."""
        from nsml_hpc.catalog.migrations import HEAD

        return HEAD

    # --- clusters ---------------------------------------------------------------------------

    @staticmethod
    def read_settings() -> Settings:
        """The settings and cluster profiles, read without opening the catalog."""
        from nsml_hpc.config.settings import load_settings

        return load_settings()

    @staticmethod
    def explain_settings() -> list[SettingEntry]:
        """``nsml-hpc config``: each effective setting, where it comes from, and the files."""
        from nsml_hpc.config.settings import load_settings
        from nsml_hpc.config_report import explain

        return explain(load_settings())

    @staticmethod
    def add_cluster(
        name: str, data: dict[str, Any], *, replace: bool = False
    ) -> tuple[ClusterProfile, Path, str | None]:
        """Validate a profile and write it to clusters.toml; returns it, the file and, for the
        ``pyslurm``/``auto`` backends, which backend runs here and why. A ``pyslurm`` that
        cannot drive this machine's Slurm is refused before anything is written."""
        from nsml_hpc.backends.registry import backend_choice
        from nsml_hpc.config.cluster_profiles import profile_from_dict
        from nsml_hpc.config.clusters_file import add_profile

        profile = profile_from_dict(name, data)
        choice = backend_choice(profile)
        return profile, add_profile(profile, replace=replace), choice

    def remove_cluster(self, name: str, *, force: bool = False) -> Path:
        """Remove a profile, refused while sessions on it are live (unless ``force``)."""
        from nsml_hpc.catalog.sessions import live_sessions
        from nsml_hpc.config.clusters_file import remove_profile
        from nsml_hpc.errors import SpecError

        live = [r.name for r in live_sessions(self.catalog, time.time()) if r.cluster == name]
        if live and not force:
            raise SpecError(
                f"cluster {name} has live sessions ({', '.join(live[:5])}); stop them, or pass "
                "--force to remove the profile anyway (they could no longer be followed)"
            )
        return remove_profile(name)

    def test_cluster(self, name: str) -> ClusterReport:
        """Connectivity, Slurm version, sacct, partitions, run root and job interpreter."""
        from nsml_hpc.clusters.check import check_cluster

        return check_cluster(self, name)

    @staticmethod
    def trust_cluster(name: str, confirm: Callable[[HostKeyCheck], bool]) -> list[HostKeyCheck]:
        """Check the host key of each server on the way; add new ones ``confirm`` accepts."""
        from nsml_hpc.clusters.hostkeys import trust_cluster
        from nsml_hpc.config.settings import load_settings

        return trust_cluster(load_settings().profile(name), confirm)

    def cluster_overview(
        self,
        cluster: str,
        *,
        user: str | None = None,
        now: float | None = None,
        explicit: bool = False,
    ) -> ClusterOverview:
        """GPUs per partition and ``user``'s queue: at most one sinfo + squeue per Slurm floor
        (``explicit``, a user's refresh: per action floor), spent from the hourly allowance."""
        from nsml_hpc.clusters.info import cluster_overview

        return cluster_overview(self, cluster, user=user, now=now, explicit=explicit)

    def gpu_nodes(self, cluster: str) -> tuple[list[NodeGpus], dict[str, Demand]]:
        """GPUs of every node (per partition) and the pending demand (one sinfo, one squeue);
        ``slurm.sinfo.partition_summary`` sums them per partition."""
        backend = self.backend_for(cluster)
        return backend.cluster_gpus(), backend.pending_demand()

    def gpus(self, cluster: str) -> tuple[list[PartitionGpus], dict[str, Demand]]:
        """GPUs per partition and the pending demand per partition (one sinfo, one squeue)."""
        from nsml_hpc.slurm.sinfo import partition_summary

        backend = self.backend_for(cluster)
        return partition_summary(backend.cluster_gpus()), backend.pending_demand()

    # --- live hyperparameters (issue 12) ------------------------------------------------------

    def set_hyperparameters(
        self, name: str, changes: Sequence[str], *, adds: Sequence[str] = ()
    ) -> HParamSet:
        """``nsml-hpc set``: change hyperparameters of a running session (``KEY=VALUE``;
        ``adds`` may name new ones), written atomically into its run directory; the job takes
        them at its next look."""
        from nsml_hpc.sessions.hparams import set_hyperparameters

        return set_hyperparameters(self, name, changes, adds=adds)

    def hyperparameter_state(self, name: str) -> HParamState:
        """A session's hyperparameters: as submitted, as asked for, the newest taken."""
        from nsml_hpc.sessions.hparams import hyperparameter_state

        return hyperparameter_state(self, name)

    def hyperparameter_changes(self, names: Sequence[str]) -> dict[str, list[HParamChange]]:
        """The changes each session's job took, with their steps (plots mark them)."""
        from nsml_hpc.catalog.hparam_events import taken_changes
        from nsml_hpc.catalog.sessions import get_session

        ids = {name: get_session(self.catalog, name).id or 0 for name in names}
        changes = taken_changes(self.catalog, list(ids.values()))
        return {name: changes.get(session_id, []) for name, session_id in ids.items()}

    def hyperparameter_marks(
        self, names: Sequence[str], x: str = "step"
    ) -> list[tuple[float, str]]:
        """Where a plot of ``names`` marks their hyperparameter changes (x: step or time)."""
        from nsml_hpc.experiments.views import hyperparameter_marks

        return hyperparameter_marks(self.catalog, names, x)

    # --- datasets (issue 12) ------------------------------------------------------------------

    def push_dataset(
        self,
        name: str,
        path: Path,
        cluster: str,
        *,
        progress: UploadProgress | None = None,
    ) -> Pushed:
        """``dataset push``: the next immutable version of dataset ``name`` on ``cluster``."""
        from nsml_hpc.datasets.store import push_dataset

        return push_dataset(self, name, path, cluster, progress=progress)

    def datasets(self, cluster: str) -> list[DatasetVersion]:
        """``dataset ls``: every version of every dataset on ``cluster``."""
        from nsml_hpc.datasets.store import list_datasets

        return list_datasets(self, cluster)

    def dataset(self, cluster: str, ref: str) -> list[DatasetVersion]:
        """``dataset show NAME[:VERSION]``: its versions and the sessions that read them."""
        from nsml_hpc.datasets.store import show_dataset

        return show_dataset(self, cluster, ref)

    def remove_dataset(
        self, cluster: str, ref: str, *, all_versions: bool = False
    ) -> list[DatasetVersion]:
        """``dataset rm``: refused while a session that is not finished reads the version."""
        from nsml_hpc.datasets.store import remove_dataset

        return remove_dataset(self, cluster, ref, all_versions=all_versions)

    def resolve_dataset(self, spec: SessionSpec) -> SessionSpec:
        """``submit --dataset``: ``spec`` with its dataset pinned to a version and its path."""
        from nsml_hpc.datasets.store import resolve_dataset

        return resolve_dataset(self, spec)

    def dataset_leaderboard(
        self,
        dataset: str,
        metric: str,
        goal: Goal,
        *,
        top: int | None = None,
        project: str | None = None,
    ) -> list[Standing]:
        """``leaderboard --dataset NAME[:VERSION]``: the sessions that read it, ranked."""
        from nsml_hpc.experiments.views import dataset_leaderboard

        return dataset_leaderboard(self.catalog, dataset, metric, goal, top=top, project=project)


__all__ = ["QuickView", "Reader", "Workspace"]
