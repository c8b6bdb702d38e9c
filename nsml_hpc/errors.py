"""The errors nsml-hpc raises, one small tree.

    NsmlError                  base: a short message meant for the user
    ├── SpecError              bad input: flags, names, hyperparameters, resources
    ├── ConfigError            unreadable or invalid configuration
    │   └── SettingsError      the config file, an NSML_HPC_* override or the catalog's file
    │                          is wrong (missing, misspelt, wrong type, unreadable, read-only):
    │                          bad input, exit 2, nothing written
    ├── NotFoundError          unknown session, snapshot or cluster
    ├── CatalogError           the catalog database failed or is from a newer release
    └── BackendError           a Slurm command (or the connection to it) failed
        ├── SubmitRefused      Slurm refused the job (bad partition, account, too many GPUs)
        └── ConnectionFailed   the cluster cannot be reached, or the connection was lost
                               (unreachable host, refused key, unknown or CHANGED host key)

Lower-library errors (subprocess, SQLAlchemy, OSError, paramiko, socket) are mapped at the
boundary with ``raise ... from``; exit codes exist only in :mod:`nsml_hpc.cli`.
"""

from __future__ import annotations


class NsmlError(Exception):
    """Base of every error nsml-hpc reports to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SpecError(NsmlError):
    """A value the user gave cannot become a valid session."""


class ConfigError(NsmlError):
    """The configuration file or an environment override is invalid."""


class SettingsError(ConfigError):
    """The user's settings are wrong: one line naming the file and the problem."""


class NotFoundError(NsmlError):
    """A session, snapshot or cluster the user named does not exist."""


class CatalogError(NsmlError):
    """The catalog database cannot be used."""


class BackendError(NsmlError):
    """Talking to Slurm failed."""


class SubmitRefused(BackendError):
    """Slurm answered, and refused the job."""


class ConnectionFailed(BackendError):
    """The cluster could not be reached, or the connection to it broke off."""
