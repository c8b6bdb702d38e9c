"""nsml-hpc: NSML for Slurm.

Inside a training job only the in-job API is used, and importing this package loads nothing
but the standard library (no pandas, SQLAlchemy, Jinja or Textual)::

    import nsml_hpc
    for epoch in range(epochs):
        ...
        nsml_hpc.report(step=epoch, loss=loss, val_acc=acc)
    nsml_hpc.session.hyperparameters["lr"]

The front end (catalog, sync, CLI) lives in submodules that are imported only when used.
"""

from __future__ import annotations

from nsml_hpc.api import SessionInfo, report, session

__version__ = "0.1.0"

__all__ = ["SessionInfo", "__version__", "report", "session"]
