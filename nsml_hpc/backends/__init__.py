"""Ways of reaching Slurm, one module each, behind :class:`~nsml_hpc.backends.base.SlurmBackend`."""

from __future__ import annotations

from nsml_hpc.backends.base import CommandResult, CommandRunner, SlurmBackend
from nsml_hpc.backends.registry import BACKEND_NAMES, make_backend

__all__ = ["BACKEND_NAMES", "CommandResult", "CommandRunner", "SlurmBackend", "make_backend"]
