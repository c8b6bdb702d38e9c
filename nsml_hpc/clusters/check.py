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
from nsml_hpc.job.layout import API_PATH_DIR, PRIVATE_DIR
from nsml_hpc.slurm.sinfo import PartitionGpus
from nsml_hpc.slurm.version import parse_slurm_version
from nsml_hpc.submit.interpreter import MIN_JOB_PYTHON, Found, best_of, probe, version_tuple
from nsml_hpc.submit.rundir import run_root_for
from nsml_hpc.sync.clocks import CONFIRM_FACTOR

PYTHON_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
# What a job imports: the wrapper (python -m nsml_hpc.job), the API behind `import nsml_hpc`
# and the snapshot helpers, from the copy a run directory gets.
IMPORT_PROBE = "import nsml_hpc, nsml_hpc.job.wrapper, nsml_hpc.job.snapshots; print('ok')"


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
    python_note: str | None = None  # how the interpreter was chosen, or a warning about it
    pythons: list[str] = field(default_factory=list)  # "path version" of what the cluster has
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


def _check_python(
    backend: SlurmBackend, profile: ClusterProfile, report: ClusterReport, probe_dir: str | None
) -> None:
    """The interpreter jobs run with: the profile's ``remote_python``, else (remote) the
    newest recent-enough Python the cluster has, else (local) ours; then that it imports the
    in-job modules from a copy like a run directory's (in ``probe_dir``, when writable)."""
    runner = backend.runner if isinstance(backend, CliBackend) else LocalRunner()
    found: list[Found] = []
    if profile.remote:
        try:
            found = probe(backend)
        except NsmlError as exc:
            report.python_error = str(exc)
            return
        report.pythons = [f"{item.path} {item.version}" for item in found]
    if profile.remote and not profile.remote_python:
        chosen = best_of(found)
        if chosen is None:
            seen = ", ".join(report.pythons) or "none on PATH"
            report.python_error = (
                f"no Python {'.'.join(map(str, MIN_JOB_PYTHON))} or newer for jobs (found: "
                f"{seen}); set remote_python"
            )
            return
        python = chosen.path
        bare = next((item for item in found if item.name == "python3"), None)
        if bare is not None and not bare.recent_enough:
            report.python_note = (
                f"python3 is Python {bare.version}, too old for jobs; they use {chosen.path} "
                f"(pin it with --remote-python {chosen.path})"
            )
        else:
            report.python_note = f"chosen from {len(found)} on PATH (remote_python pins one)"
    else:
        python = profile.python or sys.executable
    report.python = python
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
    if version_tuple(version) < MIN_JOB_PYTHON:
        better = best_of(found)
        hint = f" (the cluster has {better.path} {better.version})" if better else ""
        report.python_error = (
            f"{python} is Python {version}; jobs need Python "
            f"{'.'.join(map(str, MIN_JOB_PYTHON))} or newer: set remote_python{hint}"
        )
        return
    if probe_dir is not None:
        _check_imports(backend, runner, python, probe_dir, report)


def _check_imports(
    backend: SlurmBackend, runner: Any, python: str, probe_dir: str, report: ClusterReport
) -> None:
    """Run the in-job imports with ``python`` from a copy of the in-job package, as a job
    does (``PYTHONPATH=<run dir>/.nsml/python``)."""
    from nsml_hpc.submit.create import in_job_payload

    files = backend.files
    try:
        files.write_files(probe_dir, in_job_payload())
        path = posixpath.join(probe_dir, PRIVATE_DIR, API_PATH_DIR)
        result = runner.run(["env", f"PYTHONPATH={path}", python, "-c", IMPORT_PROBE], timeout=60.0)
    except NsmlError as exc:
        report.python_error = f"cannot check the in-job modules: {exc}"
        return
    if result.returncode != 0 or "ok" not in result.stdout:
        detail = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        report.python_error = f"{python} cannot run the in-job code: {detail}"


def _check_run_root(
    backend: SlurmBackend, profile: ClusterProfile, workspace: Context, report: ClusterReport
) -> str | None:
    """Whether the run root is writable; returns a fresh folder in it (the caller removes
    it), or None."""
    files = backend.files
    try:
        root = run_root_for(profile, workspace.settings.run_root, files)
        report.run_root = root
        files.make_dirs(root)
        folder = posixpath.join(root, f".nsml-hpc-probe-{secrets.token_hex(4)}")
        files.make_dirs(folder)
        files.write_bytes(posixpath.join(folder, "probe"), b"probe\n")
    except NsmlError as exc:
        report.run_root_error = str(exc)
        return None
    return folder


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
    folder = _check_run_root(backend, profile, workspace, report)
    try:
        _check_python(backend, profile, report, folder)
    finally:
        if folder is not None and report.run_root is not None:
            try:
                backend.files.remove_tree(folder, inside=report.run_root)
            except NsmlError as exc:
                report.run_root_error = f"cannot remove {folder}: {exc}"
    return report
