"""``nsml-hpc cluster test``: can this cluster be used, and what does it have?

Connectivity (and how long the first answer took), the Slurm version, whether accounting
(sacct) answers, GPUs per partition (one sinfo call), whether the run root is writable, and
the interpreter jobs will run the in-job API with, and the effective policy on asking Slurm
(the user's settings held to the site's, :mod:`nsml_hpc.config.site_policy`). Every step
that fails is reported with its cause instead of stopping the others where they can still run.
"""

from __future__ import annotations

import posixpath
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.runner import LocalRunner
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.settings import Settings
from nsml_hpc.context import Context
from nsml_hpc.errors import NsmlError
from nsml_hpc.slurm.sinfo import PartitionGpus
from nsml_hpc.slurm.version import parse_slurm_version
from nsml_hpc.submit.rundir import run_root_for
from nsml_hpc.sync.clocks import CONFIRM_FACTOR

MIN_JOB_PYTHON = (3, 10)  # the in-job modules use PEP 604 unions at run time
PYTHON_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


@dataclass
class ClusterReport:
    name: str
    backend: str
    target: str
    connected: bool = False
    connect_seconds: float | None = None
    error: str | None = None
    host_key: str | None = None
    slurm_version: str | None = None
    slurm_error: str | None = None
    sacct_error: str | None = None
    partitions: list[PartitionGpus] = field(default_factory=list)
    sinfo_error: str | None = None
    run_root: str | None = None
    run_root_error: str | None = None
    python: str | None = None
    python_version: str | None = None
    python_error: str | None = None
    # The effective Slurm clock (the user's settings held to the site's policy)
    policy: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.connected
            and self.slurm_version is not None
            and self.sacct_error is None
            and self.sinfo_error is None
            and self.run_root_error is None
            and self.python_error is None
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _check_python(backend: SlurmBackend, profile: ClusterProfile, report: ClusterReport) -> None:
    python = profile.python or sys.executable
    report.python = python
    runner = backend.runner if isinstance(backend, CliBackend) else LocalRunner()
    try:
        result = runner.run([python, "-c", PYTHON_PROBE], timeout=60.0)
    except NsmlError as exc:
        report.python_error = str(exc)
        return
    version = parse_slurm_version(result.stdout) if result.returncode == 0 else None
    if version is None:
        detail = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        report.python_error = f"{python} does not run: {detail}"
        return
    report.python_version = version
    major, minor = (int(part) for part in version.split(".")[:2])
    if (major, minor) < MIN_JOB_PYTHON:
        report.python_error = (
            f"{python} is Python {version}; jobs need Python "
            f"{'.'.join(map(str, MIN_JOB_PYTHON))} or newer (set remote_python)"
        )


def _check_run_root(
    backend: SlurmBackend, profile: ClusterProfile, workspace: Context, report: ClusterReport
) -> None:
    files = backend.files
    try:
        root = run_root_for(profile, workspace.settings.run_root, files)
        report.run_root = root
        files.make_dirs(root)
        probe = posixpath.join(root, f".nsml-hpc-probe-{secrets.token_hex(4)}")
        files.make_dirs(probe)
        files.write_bytes(posixpath.join(probe, "probe"), b"probe\n")
        files.remove_tree(probe, inside=root)
    except NsmlError as exc:
        report.run_root_error = str(exc)


def slurm_policy_report(settings: Settings) -> dict[str, Any]:
    """The effective Slurm clock and where its limits come from."""
    policy = settings.slurm_policy
    return {
        "floor_seconds": policy.floor_seconds,
        "confirm_seconds": policy.floor_seconds * CONFIRM_FACTOR,
        "action_floor_seconds": policy.action_floor_seconds,
        "queries_per_hour": policy.queries_per_hour,
        "site_files": list(settings.site.files),
        "site_warnings": list(settings.site.warnings),
    }


def check_cluster(workspace: Context, name: str) -> ClusterReport:
    profile = workspace.settings.profile(name)
    report = ClusterReport(name=name, backend=profile.backend, target=profile.target_text())
    report.policy = slurm_policy_report(workspace.settings)
    try:
        backend = workspace.backend_for(name)
        start = time.monotonic()
        backend.files.home()  # the first thing that needs the connection opens it
        report.connect_seconds = time.monotonic() - start
        report.connected = True
    except NsmlError as exc:
        report.error = str(exc)
        return report
    connection = getattr(backend, "connection", None)
    key = connection.server_key() if connection is not None else None
    if key is not None:
        from nsml_hpc.backends.ssh_connect import fingerprint

        report.host_key = f"{key.get_name()} {fingerprint(key)}"
    try:
        probe = backend.probe()
    except NsmlError as exc:
        report.slurm_error = str(exc)
    else:
        report.slurm_version = probe.slurm_version
        report.sacct_error = probe.sacct_error
        report.partitions = probe.partitions
        report.sinfo_error = probe.sinfo_error
        if probe.slurm_version is None:
            report.slurm_error = "sinfo --version printed no version"
    _check_run_root(backend, profile, workspace, report)
    _check_python(backend, profile, report)
    return report
