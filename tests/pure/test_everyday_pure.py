"""Regression tests (pure) for issue 15's walkthrough defects: ``load(session=...)`` outside a
job follows the configured ``run_root``; a step that is not an integer makes a line
malformed; choosing the Python a remote job runs with from what the cluster has."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nsml_hpc
from nsml_hpc.job.snapshot_store import PendingSnapshot
from nsml_hpc.runfiles.scrape import parse_metric_lines
from nsml_hpc.submit.interpreter import best_of, parse_probe, probe_script


def test_load_with_a_session_outside_a_job_follows_the_configured_run_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass

    root = tmp_path / "scratch" / "runs"
    run_dir = root / getpass.getuser() / "mnist" / "3"
    (run_dir).mkdir(parents=True)
    (run_dir / "session.json").write_text(json.dumps({"name": "mnist/3"}))
    pending = PendingSnapshot.begin(run_dir / "snapshots", "ep1")
    (pending.folder / "w").write_bytes(b"1")
    pending.commit(step=1, metrics={}, job_id="1", session="mnist/3", restart_count=0)
    config = tmp_path / "config.toml"
    config.write_text(f'run_root = "{root}"\n')
    for name in ("NSML_HPC_RUN_ROOT", "NSML_HPC_RUN_DIR", "NSML_HPC_SESSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NSML_HPC_CONFIG", str(config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/nsml-runs is empty
    assert nsml_hpc.load("latest", session="mnist/3") == run_dir / "snapshots" / "ep1"
    # the XDG location of the config file too
    monkeypatch.delenv("NSML_HPC_CONFIG")
    xdg = tmp_path / "xdg"
    (xdg / "nsml-hpc").mkdir(parents=True)
    (xdg / "nsml-hpc" / "config.toml").write_text(f'run_root = "{root}"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert nsml_hpc.load("latest", session="mnist/3") == run_dir / "snapshots" / "ep1"


def test_a_step_that_is_not_an_integer_makes_the_line_malformed() -> None:
    chunk = (
        b'{"step": 0, "loss": 1.0}\n'
        b'{"step": "x", "loss": 2.0}\n'
        b'{"step": 1.5, "loss": 2.0}\n'
        b'{"step": true, "loss": 2.0}\n'
        b'{"step": 2.0, "loss": 0.5}\n'
        b'{"loss": 0.4}\n'
    )
    batch = parse_metric_lines(chunk, 0, 1)
    assert batch.malformed == 3
    assert [(point[2], point[5]) for point in batch.points] == [(0, 1.0), (2, 0.5), (None, 0.4)]


# `sh -c probe_script()` on a cluster whose python3 is the system's old one and which has a
# newer python3.11 beside it (the shape of a CentOS 7 login node with a software stack).
OLD_CLUSTER = """\
@@ python3.11
/opt/python/3.11/bin/python3.11
3.11.9
@@ python3
/usr/bin/python3
3.6.8
"""


def test_a_remote_job_uses_the_newest_recent_python_not_the_bare_python3() -> None:
    found = parse_probe(OLD_CLUSTER)
    assert [(item.name, item.version, item.recent_enough) for item in found] == [
        ("python3.11", "3.11.9", True),
        ("python3", "3.6.8", False),
    ]
    chosen = best_of(found)
    assert chosen is not None and chosen.path == "/opt/python/3.11/bin/python3.11"
    assert best_of(parse_probe("@@ python3\n/usr/bin/python3\n3.6.8\n")) is None
    assert parse_probe("@@ python3.12\n") == []  # a candidate that printed nothing


def test_the_probe_script_runs_in_a_posix_shell_here() -> None:
    done = subprocess.run(
        ["sh", "-c", probe_script()], capture_output=True, text=True, check=True, timeout=60
    )
    found = parse_probe(done.stdout)
    assert found, done.stdout
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert any(item.version.startswith(here) for item in found)
    assert all(os.path.isabs(item.path) for item in found)
