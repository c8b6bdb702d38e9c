"""A catalog on a network file system uses SQLite's rollback journal, never WAL, and says so
once. Tested on real network mounts: alice's home over sshfs (FUSE, through the sandbox's
sshd), and NFS where the sandbox provides an NFS mount (``slurm-sandbox.sh nfs-check``)."""

from __future__ import annotations

import gc
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.cli import main
from tests.remote import HOST, PORT, Sandbox

pytestmark = [pytest.mark.slurm]
REPO = Path(__file__).resolve().parents[2]
NO_NFS = 3  # slurm-sandbox.sh nfs-check: no NFS mount here, and why on its last line


@pytest.fixture
def sshfs_home(sandbox: Sandbox) -> Iterator[Path]:
    """A fresh folder in alice's home, mounted here over sshfs (a real network file system:
    every read and write goes through the sandbox's sshd)."""
    if shutil.which("sshfs") is None:
        raise AssertionError("sshfs is missing: scripts/setup.sh installs it")
    folder = f"nsml-test/sshfs-{uuid.uuid4().hex[:8]}"
    remote = Path("/home/alice") / folder
    remote.mkdir(parents=True)
    shutil.chown(remote, "alice", "alice")
    mount_point = Path(tempfile.mkdtemp(prefix="nsml-sshfs-"))
    subprocess.run(
        [
            "sshfs",
            "-p",
            str(PORT),
            "-o",
            f"IdentityFile={sandbox.alice_key}",
            "-o",
            f"UserKnownHostsFile={sandbox.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes,BatchMode=yes",
            f"alice@{HOST}:{remote}",
            str(mount_point),
        ],
        check=True,
        timeout=60,
    )
    try:
        yield mount_point
    finally:
        _unmount(mount_point)
        mount_point.rmdir()
        shutil.rmtree(remote, ignore_errors=True)


def _unmount(mount_point: Path) -> None:
    """fusermount -u, after a collection (a connection the test dropped but a reference cycle
    still holds closes there) and a few retries (FUSE may still be flushing); a mount that
    stays busy fails the test naming who holds it, after a lazy unmount cleans up."""
    for _ in range(10):
        gc.collect()
        done = subprocess.run(
            ["fusermount", "-u", str(mount_point)], capture_output=True, text=True, timeout=60
        )
        if done.returncode == 0:
            return
        time.sleep(0.5)
    holders = sorted(
        f"pid {link.parts[2]}: {target}"
        for link in Path("/proc").glob("[0-9]*/fd/*")
        if (target := _link(link)).startswith(str(mount_point))
    )
    subprocess.run(["fusermount", "-u", "-z", str(mount_point)], check=False, timeout=60)
    raise AssertionError(f"{mount_point} stays busy ({done.stderr.strip()}): {holders}")


def _link(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:
        return ""


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def _ps(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["ps", "--no-sync"])
    return code, capsys.readouterr().err


def _check_network_catalog(
    folder: Path, fs_type: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder / "nsml" / "catalog.db"
    monkeypatch.setenv("NSML_HPC_CATALOG", f"sqlite:///{path}")
    code, err = _ps(capsys)
    assert code == 0, err
    note = f"nsml-hpc: note: catalog {path} is on {fs_type} ({folder}): using SQLite's rollback"
    assert err.startswith(note) and len(err.splitlines()) == 1, err
    assert _journal_mode(path) == "delete"
    code, err = _ps(capsys)  # decided once: no note on the next command
    assert (code, err) == (0, "")
    catalog = open_catalog(f"sqlite:///{path}")
    try:
        with catalog.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            assert mode == "delete"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        catalog.close()
    assert not any(p.name.endswith(("-wal", "-shm")) for p in path.parent.iterdir())


def test_a_catalog_on_sshfs_uses_the_rollback_journal_and_says_so_once(
    nsml_env: Path,
    sshfs_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _check_network_catalog(sshfs_home, "fuse.sshfs", monkeypatch, capsys)


def test_a_wal_catalog_moved_onto_a_network_file_system_leaves_wal(
    nsml_env: Path,
    sshfs_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    local = tmp_path / "catalog.db"
    open_catalog(f"sqlite:///{local}").close()
    assert _journal_mode(local) == "wal"  # a local disk keeps WAL
    (sshfs_home / "nsml").mkdir()
    shutil.copyfile(local, sshfs_home / "nsml" / "catalog.db")
    _check_network_catalog(sshfs_home, "fuse.sshfs", monkeypatch, capsys)


def test_a_catalog_on_nfs_uses_the_rollback_journal(
    nsml_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    check = subprocess.run(
        ["bash", str(REPO / "sandbox" / "slurm-sandbox.sh"), "nfs-check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = (check.stdout + check.stderr).strip()
    if check.returncode == NO_NFS:  # the sandbox says why there is none (docs/sandbox.md)
        pytest.skip(said.splitlines()[-1])
    assert check.returncode == 0, said
    folder = Path("/mnt/nsml-nfs") / f"nsml-test-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        fs_type = subprocess.run(
            ["findmnt", "-n", "-o", "FSTYPE", "--target", str(folder)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        _check_network_catalog(folder, fs_type, monkeypatch, capsys)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
