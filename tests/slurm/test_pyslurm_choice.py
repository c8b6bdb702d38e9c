"""Choosing the pyslurm backend on this machine, against the real Slurm's version: a pyslurm
that cannot drive this Slurm is one clear error naming both versions and pointing at the
local backend, and ``auto`` falls back to the local backend."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.pyslurm_backend import (
    installed_pyslurm_version,
    pyslurm_matches,
    running_slurm_version,
)
from nsml_hpc.cli import main
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.clusters_file import add_profile
from nsml_hpc.config.settings import load_settings
from nsml_hpc.workspace import Workspace

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_running_slurm_version_is_read_from_sinfo() -> None:
    version = running_slurm_version()
    assert version is not None and version.count(".") == 2


@pytest.mark.skipif(
    importlib.util.find_spec("pyslurm") is not None and pyslurm_matches(),
    reason="a pyslurm matching this Slurm is installed: the contract suite runs it instead",
)
def test_a_pyslurm_profile_that_cannot_work_here_is_one_error_naming_both_versions(
    nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_profile(ClusterProfile(name="api", backend="pyslurm"))
    code, out, _err = _run(["cluster", "test", "api"], capsys)
    slurm = running_slurm_version()
    assert code == 4
    report = out.splitlines()
    assert report[1].split()[:2] == ["connection", "FAIL"]
    assert f"Slurm {slurm}" in out
    wanted = installed_pyslurm_version()
    assert (f"pyslurm {wanted}" if wanted else "pyslurm is not installed") in out
    assert "use the local backend instead" in out


def test_auto_uses_the_local_backend_when_no_pyslurm_matches(nsml_env: Path) -> None:
    add_profile(ClusterProfile(name="here", backend="auto"))
    workspace = Workspace.open(load_settings())
    try:
        backend = workspace.backend_for("here")
        assert isinstance(backend, CliBackend) is (not pyslurm_matches())
        assert backend.probe().slurm_version == running_slurm_version()
    finally:
        workspace.close()
