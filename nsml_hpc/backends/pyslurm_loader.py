"""Whether pyslurm may drive this machine's Slurm, and loading it.

pyslurm X.Y is built against, and only works with, Slurm X.Y's libslurm. Before anything is
imported, the installed pyslurm's version (package metadata, readable without libslurm) is
compared with the running Slurm's (``sinfo --version``). Then ``import pyslurm`` is tried once
in a child process: importing it loads libslurm and reads slurm.conf, and libslurm ends the
whole process (``fatal: Unable to process configuration file``, exit 1, after retrying an
unreadable file for 60 s) where a Python error would be expected. Each problem becomes ONE
:class:`~nsml_hpc.errors.ConnectionFailed` line (exit 4) naming the cause and the fix; nothing
has been recorded by then, because a backend is built before a command writes anything.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from nsml_hpc.errors import ConnectionFailed
from nsml_hpc.slurm.version import VERSION_COMMAND, major_minor, parse_slurm_version

VERSION_TIMEOUT = 30.0
IMPORT_TIMEOUT = 90.0  # libslurm retries an unreadable slurm.conf for 60 s before giving up
_LIBRARY = re.compile(r"(libslurm[\w-]*\.so(?:\.(\d+))?)")
_LOGGED = re.compile(r": (?:error|fatal): ")  # libslurm's log lines: "python: error: ..."
_probed: dict[tuple[str, str], str | None] = {}


def sinfo_version() -> tuple[str | None, str]:
    """(the Slurm release of this machine's tools, what ``sinfo --version`` said when it
    failed: it reads slurm.conf too, so a configuration libslurm rejects shows here first)."""
    try:
        done = subprocess.run(
            list(VERSION_COMMAND),
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return None, ""
    except subprocess.TimeoutExpired:
        return None, f"sinfo --version did not answer in {VERSION_TIMEOUT:.0f} s"
    if done.returncode != 0:
        return None, done.stderr
    return parse_slurm_version(done.stdout), ""


def running_slurm_version() -> str | None:
    """The Slurm release of this machine's tools (``sinfo --version``), or None."""
    return sinfo_version()[0]


def installed_pyslurm_version() -> str | None:
    """pyslurm's version from its package metadata (readable even when libslurm is missing)."""
    try:
        return importlib.metadata.version("pyslurm")
    except importlib.metadata.PackageNotFoundError:
        return None


def version_problem(pyslurm_version: str | None, slurm_version: str | None) -> str | None:
    """Why this pyslurm cannot drive this Slurm, or None when the releases match (pure)."""
    if pyslurm_version is None:
        running = f"this cluster runs Slurm {slurm_version}" if slurm_version else "no Slurm found"
        return f"pyslurm is not installed ({running})"
    if slurm_version is None:
        return f"pyslurm {pyslurm_version} is installed, but no running Slurm was found"
    if major_minor(pyslurm_version) != major_minor(slurm_version):
        wanted = ".".join(str(part) for part in major_minor(pyslurm_version) or ())
        return (
            f"pyslurm {pyslurm_version} is built for Slurm {wanted}, but this cluster runs "
            f"Slurm {slurm_version}"
        )
    return None


def local_advice(cluster: str) -> str:
    return (
        f"or use the local backend (nsml-hpc cluster add {cluster} --backend local --replace), "
        "which runs Slurm's own commands and works with every Slurm release"
    )


def mismatch_fix(slurm_version: str | None) -> str:
    if slurm_version is None:
        return "install Slurm's client commands (sinfo) on this machine"
    release = ".".join(str(part) for part in major_minor(slurm_version) or ())
    return f"install the pyslurm {release}.x built for Slurm {release} (scripts/setup.sh does)"


def config_problem(stderr: str) -> str | None:
    """libslurm's own complaint about slurm.conf in one line, or None (pure)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = [_LOGGED.split(line, 1)[-1] for line in lines if _LOGGED.search(line)]
    if not said:
        return None
    return (
        f"libslurm cannot start ({'; '.join(said[:2])}): correct the Slurm configuration "
        f"({os.environ.get('SLURM_CONF') or '/etc/slurm/slurm.conf'}; sinfo shows the same)"
    )


def import_problem(pyslurm_version: str, stderr: str) -> str:
    """One line from what a failed ``import pyslurm`` printed (pure): a missing or broken
    libslurm names the library and its package; libslurm's own fatal error is quoted."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    library = _LIBRARY.search(stderr)
    if library is not None and any(
        word in stderr for word in ("cannot open shared object", "file too short", "ImportError")
    ):
        name, number = library.group(1), library.group(2)
        package = f"libslurm{number}" if number else "Slurm's client library"
        reason = lines[-1].split(": ", 1)[-1] if lines else "not found"
        return (
            f"pyslurm {pyslurm_version} cannot load {name} ({reason}): install Slurm's client "
            f"library (Debian: apt-get install {package})"
        )
    return config_problem(stderr) or f"import pyslurm failed ({lines[-1] if lines else '?'})"


def _probe_import(pyslurm_version: str) -> str | None:
    """Import pyslurm in a child process first (cached per Python and SLURM_CONF)."""
    key = (sys.executable, os.environ.get("SLURM_CONF", ""))
    if key not in _probed:
        try:
            done = subprocess.run(
                [sys.executable, "-c", "import pyslurm"],
                capture_output=True,
                text=True,
                timeout=IMPORT_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            _probed[key] = f"import pyslurm did not finish in {IMPORT_TIMEOUT:.0f} s"
        else:
            _probed[key] = (
                None if done.returncode == 0 else import_problem(pyslurm_version, done.stderr)
            )
    return _probed[key]


def load_pyslurm(cluster: str) -> tuple[ModuleType, str]:
    """pyslurm and its version, after checking it can drive the running Slurm."""
    pyslurm_version = installed_pyslurm_version()
    conf = os.environ.get("SLURM_CONF")
    if conf and not Path(conf).exists():  # libslurm would retry for 60 s, then end us
        raise ConnectionFailed(
            f"pyslurm backend of cluster {cluster}: SLURM_CONF names {conf}, which does not "
            "exist; correct SLURM_CONF or unset it"
        )
    slurm_version, sinfo_said = sinfo_version()
    problem = config_problem(sinfo_said) if pyslurm_version else None
    if problem is not None:
        raise ConnectionFailed(f"pyslurm backend of cluster {cluster}: {problem}")
    problem = version_problem(pyslurm_version, slurm_version)
    if problem is not None:
        raise ConnectionFailed(
            f"pyslurm backend of cluster {cluster}: {problem}; {mismatch_fix(slurm_version)}, "
            f"{local_advice(cluster)}"
        )
    assert pyslurm_version is not None
    problem = _probe_import(pyslurm_version)
    if problem is None:
        try:
            return importlib.import_module("pyslurm"), pyslurm_version
        except (ImportError, OSError) as exc:
            problem = import_problem(pyslurm_version, f"ImportError: {exc}")
    advice = local_advice(cluster)
    raise ConnectionFailed(f"pyslurm backend of cluster {cluster}: {problem}; {advice}")


def pyslurm_matches() -> bool:
    """``auto``: does an installed pyslurm match the running Slurm, and does it load?"""
    try:
        load_pyslurm("auto")
    except ConnectionFailed:
        return False
    return True
