"""Who may read a run directory: the ``run_dir_mode`` a user chose (config ``run_dir_mode``),
applied by the job wrapper when the job starts, on the cluster. Standard library only.

    private   only you        folders 0700, files 0600, umask 077
    group     you and your group (a team run root)   0750 / 0640, umask 027
    world     everyone         0755 / 0644, umask 022

The mode is recorded in session.json (``run_dir_mode``); without it (the default) nothing
is changed and the umask of the submitting and job environments decides, as for any file.
The wrapper sets the job's umask (so what the job writes from then on follows it) and sets
the modes of what is already there (the code snapshot, session.json, Slurm's output file).
Until the job starts, the run directory has what the submitting side's umask gave it.
"""

from __future__ import annotations

import os
from pathlib import Path

RUN_DIR_MODES: dict[str, tuple[int, int, int]] = {  # name -> (umask, folder, file)
    "private": (0o077, 0o700, 0o600),
    "group": (0o027, 0o750, 0o640),
    "world": (0o022, 0o755, 0o644),
}
MODE_KEY = "run_dir_mode"  # in session.json


def apply_run_dir_mode(run_dir: Path, mode: object) -> str | None:
    """Set the job's umask and the run directory's modes for ``mode``; returns what went
    wrong (a file the job cannot change), else None. An unknown or missing mode: nothing."""
    if not isinstance(mode, str) or mode not in RUN_DIR_MODES:
        return None
    umask, folder_mode, file_mode = RUN_DIR_MODES[mode]
    os.umask(umask)
    problem = None
    for root, _folders, files in os.walk(run_dir):
        targets = [(root, folder_mode)]
        targets += [(os.path.join(root, name), file_mode) for name in files]  # noqa: PTH118
        for path, wanted in targets:
            try:
                if os.path.islink(path):  # noqa: PTH114
                    continue
                executable = wanted == file_mode and os.stat(path).st_mode & 0o100  # noqa: PTH116
                os.chmod(path, wanted | (0o100 if executable else 0))  # noqa: PTH101
            except OSError as exc:
                problem = problem or f"{path}: {exc.strerror}"
    return problem


__all__ = ["MODE_KEY", "RUN_DIR_MODES", "apply_run_dir_mode"]
