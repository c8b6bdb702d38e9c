"""Which file system holds the catalog, from /proc/self/mountinfo (captured from the sandbox
machine, and hand-written for a cluster login node): the longest mount point that contains
the path wins, network file systems are told apart from local ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nsml_hpc.catalog.filesystem import Mount, mount_of, parse_mountinfo


@pytest.fixture
def sandbox(data_text: Callable[[str], str]) -> str:
    return data_text("mountinfo_sandbox.txt")


@pytest.fixture
def cluster(data_text: Callable[[str], str]) -> str:
    return data_text("mountinfo_cluster_handwritten.txt")


@pytest.mark.parametrize(
    ("path", "mount_point", "fs_type", "network"),
    [
        ("/home/me/.local/share/nsml-hpc/catalog.db", "/home", "nfs4", True),
        ("/scratch/me/catalog.db", "/scratch", "lustre", True),
        ("/gpfs/projects/lab/catalog.db", "/gpfs/projects", "gpfs", True),
        ("/mnt/lab share/catalog.db", "/mnt/lab share", "cifs", True),
        ("/homefs/me/catalog.db", "/homefs", "nfs", True),
        ("/home/me/local-cache/catalog.db", "/home/me/local-cache", "ext4", False),
        ("/tmp/catalog.db", "/tmp", "tmpfs", False),
        ("/var/lib/nsml/catalog.db", "/var", "xfs", False),
        ("/opt/catalog.db", "/", "xfs", False),
    ],
)
def test_a_cluster_login_nodes_file_systems(cluster, path, mount_point, fs_type, network):
    mount = mount_of(path, cluster)
    assert mount is not None
    assert (mount.mount_point, mount.fs_type, mount.is_network) == (mount_point, fs_type, network)


def _mount(path: str, mountinfo: str) -> Mount:
    mount = mount_of(path, mountinfo)
    assert mount is not None
    return mount


def test_a_mount_over_an_automount_point_wins_over_the_autofs_trigger(cluster: str) -> None:
    # /home appears twice: the autofs trigger, then the NFS mount on top of it.
    assert _mount("/home/me", cluster).fs_type == "nfs4"
    assert _mount("/home", cluster).fs_type == "nfs4"


def test_a_prefix_that_is_not_a_whole_path_component_does_not_match(cluster: str) -> None:
    assert _mount("/homework/catalog.db", cluster).mount_point == "/"
    assert _mount("/scratchpad/x", cluster).mount_point == "/"


@pytest.mark.parametrize(
    ("path", "fs_type", "network"),
    [
        ("/tmp/nsml-sshfs/.local/share/nsml-hpc/catalog.db", "fuse.sshfs", True),
        ("/tmp/nsml mi/catalog.db", "tmpfs", False),
        ("/root/.local/share/nsml-hpc/catalog.db", "ext4", False),
        ("/dev/shm/catalog.db", "tmpfs", False),
    ],
)
def test_the_sandbox_machines_file_systems(
    sandbox: str, path: str, fs_type: str, network: bool
) -> None:
    mount = _mount(path, sandbox)
    assert (mount.fs_type, mount.is_network) == (fs_type, network)


def test_octal_escapes_in_mount_points_are_decoded(sandbox):
    assert "/tmp/nsml mi" in [m.mount_point for m in parse_mountinfo(sandbox)]


def test_malformed_lines_are_skipped():
    text = "garbage\n1 2 3:4 / /x rw - nfs4 srv:/x rw\nno separator here at all\n"
    assert [m.mount_point for m in parse_mountinfo(text)] == ["/x"]
    assert mount_of("/y", "") is None
