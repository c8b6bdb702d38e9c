"""Which file system a path is on, from ``/proc/self/mountinfo``: the catalog's SQLite file on
a network file system (NFS, Lustre, GPFS, CIFS, ...) must not use WAL.

SQLite's WAL mode keeps its index in shared memory that only processes on one host can share
(https://www.sqlite.org/wal.html: "WAL does not work over a network filesystem"); on cluster
home directories, a TUI on one login node and a cron ``gc`` on another would corrupt it. The
rollback journal (``journal_mode=DELETE``) relies only on the file system's POSIX locks.

:func:`mount_of` is pure (mountinfo text in, the mount holding the path out): the longest
mount point that is a whole-component prefix of the path, the last one mounted winning a tie.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")

# File system types whose files other hosts share over a network (mountinfo's type field; FUSE
# file systems appear as ``fuse.<name>``).
NETWORK_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "lustre",
        "gpfs",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "glusterfs",
        "beegfs",
        "panfs",
        "afs",
        "9p",
        "ocfs2",
        "gfs2",
        "pvfs2",
        "orangefs",
        "wekafs",
        "davfs",
        "fuse.sshfs",
        "fuse.glusterfs",
        "fuse.ceph",
        "fuse.cephfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.rclone",
        "fuse.juicefs",
        "fuse.beegfs",
    }
)

_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fs_type: str
    source: str

    @property
    def is_network(self) -> bool:
        return self.fs_type in NETWORK_TYPES


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """Mounts in the order they were mounted; malformed lines are skipped."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append(Mount(_unescape(fields[4]), tail[0], _unescape(tail[1])))
    return mounts


def _contains(mount_point: str, path: str) -> bool:
    return mount_point == "/" or path == mount_point or path.startswith(mount_point + "/")


def mount_of(path: str, mountinfo_text: str) -> Mount | None:
    """The mount that holds the absolute, resolved ``path`` (None: no mount matches)."""
    best: Mount | None = None
    for mount in parse_mountinfo(mountinfo_text):
        if _contains(mount.mount_point, path) and (
            best is None or len(mount.mount_point) >= len(best.mount_point)
        ):
            best = mount
    return best


def existing_ancestor(path: Path) -> Path:
    """``path`` resolved, or its nearest existing parent (the catalog may not exist yet)."""
    path = path.expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate.resolve()
    return Path("/")


def mount_of_path(path: Path) -> Mount | None:
    """The mount holding ``path`` on this machine (None where there is no mountinfo)."""
    try:
        text = MOUNTINFO.read_text("utf-8", "surrogateescape")
    except OSError:
        return None
    return mount_of(str(existing_ancestor(path)), text)
