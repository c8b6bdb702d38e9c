"""``~/.ssh/config`` as ssh itself reads it: ``Include``, ``Match`` and all.

Two sources answer the same question ("what would ssh use for this host?"):

- :class:`SystemSsh` asks the installed ssh client (``ssh -G HOST``), which evaluates
  ``Include``, ``Host``, ``Match`` (``exec`` included), ``HostName`` tokens and the system-wide
  ``/etc/ssh/ssh_config`` exactly as a real login would. It is the source whenever an ``ssh``
  program is on PATH.
- :class:`ParsedSshConfig` is the fallback without an ssh client: paramiko's parser (which
  ignores ``Include``, paramiko#1044) fed with the files flattened by our own ``Include``
  expansion (globs in lexical order, relative paths under ``~/.ssh`` or ``/etc/ssh``, nesting
  limited to 16 as in ssh, conditional includes inside ``Host`` blocks).

``NSML_HPC_SSH_CONFIG`` names another file; ssh then reads only that one (``ssh -F``), as does
the fallback (see :func:`configured_file`). Reading configuration is all this module does;
nothing connects.
"""

from __future__ import annotations

import getpass
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paramiko

from nsml_hpc.config import locations
from nsml_hpc.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/ssh/ssh_config")
MAX_INCLUDE_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
SSH_G_TIMEOUT = 30.0  # a Match exec may run a command
_KEYWORD = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(.*?)\s*$")
_TOKEN = re.compile(r"%(.)")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class HostOptions:
    """What ssh uses for one host. Lists and optional fields hold only what a config file set
    (ssh's built-in defaults are left to the caller)."""

    hostname: str
    port: int | None
    user: str | None
    identity_files: tuple[str, ...] = ()  # ``~``, tokens and ${VAR} expanded
    proxy_jump: str | None = None
    proxy_command: str | None = None  # tokens expanded
    user_known_hosts: tuple[str, ...] = ()


class SshConfigSource(Protocol):
    """Answers "what would ssh use for ``host``" (``user``/``port``: ``-l``/``-p`` given)."""

    def lookup(self, host: str, *, user: str | None = None, port: int | None = None) -> HostOptions:
        """The options of ``host``; ConfigError when the configuration cannot be applied."""
        ...


def _passwd_home() -> Path | None:
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (KeyError, OSError):
        return None


def configured_file() -> Path | None:
    """The file to hand ssh as ``-F``, or None when ssh's own default is the one meant.

    nsml-hpc's config file is ``NSML_HPC_SSH_CONFIG`` or ``$HOME/.ssh/config``. ssh itself
    reads ``~/.ssh/config`` of the passwd home and ignores ``$HOME``; where the two homes
    differ (tests, sites that move HOME), ssh is told the file (``/dev/null`` when there is
    none), so both transports and both config sources read the same one. A file named by
    ``NSML_HPC_SSH_CONFIG`` that does not exist is an error, not a silent fallback."""
    path = locations.ssh_config_file()
    if os.environ.get("NSML_HPC_SSH_CONFIG"):
        if not path.exists():
            raise ConfigError(f"NSML_HPC_SSH_CONFIG names {path}, which does not exist")
        return path
    passwd_home = _passwd_home()
    if passwd_home is not None and passwd_home.resolve() == Path.home().resolve():
        return None
    return path if path.is_file() else Path(os.devnull)


def ssh_program() -> str | None:
    """The ssh client on PATH, if any."""
    return shutil.which("ssh")


def ssh_config_source() -> SshConfigSource:
    """``ssh -G`` when an ssh client is installed, else our parser (see the module doc)."""
    path = configured_file()
    ssh = ssh_program()
    if ssh is not None:
        return SystemSsh(path, ssh=ssh)
    if path is not None:  # as ``ssh -F``: that file alone
        return ParsedSshConfig(path, system=None)
    return ParsedSshConfig(locations.ssh_config_file(), system=SYSTEM_CONFIG)


def _none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if not text or text.lower() == "none" else text


