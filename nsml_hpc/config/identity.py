"""Who runs nsml-hpc here: the account on this machine (a remote cluster's account comes from
its backend, ``backend.user``)."""

from __future__ import annotations

import getpass


def current_user() -> str:
    """The local account's name (``$LOGNAME``/``$USER``, else the password database)."""
    return getpass.getuser()
