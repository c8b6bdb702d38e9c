"""The one front-end interface: what the CLI, the TUI and notebooks call.

A :class:`Workspace` is a :class:`~nsml_hpc.context.Context` (settings, catalog, backends) with
the operations users have on it. Each operation imports its feature package when it is first
called, so opening a workspace, or printing ``--help``, loads nothing a command does not use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nsml_hpc.context import Context

if TYPE_CHECKING:
    from nsml_hpc.catalog.hparam_events import HParamChange
    from nsml_hpc.code.upload import Progress as UploadProgress
    from nsml_hpc.datasets.store import DatasetVersion, Pushed
    from nsml_hpc.experiments.views import Standing
    from nsml_hpc.job.direction import Goal
    from nsml_hpc.job.spec import SessionSpec
    from nsml_hpc.sessions.hparams import HParamSet, HParamState


class Workspace(Context):
    """Settings, the catalog and the clusters' backends, with the users' operations."""

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


__all__ = ["Workspace"]
