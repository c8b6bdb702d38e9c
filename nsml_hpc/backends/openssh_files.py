"""Run directories through the system ``ssh`` binary (the ``openssh`` transport's
:class:`~nsml_hpc.backends.files.RunFiles`).

Every operation is one ``ssh`` call through the ControlMaster connection, running POSIX tools
on the cluster (``tail``/``head`` from an offset, ``mkdir``, ``mv``) and GNU ``stat``, ``find``
and ``tar``; values are positional arguments of an ``sh -c`` script, never pasted into it.
Many files are handled in one call: sizes (one ``stat``), new bytes (one ``tail`` loop),
uploads and the run directory's small files (one ``tar`` stream each).
"""

from __future__ import annotations

import io
import posixpath
import shutil
import subprocess
import tarfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from pathlib import Path
from typing import IO

from nsml_hpc.backends.files import DirEntry, FileStat, removable
from nsml_hpc.backends.openssh_client import OpenSsh, last_line
from nsml_hpc.backends.remote_shell import (
    COPY_LISTED_FILES,
    REFUSED,
    parse_sizes,
    read_many_command,
    read_only_command,
    remote_command,
    remove_tree_command,
    sh_script,
    sizes_command,
    split_read_many,
)
from nsml_hpc.code.upload import (
    LocalFile,
    Progress,
    RemoteFile,
    Seed,
    UploadStats,
    manifest_after,
    plan_upload,
    seed_candidates,
)
from nsml_hpc.errors import BackendError, ConnectionFailed

FILE_TIMEOUT = 120.0
UPLOAD_TIMEOUT = 3600.0
ARGS_BYTES = 64 * 1024  # per remote command line when deleting many files
MISSING = 3


class _Counting(io.RawIOBase):
    """A local file read for the tar stream, reporting progress as it goes."""

    def __init__(self, handle: IO[bytes], sent: list[int], total: int, progress: Progress | None):
        self.handle, self.sent, self.total, self.progress = handle, sent, total, progress

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.sent[0] += len(data)
        if self.progress is not None and data:
            self.progress(self.sent[0], self.total)
        return data


