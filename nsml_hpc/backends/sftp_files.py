"""Run directories on a remote cluster, over the connection's SFTP session.

Metric files are read from the stored offset only (``seek`` + ``read`` of the new bytes; the
``bytes_read`` counter lets tests prove it). Writes go to a temporary name and are renamed into
place. A code upload goes into the run directory while that directory still has its temporary
name, so a connection that drops mid-upload leaves nothing that looks like a complete snapshot;
files already on the cluster from the previous snapshot are kept (see
:mod:`nsml_hpc.code.upload`).
"""

from __future__ import annotations

import contextlib
import errno
import posixpath
import secrets
import stat
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import paramiko

from nsml_hpc.backends.files import DirEntry, FileStat, removable
from nsml_hpc.backends.remote_shell import (
    COPY_LISTED_FILES,
    REFUSED,
    parse_sizes,
    read_many_command,
    read_only_command,
    remove_tree_command,
    sh_script,
    sizes_command,
    split_read_many,
)
from nsml_hpc.backends.ssh_connect import SshConnection
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
from nsml_hpc.errors import BackendError

CHUNK = 256 * 1024
PREFETCH_FROM = 1024 * 1024  # reads larger than this are pipelined
DEFAULT_FILE_MODE = 0o644
COPY_TIMEOUT = 600.0
READ_TIMEOUT = 120.0
SFTP_ERRORS = (OSError, EOFError, paramiko.SSHException)
LINK_COPY_LIMIT = 64 * 1024 * 1024  # a "linked" file SFTP copies instead: read whole


