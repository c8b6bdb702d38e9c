"""Choosing the pyslurm backend on this machine, against the real Slurm's version.

Here pyslurm 22.5.3 matches the sandbox's Slurm 22.05.8: ``cluster add --backend pyslurm``
says so and ``auto`` picks pyslurm. A cluster that runs another Slurm release is made by
putting an ``sinfo`` first on PATH that reports 25.11.1 (the version check reads
``sinfo --version``; nothing else is changed): then ``cluster add --backend pyslurm`` and a
submit refuse in one line naming both versions (exit 4, nothing saved or recorded), and
``auto`` uses Slurm's commands.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.pyslurm_backend import (
    PyslurmBackend,
    installed_pyslurm_version,
    pyslurm_matches,
    running_slurm_version,
)
from nsml_hpc.catalog.sessions import list_sessions
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


@pytest.fixture
def other_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This machine's tools report Slurm 25.11.1 (an ``sinfo`` first on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sinfo = bin_dir / "sinfo"
    sinfo.write_text("#!/bin/sh\necho 'slurm 25.11.1'\n")
    sinfo.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert running_slurm_version() == "25.11.1"
    return "25.11.1"


def test_the_running_slurm_version_is_read_from_sinfo() -> None:
    version = running_slurm_version()
    assert version is not None and version.count(".") == 2


def test_the_installed_pyslurm_matches_this_slurm_and_cluster_add_says_so(
    nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyslurm, slurm = installed_pyslurm_version(), running_slurm_version()
    assert pyslurm_matches(), f"pyslurm {pyslurm} cannot drive Slurm {slurm}: scripts/setup.sh"
    code, out, err = _run(["cluster", "add", "api", "--backend", "pyslurm"], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == f"pyslurm: pyslurm {pyslurm} matches Slurm {slurm}"
    code, out, _err = _run(["cluster", "test", "api"], capsys)
    assert code == 0, out
    assert f"slurm       ok   {slurm}" in out


def test_auto_uses_pyslurm_when_it_matches(
    nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = _run(["cluster", "add", "here", "--backend", "auto"], capsys)
    assert code == 0
    assert out.splitlines()[1].startswith("auto uses pyslurm here: pyslurm ")
    workspace = Workspace.open(load_settings())
    try:
        backend = workspace.backend_for("here")
        assert isinstance(backend, PyslurmBackend)
        assert backend.probe().slurm_version == running_slurm_version()
    finally:
        workspace.close()


def test_cluster_add_refuses_a_pyslurm_built_for_another_slurm_naming_both_versions(
    nsml_env: Path, other_slurm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["cluster", "add", "api", "--backend", "pyslurm"], capsys)
    assert (code, out) == (4, "")
    (line,) = err.splitlines()
    assert line.startswith(
        f"nsml-hpc: error: pyslurm backend of cluster api: pyslurm {installed_pyslurm_version()} "
        f"is built for Slurm 22.5, but this cluster runs Slurm {other_slurm}; install the "
        "pyslurm 25.11.x built for Slurm 25.11"
    )
    assert "nsml-hpc cluster add api --backend local --replace" in line
    assert not (nsml_env / "clusters.toml").exists()  # nothing saved


def test_a_submit_through_a_mismatched_pyslurm_records_nothing(
    nsml_env: Path, project_dir: Path, other_slurm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_profile(ClusterProfile(name="api", backend="pyslurm"))  # saved while it matched
    (project_dir / "train.py").write_text("print('never runs')\n")
    code, out, err = _run(["submit", "--cluster", "api", "train.py"], capsys)
    assert (code, out) == (4, "")
    (line,) = err.splitlines()
    pyslurm = installed_pyslurm_version()
    assert f"pyslurm {pyslurm} is built for Slurm 22.5, but this cluster runs Slurm 25.11.1" in line
    workspace = Workspace.open(load_settings())
    try:
        assert list_sessions(workspace.catalog) == []
    finally:
        workspace.close()
    assert list((nsml_env / "runs").rglob("*")) == []


def test_auto_uses_slurms_commands_when_pyslurm_does_not_match(
    nsml_env: Path, other_slurm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = _run(["cluster", "add", "here", "--backend", "auto"], capsys)
    assert code == 0
    note = out.splitlines()[1]
    assert note.startswith("auto uses the local backend here: ")
    assert f"pyslurm {installed_pyslurm_version()} is built for Slurm 22.5" in note
    assert f"but this cluster runs Slurm {other_slurm}" in note
    workspace = Workspace.open(load_settings())
    try:
        assert isinstance(workspace.backend_for("here"), CliBackend)
    finally:
        workspace.close()