class OpenSshFiles:
    """:class:`~nsml_hpc.backends.files.RunFiles` through ``ssh`` commands."""

    def __init__(self, ssh: OpenSsh) -> None:
        self.ssh = ssh
        self._home: str | None = None
        self.bytes_read = 0

    @property
    def cluster(self) -> str:
        return self.ssh.profile.name

    def _fail(self, doing: str, path: str, stderr: bytes) -> BackendError:
        reason = last_line(stderr.decode("utf-8", "replace"))
        return BackendError(f"cluster {self.cluster}: cannot {doing} {path}: {reason}")

    def home(self) -> str:
        if self._home is None:
            status, out, err = self.ssh.run(sh_script('printf %s "$HOME"'), timeout=FILE_TIMEOUT)
            if status != 0 or not out.startswith(b"/"):
                raise self._fail("find", "the home directory", err)
            self._home = out.decode()
        return self._home

    def exists(self, path: str) -> bool:
        status, _, _ = self.ssh.run(
            sh_script('test -e "$1" || test -L "$1"', path), timeout=FILE_TIMEOUT
        )
        return status == 0

    def size(self, path: str) -> int | None:
        return self.sizes([path])[path]

    def sizes(self, paths: Sequence[str]) -> dict[str, int | None]:
        """One GNU ``stat`` for every path (missing files are simply not in its output)."""
        if not paths:
            return {}
        status, out, err = self.ssh.run(sizes_command(paths), timeout=FILE_TIMEOUT)
        if status != 0:
            raise self._fail("look at", paths[0], err)
        return parse_sizes(out, paths)

    def read_from(self, path: str, offset: int, limit: int) -> bytes:
        script = f'[ -f "$1" ] || exit {MISSING}; tail -c +"$2" -- "$1" | head -c "$3"'
        status, out, err = self.ssh.run(
            sh_script(script, path, str(offset + 1), str(limit)), timeout=FILE_TIMEOUT
        )
        if status == MISSING:
            return b""
        if status != 0:
            raise self._fail("read", path, err)
        self.bytes_read += len(out)
        return out

    def read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        """ONE ssh call for all of them; if the answer does not line up (a file changed under
        us), the files are read one by one instead."""
        if len(requests) > 1:
            command, token = read_many_command(requests)
            status, out, _ = self.ssh.run(command, timeout=FILE_TIMEOUT)
            chunks = split_read_many(out, token, requests) if status == 0 else None
            if chunks is not None:
                self.bytes_read += sum(len(chunk) for chunk in chunks)
                return chunks
        return [self.read_from(path, offset, limit) for path, offset, limit in requests]

    def stat(self, path: str) -> FileStat | None:
        script = (
            f'[ -e "$1" ] || [ -L "$1" ] || exit {MISSING}; '
            'find "$1" -maxdepth 0 -printf "%y %s %T@"'
        )
        status, out, err = self.ssh.run(sh_script(script, path), timeout=FILE_TIMEOUT)
        if status == MISSING:
            return None
        fields = out.decode("ascii", "replace").split(" ")
        if status != 0 or len(fields) != 3 or not fields[1].isdigit():
            raise self._fail("look at", path, err)
        return FileStat(int(fields[1]), _ns(fields[2]), fields[0] == "d")

    def list_dir(self, path: str) -> list[DirEntry] | None:
        script = (
            f'[ -d "$1" ] || exit {MISSING}; '
            'find "$1" -mindepth 1 -maxdepth 1 -printf "%y %T@ %f\\0"'
        )
        status, out, err = self.ssh.run(sh_script(script, path), timeout=FILE_TIMEOUT)
        if status == MISSING:
            return None
        if status != 0:
            raise self._fail("list", path, err)
        entries: list[DirEntry] = []
        for record in out.split(b"\0"):
            kind, _, rest = record.decode("utf-8", "surrogateescape").partition(" ")
            mtime, _, name = rest.partition(" ")
            if name:
                entries.append(DirEntry(name, kind == "d", _ns(mtime)))
        return entries

    def read_bytes(self, path: str, limit: int) -> bytes | None:
        script = f'[ -f "$1" ] || exit {MISSING}; head -c "$2" -- "$1"'
        status, out, err = self.ssh.run(
            sh_script(script, path, str(limit + 1)), timeout=FILE_TIMEOUT
        )
        if status == MISSING:
            return None
        if status != 0:
            raise self._fail("read", path, err)
        self.bytes_read += len(out)
        return out

    def make_dirs(self, path: str) -> None:
        status, _, err = self.ssh.run(
            remote_command(["mkdir", "-p", "--", path]), timeout=FILE_TIMEOUT
        )
        if status != 0:
            raise self._fail("create", path, err)

    def write_bytes(self, path: str, data: bytes) -> None:
        script = (
            't="$(dirname -- "$1")/.$(basename -- "$1").tmp-$$"; '
            'if cat > "$t" && mv -f -- "$t" "$1"; then exit 0; fi; rm -f -- "$t"; exit 1'
        )
        status, _, err = self.ssh.run(sh_script(script, path), timeout=FILE_TIMEOUT, stdin=data)
        if status != 0:
            raise self._fail("write", path, err)

    def write_files(self, root: str, files: Mapping[str, bytes]) -> None:
        """All of them in ONE tar stream (one ssh call)."""
        stream = io.BytesIO()
        with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for relative, data in files.items():
                info = tarfile.TarInfo(relative)
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                tar.addfile(info, io.BytesIO(data))
        status, _, err = self.ssh.run(
            sh_script('mkdir -p -- "$1" && tar -x -f - -C "$1"', root),
            timeout=FILE_TIMEOUT,
            stdin=stream.getvalue(),
        )
        if status != 0:
            raise self._fail("write files in", root, err)

    def link_files(self, root: str, links: Mapping[str, str]) -> None:
        """One ssh call: ``ln`` for each, ``cp`` where the file system refuses a link."""
        script = (
            'r=$1; shift; while [ "$#" -gt 1 ]; do t="$r/$2"; mkdir -p -- "$(dirname -- "$t")" '
            '&& { ln -- "$1" "$t" 2>/dev/null || cp -p -- "$1" "$t"; } || exit 1; shift 2; done'
        )
        pairs = [item for relative, source in links.items() for item in (source, relative)]
        status, _, err = self.ssh.run(sh_script(script, root, *pairs), timeout=FILE_TIMEOUT)
        if status != 0:
            raise self._fail("write files in", root, err)

    def batch(self) -> AbstractContextManager[None]:
        """Nothing to gather: remote writes are not flushed one by one here."""
        return nullcontext()

    def rename(self, source: str, target: str) -> None:
        script = 'if [ -e "$2" ]; then echo "already exists" >&2; exit 1; fi; mv -- "$1" "$2"'
        status, _, err = self.ssh.run(sh_script(script, source, target), timeout=FILE_TIMEOUT)
        if status != 0:
            raise self._fail(f"rename {source} to", target, err)

    def remove_tree(self, path: str, *, inside: str) -> None:
        """One ``ssh`` call; the guard (real folder, real parent is ``inside``) runs there."""
        if not removable(path, inside):
            raise BackendError(f"refusing to delete {path}: not a folder directly in {inside}")
        status, _, err = self.ssh.run(remove_tree_command(path, inside), timeout=FILE_TIMEOUT)
        if status == REFUSED:
            raise BackendError(f"refusing to delete {path}: not a folder directly in {inside}")
        if status != 0:
            raise self._fail("delete", path, err)

    def make_read_only(self, path: str) -> None:
        status, _, err = self.ssh.run(read_only_command(path), timeout=UPLOAD_TIMEOUT)
        if status != 0:
            raise self._fail("make read-only", path, err)

    def copy_out(self, path: str, destination: Path) -> None:
        """ONE ``tar`` stream from the cluster, unpacked here (links stay links, none may
        point outside the copy)."""
        script = f'[ -d "$1" ] && [ ! -L "$1" ] || exit {MISSING}; tar -c -f - -C "$1" .'
        status, out, err = self.ssh.run(sh_script(script, path), timeout=UPLOAD_TIMEOUT)
        if status == MISSING:
            raise BackendError(f"{path} is not a folder")
        if status != 0:
            raise self._fail("copy", path, err)
        self.bytes_read += len(out)
        try:
            destination.mkdir(parents=True)
            with tarfile.open(fileobj=io.BytesIO(out), mode="r") as tar:
                tar.extractall(destination, filter="data")
        except (OSError, tarfile.TarError) as exc:
            shutil.rmtree(destination, ignore_errors=True)
            raise BackendError(f"cannot copy {path} to {destination}: {exc}") from exc

    # --- upload ----------------------------------------------------------------------------

    def _walk(self, top: str) -> tuple[dict[str, RemoteFile], set[str]]:
        script = '[ -d "$1" ] || exit 0; find "$1" -mindepth 1 -printf "%y\\t%s\\t%T@\\t%P\\0"'
        status, out, err = self.ssh.run(sh_script(script, top), timeout=FILE_TIMEOUT)
        if status != 0:
            raise self._fail("list", top, err)
        files: dict[str, RemoteFile] = {}
        folders: set[str] = set()
        for record in out.split(b"\0"):
            if not record:
                continue
            kind, size, mtime, name = record.decode("utf-8", "surrogateescape").split("\t", 3)
            if kind == "d":
                folders.add(name)
            elif kind == "f":
                files[name] = RemoteFile(name, int(size), int(float(mtime)))
        return files, folders

    def _tar_upload(
        self, root: Path, items: list[LocalFile], dest: str, progress: Progress | None
    ) -> int:
        """Send ``items`` as ONE tar stream into ``dest`` (tar keeps their mtime and mode)."""
        total = sum(item.size for item in items)
        sent = [0]
        process = self.ssh.popen(sh_script('mkdir -p -- "$1" && tar -x -p -f - -C "$1"', dest))
        assert process.stdin is not None
        try:
            with tarfile.open(fileobj=process.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for item in items:
                    info = tarfile.TarInfo(item.relative)
                    info.size, info.mtime, info.mode = item.size, item.mtime, item.mode
                    with (root / item.relative).open("rb") as handle:
                        tar.addfile(info, _Counting(handle, sent, total, progress))
        except OSError:
            pass  # the remote side went away (broken pipe); its exit status below says why
        try:
            _, err = process.communicate(timeout=UPLOAD_TIMEOUT)  # closes stdin
        except subprocess.TimeoutExpired as exc:
            process.kill()
            raise ConnectionFailed(f"cluster {self.cluster}: the upload to {dest} stalled") from exc
        self.ssh.check(process.returncode, err.decode("utf-8", "replace"), "uploading the code")
        if process.returncode != 0:
            raise self._fail("upload the code to", dest, err)
        return sent[0]

    def _delete(self, dest: str, names: list[str], command: str) -> None:
        batch: list[str] = []
        size = 0
        for name in [*names, None]:
            if name is not None:
                path = posixpath.join(dest, name)
                batch.append(path)
                size += len(path) + 3
            if batch and (name is None or size > ARGS_BYTES):
                status, _, err = self.ssh.run(
                    remote_command([command, "--", *batch]), timeout=FILE_TIMEOUT
                )
                if status != 0 and command == "rm":
                    raise self._fail("delete old files in", dest, err)
                batch, size = [], 0

    def upload_tree(
        self,
        root: Path,
        files: Sequence[LocalFile],
        dest: str,
        *,
        seed: Seed | None = None,
        progress: Progress | None = None,
    ) -> UploadStats:
        recorded = seed.manifest if seed is not None else {}
        names = seed_candidates(files, recorded)
        if seed is not None and names:
            # Unchanged files of the previous snapshot, copied on the cluster (no bytes sent).
            self.ssh.run(
                sh_script(COPY_LISTED_FILES, seed.code_dir, dest),
                timeout=UPLOAD_TIMEOUT,
                stdin=b"\0".join(name.encode("utf-8", "surrogateescape") for name in names) + b"\0",
            )
        present, folders = self._walk(dest) if names else ({}, set())
        plan = plan_upload(files, present, folders, recorded)
        bytes_sent = self._tar_upload(root, plan.send, dest, progress)
        self._delete(dest, plan.remove, "rm")
        wanted = {posixpath.dirname(item.relative) for item in files}
        wanted |= {
            "/".join(name.split("/")[: i + 1])
            for name in wanted
            for i in range(name.count("/") + 1)
        }
        stale = sorted(folders - wanted, key=lambda name: -name.count("/"))
        self._delete(dest, stale, "rmdir")
        return UploadStats(
            files=len(files),
            sent=len(plan.send),
            kept=len(plan.keep),
            removed=len(plan.remove),
            bytes_sent=bytes_sent,
            manifest=manifest_after(plan, recorded),
        )


def _ns(seconds: str) -> int:
    """``find -printf %T@`` (``1700000000.1234567890``) -> nanoseconds; 0 if unreadable."""
    try:
        return int(Decimal(seconds) * 10**9)
    except ArithmeticError:
        return 0