def _missing(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOENT


class SftpFiles:
    """:class:`~nsml_hpc.backends.files.RunFiles` over SFTP."""

    def __init__(self, connection: SshConnection) -> None:
        self.connection = connection
        self._home: str | None = None
        self.bytes_read = 0  # bytes of file content read so far

    @property
    def cluster(self) -> str:
        return self.connection.cluster

    def _sftp(self) -> paramiko.SFTPClient:
        return self.connection.sftp()

    def home(self) -> str:
        if self._home is None:
            try:
                self._home = self._sftp().normalize(".")
            except SFTP_ERRORS as exc:
                raise self.connection.failure("find the home directory", ".", exc) from exc
        return self._home

    def exists(self, path: str) -> bool:
        try:
            self._sftp().lstat(path)
        except SFTP_ERRORS as exc:
            if _missing(exc):
                return False
            raise self.connection.failure("look at", path, exc) from exc
        return True

    def size(self, path: str) -> int | None:
        try:
            return int(self._sftp().stat(path).st_size or 0)
        except SFTP_ERRORS as exc:
            if _missing(exc):
                return None
            raise self.connection.failure("look at", path, exc) from exc

    def sizes(self, paths: Sequence[str]) -> dict[str, int | None]:
        """One ``stat`` command over the connection (one round trip however many files);
        per-file SFTP stats if the login node has no GNU stat (or allows no commands)."""
        if len(paths) > 1:
            status, out, _ = self.connection.exec(sizes_command(paths), timeout=READ_TIMEOUT)
            if status == 0:
                return parse_sizes(out, paths)
        return {path: self.size(path) for path in paths}

    def read_from(self, path: str, offset: int, limit: int) -> bytes:
        sftp = self._sftp()
        try:
            with sftp.open(path, "rb") as handle:
                size = handle.stat().st_size
                want = min(limit, (size or 0) - offset)
                if want <= 0:
                    return b""
                handle.seek(offset)
                if want > PREFETCH_FROM:
                    handle.prefetch(offset + want)
                data = handle.read(want)
        except SFTP_ERRORS as exc:
            if _missing(exc):
                return b""
            raise self.connection.failure("read", path, exc) from exc
        self.bytes_read += len(data)
        return bytes(data)

    def read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        """One command over the connection (``tail`` from each offset: only new bytes are
        read); SFTP open/seek/read per file when it does not line up or commands fail."""
        if len(requests) > 1:
            command, token = read_many_command(requests)
            status, out, _ = self.connection.exec(command, timeout=READ_TIMEOUT)
            chunks = split_read_many(out, token, requests) if status == 0 else None
            if chunks is not None:
                self.bytes_read += sum(len(chunk) for chunk in chunks)
                return chunks
        return [self.read_from(path, offset, limit) for path, offset, limit in requests]

    def stat(self, path: str) -> FileStat | None:
        """SFTP's lstat (mtimes in whole seconds: enough to notice a change)."""
        try:
            info = self._sftp().lstat(path)
        except SFTP_ERRORS as exc:
            if _missing(exc):
                return None
            raise self.connection.failure("look at", path, exc) from exc
        return FileStat(
            int(info.st_size or 0), int(info.st_mtime or 0) * 10**9, stat.S_ISDIR(info.st_mode or 0)
        )

    def list_dir(self, path: str) -> list[DirEntry] | None:
        try:
            entries = self._sftp().listdir_attr(path)
        except SFTP_ERRORS as exc:
            if _missing(exc):
                return None
            raise self.connection.failure("list", path, exc) from exc
        return [
            DirEntry(
                entry.filename, stat.S_ISDIR(entry.st_mode or 0), int(entry.st_mtime or 0) * 10**9
            )
            for entry in entries
        ]

    def read_bytes(self, path: str, limit: int) -> bytes | None:
        try:
            with self._sftp().open(path, "rb") as handle:
                data = handle.read(limit + 1)
        except SFTP_ERRORS as exc:
            if _missing(exc):
                return None
            raise self.connection.failure("read", path, exc) from exc
        self.bytes_read += len(data)
        return bytes(data)

    def make_dirs(self, path: str) -> None:
        sftp = self._sftp()
        try:
            info = sftp.stat(path)
        except SFTP_ERRORS as exc:
            if not _missing(exc):
                raise self.connection.failure("create", path, exc) from exc
        else:
            if not stat.S_ISDIR(info.st_mode or 0):
                raise BackendError(f"cluster {self.cluster}: {path} exists and is not a folder")
            return
        parent = posixpath.dirname(path.rstrip("/"))
        if parent and parent != path:
            self.make_dirs(parent)
        try:
            sftp.mkdir(path)
        except SFTP_ERRORS as exc:
            if not self.exists(path):  # not a race with another submit: a real failure
                raise self.connection.failure("create", path, exc) from exc

    def write_bytes(self, path: str, data: bytes) -> None:
        sftp = self._sftp()
        folder, name = posixpath.split(path)
        temp = posixpath.join(folder, f".{name}.tmp-{secrets.token_hex(4)}")
        try:
            with sftp.open(temp, "wb") as out:
                out.set_pipelined(True)
                out.write(data)
            sftp.posix_rename(temp, path)
        except SFTP_ERRORS as exc:
            error = self.connection.failure("write", path, exc)
            if self.connection.is_active():
                with contextlib.suppress(*SFTP_ERRORS):
                    sftp.remove(temp)
            raise error from exc

    def write_files(self, root: str, files: Mapping[str, bytes]) -> None:
        sftp = self._sftp()
        made: set[str] = set()
        target = root
        try:
            for relative, data in files.items():
                target = posixpath.join(root, relative)
                folder = posixpath.dirname(target)
                if folder not in made:
                    self.make_dirs(folder)
                    made.add(folder)
                with sftp.open(target, "wb") as out:
                    out.set_pipelined(True)
                    out.write(data)
        except SFTP_ERRORS as exc:
            raise self.connection.failure("write", target, exc) from exc

    def link_files(self, root: str, links: Mapping[str, str]) -> None:
        """Copies: SFTP (as paramiko speaks it) has no hard links. Each source is read once."""
        data: dict[str, bytes] = {}
        for source in set(links.values()):
            read = self.read_bytes(source, LINK_COPY_LIMIT)
            if read is None or len(read) > LINK_COPY_LIMIT:
                raise BackendError(
                    f"cluster {self.cluster}: cannot copy {source}: missing or too big"
                )
            data[source] = read
        self.write_files(root, {relative: data[source] for relative, source in links.items()})

    def batch(self) -> AbstractContextManager[None]:
        """Nothing to gather: remote writes are not flushed one by one here."""
        return nullcontext()

    def rename(self, source: str, target: str) -> None:
        if self.exists(target):
            raise BackendError(f"cluster {self.cluster}: {target} already exists")
        try:
            self._sftp().rename(source, target)  # SFTP's rename never replaces a folder
        except SFTP_ERRORS as exc:
            raise self.connection.failure(f"rename {source} to", target, exc) from exc

    def remove_tree(self, path: str, *, inside: str) -> None:
        """One command (not one SFTP round trip per file); the guard runs on the cluster."""
        if not removable(path, inside):
            raise BackendError(f"refusing to delete {path}: not a folder directly in {inside}")
        status, _, err = self.connection.exec(
            remove_tree_command(path, inside), timeout=COPY_TIMEOUT
        )
        if status == REFUSED:
            raise BackendError(f"refusing to delete {path}: not a folder directly in {inside}")
        if status != 0:
            message = err.decode("utf-8", "replace").strip().splitlines()
            raise BackendError(
                f"cluster {self.cluster}: cannot delete {path}: "
                + (message[-1] if message else f"rm exited with {status}")
            )

    def make_read_only(self, path: str) -> None:
        """One command on the cluster (not one SFTP chmod per file)."""
        status, _, err = self.connection.exec(read_only_command(path), timeout=COPY_TIMEOUT)
        if status != 0:
            message = err.decode("utf-8", "replace").strip().splitlines()
            raise BackendError(
                f"cluster {self.cluster}: cannot make {path} read-only: "
                + (message[-1] if message else f"chmod exited with {status}")
            )

    def copy_out(self, path: str, destination: Path) -> None:
        """Walk the folder over SFTP and fetch every file (links are recreated as links)."""
        sftp = self._sftp()
        try:
            info = sftp.lstat(path)
        except SFTP_ERRORS as exc:
            raise self.connection.failure("copy", path, exc) from exc
        if not stat.S_ISDIR(info.st_mode or 0):
            raise BackendError(f"{path} is not a folder")
        pending = [(path, destination)]
        current = path
        try:
            destination.mkdir(parents=True)
            while pending:
                folder, local = pending.pop()
                for entry in sftp.listdir_attr(folder):
                    current = posixpath.join(folder, entry.filename)
                    target = local / entry.filename
                    mode = entry.st_mode or 0
                    if stat.S_ISDIR(mode):
                        target.mkdir()
                        pending.append((current, target))
                    elif stat.S_ISLNK(mode):
                        target.symlink_to(sftp.readlink(current) or "")
                    elif stat.S_ISREG(mode):
                        sftp.get(current, str(target))
                        self.bytes_read += entry.st_size or 0
        except SFTP_ERRORS as exc:
            if isinstance(exc, OSError) and exc.filename is not None:
                raise BackendError(f"cannot copy {path} to {destination}: {exc}") from exc
            raise self.connection.failure("copy", current, exc) from exc

    # --- upload ----------------------------------------------------------------------------

    def _walk(self, top: str) -> tuple[dict[str, RemoteFile], set[str]]:
        """Files (with size and mtime) and folders under ``top``, relative to it."""
        files: dict[str, RemoteFile] = {}
        folders: set[str] = set()
        pending = [""]
        sftp = self._sftp()
        while pending:
            relative = pending.pop()
            folder = posixpath.join(top, relative) if relative else top
            try:
                entries = sftp.listdir_attr(folder)
            except SFTP_ERRORS as exc:
                if _missing(exc):
                    continue
                raise self.connection.failure("list", folder, exc) from exc
            for entry in entries:
                name = f"{relative}/{entry.filename}" if relative else entry.filename
                mode = entry.st_mode or 0
                if stat.S_ISDIR(mode):
                    folders.add(name)
                    pending.append(name)
                elif stat.S_ISREG(mode):
                    files[name] = RemoteFile(name, entry.st_size or 0, int(entry.st_mtime or 0))
        return files, folders

    def _copy_seed(self, seed: Seed, dest: str, names: list[str]) -> None:
        """Copy unchanged files of the previous snapshot on the cluster itself (one command,
        no bytes sent); what could not be copied is simply sent afterwards."""
        self.connection.exec(
            sh_script(COPY_LISTED_FILES, seed.code_dir, dest),
            timeout=COPY_TIMEOUT,
            stdin=b"\0".join(name.encode("utf-8", "surrogateescape") for name in names) + b"\0",
        )

    def _send(
        self,
        root: Path,
        item: LocalFile,
        target: str,
        sent: list[int],
        total: int,
        progress: Progress | None,
    ) -> None:
        sftp = self._sftp()
        written = 0
        with (root / item.relative).open("rb") as source, sftp.open(target, "wb") as out:
            out.set_pipelined(True)
            while chunk := source.read(CHUNK):
                out.write(chunk)
                written += len(chunk)
                sent[0] += len(chunk)
                if progress is not None:
                    progress(sent[0], total)
        if written != item.size:
            raise BackendError(f"{item.relative} changed while it was being uploaded; submit again")
        if item.mode != DEFAULT_FILE_MODE:
            sftp.chmod(target, item.mode)
        sftp.utime(target, (item.mtime, item.mtime))

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
            self._copy_seed(seed, dest, names)
        present, folders = self._walk(dest) if names else ({}, set())
        plan = plan_upload(files, present, folders, recorded)
        self.make_dirs(dest)
        sftp = self._sftp()
        total = plan.bytes_to_send
        sent = [0]
        current = dest
        try:
            for folder in plan.directories:
                current = posixpath.join(dest, folder)
                if folder not in folders:
                    sftp.mkdir(current)
            for item in plan.send:
                current = posixpath.join(dest, item.relative)
                self._send(root, item, current, sent, total, progress)
            for relative in plan.remove:
                current = posixpath.join(dest, relative)
                sftp.remove(current)
            wanted = {posixpath.dirname(item.relative) for item in files}
            wanted |= {part for name in wanted for part in _parents(name)}
            for folder in sorted(folders - wanted, key=lambda name: -name.count("/")):
                current = posixpath.join(dest, folder)
                sftp.rmdir(current)
        except SFTP_ERRORS as exc:
            raise self.connection.failure("upload the code to", current, exc) from exc
        if progress is not None and total:
            progress(total, total)
        return UploadStats(
            files=len(files),
            sent=len(plan.send),
            kept=len(plan.keep),
            removed=len(plan.remove),
            bytes_sent=sent[0],
            manifest=manifest_after(plan, recorded),
        )


def _parents(relative: str) -> list[str]:
    parts = relative.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))] if relative else []
