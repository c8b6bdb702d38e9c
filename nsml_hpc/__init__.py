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

The front end (catalog, sync, CLI) lives in submodules that are imported only when used.
"""

from __future__ import annotations

from nsml_hpc.api import SessionInfo, report, session
from nsml_hpc.snapshot_api import (
    SnapshotWarning,
    load,
    load_torch,
    save,
    save_torch,
    should_checkpoint,
)

__version__ = "0.1.0"

__all__ = [
    "SessionInfo",
    "SnapshotWarning",
    "__version__",
    "load",
    "load_torch",
    "report",
    "save",
    "save_torch",
    "session",
    "should_checkpoint",
]
