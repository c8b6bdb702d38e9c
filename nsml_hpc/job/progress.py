"""What the in-job API modules share about the running training process: the step the next
``report()`` would record, and a hook ``report()`` runs afterwards (the live hyperparameters'
look, once a callback is registered). Standard library only."""

from __future__ import annotations

from collections.abc import Callable


def _no_step() -> int:
    return 0


next_step: Callable[[], int] = _no_step  # set by nsml_hpc.job.api
after_report: Callable[[], None] | None = None  # set by nsml_hpc.job.live_hparams
