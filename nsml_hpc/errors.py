"""The errors nsml-hpc raises: the whole tree, and the exit code of each.

    NsmlError                    1  base: a short message meant for the user
    ├── SpecError                2  bad input: flags, names, hyperparameters, resources
    │   └── UsageError           2  the command line itself (unknown flag, missing argument)
    ├── ConfigError              5  unreadable or invalid configuration
    │   └── SettingsError        2  the user's settings are wrong: a missing NSML_HPC_CONFIG file,
    │                               an unknown key, a value of the wrong kind, an unreadable or
    │                               read-only catalog file (one line naming it, nothing written)
    ├── NotFoundError            3  unknown session, snapshot or cluster
    ├── CatalogError             5  the catalog database failed or is from a newer release
    ├── PermissionRefused        6  not the caller's to change (another user's session),
    │                               refused by nsml-hpc or by the catalog database itself
    ├── BackendError             4  a Slurm command (or the connection to it) failed
    │   ├── SubmitRefused        4  Slurm refused the job (bad partition, account, too many GPUs)
    │   └── ConnectionFailed     4  the cluster cannot be reached, or the connection was lost
    │       │                       (unreachable host, refused key, unknown or CHANGED host key)
    │       └── HostKeyNotTrusted  4  the user did not confirm a new host key
    ├── SnapshotError            1  a snapshot cannot be written or read (damaged, bad file)
    ├── UnsafePath               1  a deletion refused: the path is not a snapshot folder
    ├── GcBusy                   1  another gc holds the lock (gc --cron skips quietly)
    └── TensorBoardUnavailable   5  event files found, the optional ``tensorboard`` extra missing

Exit codes (:data:`EXIT_CODES`, read by the CLI): 0 ok, 1 other error, 2 bad input, 3 not
found, 4 Slurm/backend/connection, 5 configuration/catalog/setup; the CLI adds 130 for an
interrupt. Lower-library errors (subprocess, SQLAlchemy, OSError, paramiko, socket) are mapped
at the boundary with ``raise ... from``. Standard library only: the in-job code raises these.
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


class UsageError(SpecError):
    """The command line itself is wrong (unknown flag, missing argument)."""


class ConfigError(NsmlError):
    """The configuration file or an environment override is invalid."""


class SettingsError(ConfigError):
    """The user's settings are wrong: one line naming the file and the problem."""


class NotFoundError(NsmlError):
    """A session, snapshot or cluster the user named does not exist."""


class CatalogError(NsmlError):
    """The catalog database cannot be used."""


class PermissionRefused(NsmlError):
    """The caller may not do this to that (another user's session); nothing was changed."""


class BackendError(NsmlError):
    """Talking to Slurm failed."""


class SubmitRefused(BackendError):
    """Slurm answered, and refused the job."""


class ConnectionFailed(BackendError):
    """The cluster could not be reached, or the connection to it broke off."""


class HostKeyNotTrusted(ConnectionFailed):
    """The user did not confirm a new host key (``cluster trust``/``cluster add``)."""


class SnapshotError(NsmlError):
    """A snapshot cannot be written or read (names the snapshot)."""


class UnsafePath(NsmlError):
    """A delete path that does not stay inside a session's own snapshots folder."""


class GcBusy(NsmlError):
    """Another gc holds the lock."""


class TensorBoardUnavailable(NsmlError):
    """Event files were found but the optional ``tensorboard`` extra is not installed."""


EXIT_OTHER = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_FOUND = 3
EXIT_BACKEND = 4
EXIT_SETUP = 5  # configuration, catalog, a missing optional extra
EXIT_NOT_YOURS = 6  # another user's session

EXIT_CODES: dict[type[NsmlError], int] = {
    NsmlError: EXIT_OTHER,
    SpecError: EXIT_BAD_INPUT,
    UsageError: EXIT_BAD_INPUT,
    ConfigError: EXIT_SETUP,
    SettingsError: EXIT_BAD_INPUT,
    NotFoundError: EXIT_NOT_FOUND,
    CatalogError: EXIT_SETUP,
    PermissionRefused: EXIT_NOT_YOURS,
    BackendError: EXIT_BACKEND,
    SubmitRefused: EXIT_BACKEND,
    ConnectionFailed: EXIT_BACKEND,
    HostKeyNotTrusted: EXIT_BACKEND,
    SnapshotError: EXIT_OTHER,
    UnsafePath: EXIT_OTHER,
    GcBusy: EXIT_OTHER,
    TensorBoardUnavailable: EXIT_SETUP,
}


def exit_code(error: NsmlError) -> int:
    """The exit code of ``error``: its class's entry, else its nearest ancestor's."""
    for kind in type(error).__mro__:
        if kind in EXIT_CODES:
            return EXIT_CODES[kind]
    return EXIT_OTHER
