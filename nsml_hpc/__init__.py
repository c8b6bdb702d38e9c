"""nsml-hpc: NSML for Slurm.

Inside a training job only the in-job API is used, and importing this package loads nothing
but the standard library (no pandas, SQLAlchemy, Jinja or Textual)::

    import nsml_hpc
    for epoch in range(epochs):
        ...
        nsml_hpc.report(step=epoch, loss=loss, val_acc=acc)
        with nsml_hpc.save(step=epoch) as folder:   # an atomic snapshot
            ...
    nsml_hpc.session.hyperparameters["lr"]
    nsml_hpc.session.resume_from                    # snapshot to resume from (requeue, fork)
    nsml_hpc.session.dataset                        # the --dataset folder (staged or shared)
    lr = nsml_hpc.hparam("lr", 0.1)                 # changes made with `nsml-hpc set` too
    nsml_hpc.on_hparam_change(lambda changes: ...)  # called when the job takes a change

The front end (catalog, sync, CLI) lives in submodules that are imported only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsml_hpc.job.api import SessionInfo, report, report_rank, session
    from nsml_hpc.job.live_hparams import check_hparams, hparam, on_hparam_change
    from nsml_hpc.job.snapshots import (
        SnapshotWarning,
        load,
        load_torch,
        save,
        save_torch,
        should_checkpoint,
    )

__version__ = "0.1.0"
_SNAPSHOT_API = frozenset(
    {"SnapshotWarning", "load", "load_torch", "save", "save_torch", "should_checkpoint"}
)
_HPARAM_API = frozenset({"check_hparams", "hparam", "on_hparam_change"})
_REPORT_API = frozenset({"SessionInfo", "report", "report_rank", "session"})


def __getattr__(name: str) -> Any:
    """The snapshot and live-hyperparameter APIs load on first use, so ``import nsml_hpc``
    stays as cheap as ``report``; ``report`` and ``session`` load on first use too, so the
    command line (which imports this package first) does not pay for them."""
    if name in _REPORT_API:
        from nsml_hpc.job import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    if name in _SNAPSHOT_API:
        from nsml_hpc.job import snapshots as snapshot_api

        value = getattr(snapshot_api, name)
        globals()[name] = value
        return value
    if name in _HPARAM_API:
        from nsml_hpc.job import api as _api  # noqa: F401 - sets the step hook it reads
        from nsml_hpc.job import live_hparams

        value = getattr(live_hparams, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nsml_hpc' has no attribute {name!r}")


__all__ = [
    "SessionInfo",
    "SnapshotWarning",
    "__version__",
    "check_hparams",
    "hparam",
    "load",
    "load_torch",
    "on_hparam_change",
    "report",
    "report_rank",
    "save",
    "save_torch",
    "session",
    "should_checkpoint",
]
