"""The code snapshot: which files of the user's project travel with a session, and the copy.

In a git work tree the file list is git's own view (tracked plus untracked-but-not-ignored,
so nested .gitignore files count exactly as git reads them); elsewhere the top .gitignore is
read with pathspec. ``.nsmlignore`` (gitignore syntax) then removes more, and a size guard
stops a submit from the home directory from copying gigabytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pathspec

from nsml_hpc.errors import SpecError

ALWAYS_IGNORED = [
    ".git/",
    "__pycache__/",
    "*.pyc",
    ".venv/",
    "venv/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".ipynb_checkpoints/",
    "*.egg-info/",
]
NSMLIGNORE = ".nsmlignore"
GIT_TIMEOUT = 30.0


@dataclass(frozen=True)
class CodeFile:
    relative: str
    size: int


@dataclass(frozen=True)
class CodeManifest:
    root: Path
    files: list[CodeFile]
    git_commit: str | None
    git_dirty: bool | None

    @property
    def total_bytes(self) -> int:
        return sum(item.size for item in self.files)


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "surrogateescape") if done.returncode == 0 else None


def _git_candidates(root: Path) -> list[str] | None:
    listing = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
    if listing is None:
        return None
    return sorted({name for name in listing.split("\0") if name})


def _walk_candidates(root: Path) -> list[str]:
    spec = _ignore_spec(root / ".gitignore")
    found: list[str] = []
    for directory, subdirs, files in os.walk(root):
        rel_dir = Path(directory).relative_to(root)
        subdirs[:] = sorted(
            name
            for name in subdirs
            if not Path(directory, name).is_symlink()
            and not spec.match_file(f"{(rel_dir / name).as_posix()}/")
        )
        for name in sorted(files):
            relative = (rel_dir / name).as_posix()
            if not spec.match_file(relative):
                found.append(relative)
    return found


def _ignore_spec(path: Path, extra: list[str] | None = None) -> pathspec.GitIgnoreSpec:
    lines = list(extra or [])
    if path.is_file():
        lines += path.read_text("utf-8", errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def collect_code(root: Path, max_bytes: int, exclude: list[Path] | None = None) -> CodeManifest:
    """The files to snapshot under ``root``; :class:`SpecError` if they exceed ``max_bytes``."""
    root = root.resolve()
    candidates = _git_candidates(root)
    in_git = candidates is not None
    if candidates is None:
        candidates = _walk_candidates(root)
    ignore = _ignore_spec(root / NSMLIGNORE, ALWAYS_IGNORED)
    excluded = [path.resolve() for path in exclude or []]
    files: list[CodeFile] = []
    for relative in candidates:
        if ignore.match_file(relative):
            continue
        path = root / relative
        if any(path == ex or ex in path.parents for ex in excluded):
            continue
        try:
            if not path.is_file():
                continue  # deleted-but-tracked files, sockets, dangling links
            size = path.stat().st_size
        except OSError:
            continue
        files.append(CodeFile(relative, size))
    manifest = CodeManifest(
        root=root,
        files=files,
        git_commit=(_git(root, "rev-parse", "HEAD") or "").strip() or None if in_git else None,
        git_dirty=bool((_git(root, "status", "--porcelain") or "").strip()) if in_git else None,
    )
    if manifest.total_bytes > max_bytes:
        largest = sorted(files, key=lambda item: item.size, reverse=True)[:3]
        names = ", ".join(f"{item.relative} ({item.size / 2**20:.1f} MiB)" for item in largest)
        raise SpecError(
            f"the code snapshot of {root} would be {manifest.total_bytes / 2**20:.1f} MiB, over "
            f"the {max_bytes / 2**20:.0f} MiB guard (largest: {names}); list data and outputs "
            f"in {NSMLIGNORE}, or raise max_code_mb in the config"
        )
    return manifest


def copy_code(manifest: CodeManifest, destination: Path) -> None:
    """Copy the manifest's files (contents, not links) under ``destination``."""
    for item in manifest.files:
        target = destination / item.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(manifest.root / item.relative, target)
