"""Real users on the sandbox: run the nsml-hpc CLI as alice and bob (``runuser``), never as
root, each with their own HOME, config and XDG folders.

Their nsml-hpc is this checkout installed (editable) into a virtual environment they can read,
``/opt/nsml-team-venv/<checkout hash>`` made with the system's Python (the development
``.venv`` lives under root's pyenv, which other users cannot execute). It is made once per
checkout and pyproject.toml, ~45 s.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent.parent
VENV_ROOT = Path("/opt/nsml-team-venv")
SYSTEM_PYTHON = "/usr/bin/python3"
TEAM_GROUP = "nsmlteam"
USERS = ("alice", "bob")


def team_venv() -> Path:
    """The readable virtual environment with this checkout installed (made if missing)."""
    stamp_text = f"{REPO}\n{hashlib.sha256((REPO / 'pyproject.toml').read_bytes()).hexdigest()}"
    venv = VENV_ROOT / hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    stamp = venv / ".nsml-team-stamp"
    if stamp.is_file() and stamp.read_text() == stamp_text:
        return venv
    VENV_ROOT.mkdir(mode=0o755, exist_ok=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "-e",
            f"{REPO}[postgres]",
        ],
        check=True,
        timeout=900,
        capture_output=True,
    )
    stamp.write_text(stamp_text)
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True, timeout=60)
    return venv


def ensure_team_group() -> str:
    """A Unix group holding alice and bob (for the shared SQLite catalog)."""
    try:
        members = set(grp.getgrnam(TEAM_GROUP).gr_mem)
    except KeyError:
        subprocess.run(["groupadd", "-f", TEAM_GROUP], check=True, timeout=30)
        members = set()
    for user in USERS:
        if user not in members:
            subprocess.run(["usermod", "-aG", TEAM_GROUP, user], check=True, timeout=30)
    return TEAM_GROUP


@dataclass
class Member:
    """One real user with their own config, running nsml-hpc as themself."""

    name: str
    venv: Path
    home: Path  # this test's folder of theirs (config, XDG data), owned by them
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, *argv: str, timeout: float = 180.0, check: bool = False, cwd: Path | None = None
    ) -> Any:
        done = subprocess.run(
            ["runuser", "-u", self.name, "--", "env", "-i", *self._env(), *argv],
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd=cwd or self.home,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{self.name}: {' '.join(argv)} -> {done.returncode}\n"
                f"{done.stdout.decode(errors='replace')}\n{done.stderr.decode(errors='replace')}"
            )
        return done

    def nsml(
        self, *argv: str, timeout: float = 180.0, check: bool = False, cwd: Path | None = None
    ) -> Any:
        return self.run(
            str(self.venv / "bin" / "nsml-hpc"), *argv, timeout=timeout, check=check, cwd=cwd
        )

    def json(self, *argv: str) -> Any:
        done = self.nsml(*argv, "--json", check=True)
        return json.loads(done.stdout)

    def _env(self) -> list[str]:
        base = {
            "HOME": str(Path(pwd.getpwnam(self.name).pw_dir)),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "NSML_HPC_CONFIG": str(self.home / "config.toml"),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "NSML_HPC_POLL_FLOOR": "0.5",
            "NSML_HPC_SUBMIT_GRACE": "2",  # short: a wrong LOST would show at once
        }
        return [f"{key}={value}" for key, value in {**base, **self.env}.items()]


def make_members(base: Path, venv: Path, catalog_url: str, run_root: Path) -> dict[str, Member]:
    """alice and bob, each with a private folder under ``base`` and the shared catalog."""
    members = {}
    for name in USERS:
        home = base / name
        home.mkdir(parents=True)
        (home / "config.toml").write_text(
            f"catalog = {json.dumps(catalog_url)}\nrun_root = {json.dumps(str(run_root))}\n"
        )
        (home / "config.toml").chmod(0o600)
        uid = pwd.getpwnam(name).pw_uid
        gid = pwd.getpwnam(name).pw_gid
        for path in [home, *home.rglob("*")]:
            os.chown(path, uid, gid)
        members[name] = Member(name, venv, home)
    return members


def shared_folder(prefix: str) -> Path:
    """A fresh folder everyone can pass through (each member's things inside are theirs)."""
    folder = Path("/tmp") / f"{prefix}-{uuid.uuid4().hex[:10]}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    return folder


def make_run_root(base: Path) -> Path:
    """A run root each member writes their own ``<user>/`` folder into (sticky, like /tmp)."""
    root = base / "runs"
    root.mkdir()
    root.chmod(0o1777)
    return root


def write_code(member: Member, folder: str, script: str, body: str) -> Path:
    """The member's code folder (theirs, in their test folder) with one script."""
    code = member.home / folder
    code.mkdir()
    (code / script).write_text(body)
    pw = pwd.getpwnam(member.name)
    for path in (code, code / script):
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return code