def _port(value: Any, host: str) -> int | None:
    if value is None:
        return None
    try:
        port = int(str(value))
    except ValueError:
        raise ConfigError(f"ssh config gives host {host!r} an invalid Port {value!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"ssh config gives host {host!r} an invalid Port {value!r}")
    return port


# --- ssh -G ---------------------------------------------------------------------------------


def expand_tokens(text: str, *, alias: str, hostname: str, port: int, user: str) -> str:
    """ssh's ``%`` tokens (and ``${VAR}``) in IdentityFile/ProxyCommand as ``ssh -G`` prints
    them unexpanded. An unknown token or an unset variable is an error, as it is for ssh."""
    local_user = getpass.getuser()
    values = {
        "%": "%",
        "d": str(Path.home()),
        "h": hostname,
        "i": str(os.getuid()),
        "L": socket.gethostname().split(".", 1)[0],
        "l": socket.gethostname(),
        "n": alias,
        "p": str(port),
        "r": user,
        "u": local_user,
    }

    def token(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ConfigError(
                f"ssh config for host {alias!r}: unsupported token %{key} in {text!r}"
            )
        return values[key]

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"ssh config for host {alias!r}: ${{{name}}} is not set ({text!r})")
        return os.environ[name]

    return _TOKEN.sub(token, _ENV.sub(variable, text))


class SystemSsh:
    """The installed ssh client's view of each host (``ssh -G``), cached per source."""

    def __init__(self, config_file: Path | None = None, *, ssh: str = "ssh") -> None:
        self.config_file = config_file
        self.ssh = ssh
        self._cache: dict[tuple[str, str | None, int | None], HostOptions] = {}
        self._defaults: dict[str, list[str]] | None = None
        self.calls = 0  # ssh -G processes run (tests count them)

    def _dump(
        self, host: str, *, config: str | None, user: str | None, port: int | None
    ) -> dict[str, list[str]]:
        argv = [self.ssh, "-G"]
        if config is not None:
            argv += ["-F", config]
        if user:
            argv += ["-l", user]
        if port:
            argv += ["-p", str(port)]
        argv += ["--", host]
        self.calls += 1
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=SSH_G_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"cannot apply the ssh config to host {host!r}: {exc}") from exc
        if done.returncode != 0:
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            why = lines[0] if lines else f"ssh -G exited with {done.returncode}"
            raise ConfigError(f"cannot apply the ssh config to host {host!r}: {why}")
        options: dict[str, list[str]] = {}
        for line in done.stdout.splitlines():
            key, _, value = line.partition(" ")
            options.setdefault(key.lower(), []).append(value.strip())
        return options

    def _builtin(self) -> dict[str, list[str]]:
        """ssh's built-in defaults (no config file at all), to tell them from set values."""
        if self._defaults is None:
            self._defaults = self._dump(
                "nsml-hpc-defaults.invalid", config=os.devnull, user=None, port=None
            )
        return self._defaults

    def lookup(self, host: str, *, user: str | None = None, port: int | None = None) -> HostOptions:
        key = (host, user, port)
        if key in self._cache:
            return self._cache[key]
        config = str(self.config_file) if self.config_file is not None else None
        dump = self._dump(host, config=config, user=user, port=port)
        builtin = self._builtin()

        def one(name: str) -> str | None:
            values = dump.get(name)
            return _none(values[0]) if values else None

        hostname = one("hostname") or host
        real_port = _port(one("port"), host) or 22
        real_user = one("user") or user or getpass.getuser()
        identities = dump.get("identityfile", [])
        if identities == builtin.get("identityfile", []):
            identities = []  # ssh's default list: nothing was configured
        known = dump.get("userknownhostsfile", [])
        configured_known = [] if known == builtin.get("userknownhostsfile", []) else known
        proxy_command = one("proxycommand")
        result = HostOptions(
            hostname=hostname,
            port=real_port,
            user=real_user,
            identity_files=tuple(
                str(
                    Path(
                        expand_tokens(
                            path, alias=host, hostname=hostname, port=real_port, user=real_user
                        )
                    ).expanduser()
                )
                for path in identities
            ),
            proxy_jump=one("proxyjump"),
            proxy_command=expand_tokens(
                proxy_command, alias=host, hostname=hostname, port=real_port, user=real_user
            )
            if proxy_command
            else None,
            user_known_hosts=tuple(
                item for value in configured_known for item in value.split() if item
            ),
        )
        self._cache[key] = result
        return result


# --- the fallback: paramiko's parser with Include ------------------------------------------


def _host_matches(patterns: str, host: str) -> bool:
    """``Host`` pattern semantics: any positive pattern matches and no negated one does."""
    matched = False
    for pattern in patterns.split():
        negated = pattern.startswith("!")
        regex = re.escape(pattern.lstrip("!")).replace(r"\*", ".*").replace(r"\?", ".")
        if re.fullmatch(regex, host):
            if negated:
                return False
            matched = True
    return matched


def _include_paths(value: str, base: Path, source: Path) -> list[Path]:
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ConfigError(f"{source}: bad Include line {value!r}: {exc}") from exc
    found: list[Path] = []
    for word in words:
        path = Path(word).expanduser()
        if not path.is_absolute():
            path = base / path
        anchor = Path(path.anchor)
        # Lexical order, as ssh; a pattern that matches nothing is ignored, as by ssh.
        found += sorted(anchor.glob(str(path.relative_to(anchor))), key=str)
    return found


@dataclass
class _Flattened:
    lines: list[str]
    has_blocks: bool  # a Host or Match line came from this file (or one it includes)


def flatten(path: Path, host: str, *, base: Path, depth: int = 0) -> _Flattened:
    """The lines of ``path`` with every ``Include`` replaced by the files it names, for
    looking up ``host`` (an Include inside a ``Host`` block that does not match ``host``
    contributes nothing, as in ssh).

    After an included file that has ``Host``/``Match`` blocks of its own, the including
    block's header is repeated so that the lines after the Include stay in their own block.
    Include inside a ``Match`` block is supported when the included files have no blocks of
    their own (whether they would apply depends on the Match; only ssh can decide that).
    """
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfigError(
            f"{path}: Include nested more than {MAX_INCLUDE_DEPTH} deep (an Include loop?)"
        )
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read SSH config {path}: {exc.strerror or exc}") from exc
    out: list[str] = []
    has_blocks = False
    header: str | None = None  # the current Host/Match line; None: before the first one
    header_kind = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _KEYWORD.match(stripped)
        keyword = match.group(1).lower() if match else ""
        if keyword in ("host", "match"):
            header, header_kind, has_blocks = stripped, keyword, True
            out.append(stripped)
            continue
        if keyword != "include" or match is None:
            out.append(stripped)
            continue
        if header_kind == "host":
            patterns = _KEYWORD.match(header or "")
            if patterns is not None and not _host_matches(patterns.group(2), host):
                continue  # the enclosing Host block does not apply: nothing included can
        for included in _include_paths(match.group(2), base, path):
            inner = flatten(included, host, base=base, depth=depth + 1)
            if inner.has_blocks and header_kind == "match":
                raise ConfigError(
                    f"{path}: Include of {included} (which has Host/Match blocks) inside a "
                    "Match block needs the ssh program to evaluate; install OpenSSH's client"
                )
            out += inner.lines
            if inner.has_blocks:
                has_blocks = True
                out.append(header if header is not None else "Host *")
    return _Flattened(out, has_blocks)


class ParsedSshConfig:
    """The fallback source: ``path`` (then the system-wide ``system`` file, as ssh reads them)
    flattened by :func:`flatten` and looked up with paramiko's parser."""

    def __init__(self, path: Path | None, *, system: Path | None = SYSTEM_CONFIG) -> None:
        self.path = path
        self.system = system

    def _text(self, host: str, user: str | None, port: int | None) -> str:
        # -l/-p beat the config files in ssh (the first value of an option wins); set first,
        # they also decide `Match user` exactly as for ssh.
        lines = [f"User {user}" if user else "", f"Port {port}" if port else ""]
        if self.path is not None and self.path.is_file():
            lines += flatten(self.path, host, base=Path.home() / ".ssh").lines
        if self.system is not None and self.system.is_file():
            lines += ["Host *", *flatten(self.system, host, base=self.system.parent).lines]
        return "\n".join(line for line in lines if line) + "\n"

    def lookup(self, host: str, *, user: str | None = None, port: int | None = None) -> HostOptions:
        text = self._text(host, user, port)
        try:
            options = dict(paramiko.SSHConfig.from_text(text).lookup(host))
        except Exception as exc:  # paramiko raises assorted errors for what it cannot run
            raise ConfigError(f"cannot apply the ssh config to host {host!r}: {exc}") from exc
        known = _none(options.get("userknownhostsfile"))
        return HostOptions(
            hostname=str(options.get("hostname", host)),
            port=_port(options.get("port"), host),
            user=_none(options.get("user")),
            identity_files=tuple(
                str(Path(str(entry)).expanduser()) for entry in options.get("identityfile", [])
            ),
            proxy_jump=_none(options.get("proxyjump")),
            proxy_command=_none(options.get("proxycommand")),
            user_known_hosts=tuple(str(Path(item).expanduser()) for item in known.split())
            if known
            else (),
        )
