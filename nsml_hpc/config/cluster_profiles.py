"""Cluster profiles: how to reach one Slurm cluster, and the defaults of sessions submitted there.

A profile is plain data, validated once when it is read or added; nothing here connects.

    name             what ``--cluster NAME`` and the catalog call the cluster
    backend          local (Slurm's commands on this machine), ssh (a login node over SSH),
                     pyslurm (Slurm's C API on this machine), auto (pyslurm when it matches
                     the running Slurm, else local)
    host/port/user   the login node (ssh); ~/.ssh/config fills what is not given
    identity_file    private key (ssh); the SSH agent and ~/.ssh/config keys are tried too
    known_hosts      known_hosts file for strict host-key checking (default ~/.ssh/known_hosts)
    jump_host        [user@]host[:port][,...] to hop through (like ssh -J / ProxyJump)
    transport        paramiko (default) or openssh: the system ``ssh`` binary, which reuses an
                     OpenSSH ControlMaster connection (for clusters that ask for 2FA)
    control_path     ControlPath of the openssh transport (default: ~/.ssh/config's, else ours)
    control_persist  ControlPersist of the openssh transport's master connection
    run_root         where run directories live on the cluster (relative = under the home)
    dataset_root     where pushed datasets live (default: <run_root>/<user>/.datasets)
    remote_python    the cluster's interpreter for the job wrapper (and the script, without
                     an environment step); default python3 on remote clusters
    remote_path      PATH for Slurm commands on the cluster, if the SSH shell's lacks them
    slurm_conf       the cluster's slurm.conf, for a machine whose Slurm commands reach
                     several clusters (local and ssh backends): every Slurm command nsml-hpc
                     runs for this cluster gets SLURM_CONF=<it>, and so do its jobs (sbatch
                     passes the submitter's environment on)
    defaults         partition, account, qos, reservation, mail_type, mail_user,
                     exclusive, cpus_per_task, gpu_type, sbatch_args and setup lines for
                     sessions that name none (gpu_type: for sessions that ask for GPUs
                     without a type; there is no default GPU count, as a session that asks
                     for none could not be told from one that asks for 0)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from nsml_hpc.errors import ConfigError, SpecError
from nsml_hpc.job.sbatch_options import option_name, validate_sbatch_arg
from nsml_hpc.job.spec import (
    EnvStep,
    has_control_characters,
    parse_count,
    validate_env_step,
    validate_gpu_type,
    validate_mail_type,
    validate_mail_user,
    validate_slurm_name,
)

LOCAL = "local"
BACKENDS = ("auto", "local", "pyslurm", "ssh")
TRANSPORTS = ("paramiko", "openssh")
SSH_ONLY = (
    "host",
    "port",
    "user",
    "identity_file",
    "known_hosts",
    "jump_host",
    "control_path",
    "remote_path",
)
CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
HOST = re.compile(r"^[A-Za-z0-9_.%:-]{1,255}$|^\[[0-9A-Fa-f:.%]{2,64}\]$")
USER = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}$")
JUMP = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63})@)?(?P<host>[^@:\s]+)(?::(?P<port>\d{1,5}))?$"
)
PERSIST = re.compile(r"^(?:yes|no|\d{1,6}[smhdwSMHDW]?)$")
# Same rule as run directories in #SBATCH lines (render.check_cluster_path), relative allowed.
RUN_ROOT_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f\"'\\%$`]")
DEFAULT_REMOTE_RUN_ROOT = "nsml-runs"
DEFAULT_REMOTE_PYTHON = "python3"


@dataclass(frozen=True)
class ProfileDefaults:
    """What a session submitted to the cluster gets when its command line says nothing."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    setup: tuple[str, ...] = ()
    reservation: str | None = None
    mail_type: str | None = None
    mail_user: str | None = None
    sbatch_args: tuple[str, ...] = ()  # before the command line's; one of its own replaces one
    exclusive: bool | None = None  # whole nodes unless the session says --no-exclusive
    cpus_per_task: int | None = None  # unless the session gives --cpus-per-task/--cpus-per-gpu
    gpu_type: str | None = None  # for a session asking for GPUs without a type (--gpus 2)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            key: getattr(self, key)
            for key in (*NAMED_DEFAULTS, *TYPED_DEFAULTS)
            if getattr(self, key) is not None
        }
        if self.setup:
            data["setup"] = list(self.setup)
        if self.sbatch_args:
            data["sbatch_args"] = list(self.sbatch_args)
        return data


NAMED_DEFAULTS = (
    "partition",
    "account",
    "qos",
    "reservation",
    "mail_type",
    "mail_user",
    "gpu_type",
)
TYPED_DEFAULTS = ("exclusive", "cpus_per_task")  # not strings
DEFAULT_KEYS = (*NAMED_DEFAULTS, *TYPED_DEFAULTS, "setup", "sbatch_args")


@dataclass(frozen=True)
class JumpHop:
    """One host of a ``jump_host`` chain."""

    host: str
    user: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class ClusterProfile:
    name: str
    backend: str = "local"
    host: str | None = None
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    jump_host: str | None = None
    transport: str = "paramiko"
    control_path: str | None = None
    control_persist: str = "10m"
    run_root: str | None = None
    dataset_root: str | None = None
    remote_python: str | None = None
    remote_path: str | None = None
    slurm_conf: str | None = None
    connect_timeout: float = 15.0
    defaults: ProfileDefaults = field(default_factory=ProfileDefaults)

    @property
    def remote(self) -> bool:
        """Run directories live on another machine's file system."""
        return self.backend == "ssh"

    @property
    def python(self) -> str | None:
        """The job's interpreter on the cluster (None: this nsml-hpc's own interpreter)."""
        if self.remote_python:
            return self.remote_python
        return DEFAULT_REMOTE_PYTHON if self.remote else None

    def jump_hops(self) -> list[JumpHop]:
        return parse_jump_hosts(self.jump_host) if self.jump_host else []

    def target_text(self) -> str:
        """``alice@login.example.org:2222 via gw (paramiko)`` or ``this machine``, with
        ``SLURM_CONF=...`` when the profile names a Slurm configuration."""
        conf = f" SLURM_CONF={self.slurm_conf}" if self.slurm_conf else ""
        if not self.remote:
            return f"this machine{conf}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        via = f" via {self.jump_host}" if self.jump_host else ""
        return f"{user}{self.host}{port}{via} ({self.transport}){conf}"

    def to_dict(self) -> dict[str, Any]:
        """The profile as its TOML table holds it (defaults left out)."""
        data: dict[str, Any] = {"backend": self.backend}
        blank = ClusterProfile(name=self.name)
        for item in fields(self):
            if item.name in ("name", "backend", "defaults"):
                continue
            value = getattr(self, item.name)
            if value is not None and value != getattr(blank, item.name):
                data[item.name] = value
        defaults = self.defaults.to_dict()
        if defaults:
            data["defaults"] = defaults
        return data


def parse_jump_hosts(text: str) -> list[JumpHop]:
    """``gw``, ``me@gw:2222,me@inner`` -> hops, outermost first."""
    hops: list[JumpHop] = []
    for item in text.split(","):
        match = JUMP.fullmatch(item.strip())
        if match is None or not HOST.fullmatch(match.group("host")):
            raise ConfigError(f"jump_host {text!r}: use [user@]host[:port], comma-separated")
        port = match.group("port")
        if port is not None and not 1 <= int(port) <= 65535:
            raise ConfigError(f"jump_host {text!r}: port {port} is out of range")
        hops.append(JumpHop(host=match.group("host"), user=match.group("user"), port=_int(port)))
    return hops


def _int(text: str | None) -> int | None:
    return int(text) if text is not None else None


def _text(name: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value or has_control_characters(value):
        raise ConfigError(
            f"cluster {name!r}: {key} must be a non-empty one-line string, got {value!r}"
        )
    return value


def _defaults(name: str, data: Any) -> ProfileDefaults:
    if not isinstance(data, dict):
        raise ConfigError(f"cluster {name!r}: defaults must be a table")
    unknown = set(data) - set(DEFAULT_KEYS)
    if unknown:
        from nsml_hpc.suggest import did_you_mean

        named = ", ".join(key + did_you_mean(key, DEFAULT_KEYS) for key in sorted(unknown))
        raise ConfigError(
            f"cluster {name!r}: unknown defaults key(s) {named}; valid: {', '.join(DEFAULT_KEYS)}"
        )
    setup = _lines(name, "setup", data.get("setup", []))
    sbatch_args = _lines(name, "sbatch_args", data.get("sbatch_args", []))
    checks: dict[str, Callable[[str], str]] = {
        "partition": lambda text: validate_slurm_name("defaults.partition", text),
        "account": lambda text: validate_slurm_name("defaults.account", text),
        "qos": lambda text: validate_slurm_name("defaults.qos", text),
        "reservation": lambda text: validate_slurm_name("defaults.reservation", text),
        "mail_type": validate_mail_type,
        "mail_user": validate_mail_user,
        "gpu_type": lambda text: validate_gpu_type("defaults.gpu_type", text),
    }
    try:
        values: dict[str, Any] = {
            key: checks[key](_text(name, f"defaults.{key}", data[key]))
            for key in NAMED_DEFAULTS
            if key in data
        }
        lines = tuple(
            validate_env_step(EnvStep("setup", _text(name, "defaults.setup", line))).value
            for line in setup
        )
        passed = tuple(
            validate_sbatch_arg(_text(name, "defaults.sbatch_args", text)) for text in sbatch_args
        )
        names = [option_name(text) for text in passed]
        if len(set(names)) != len(names):
            raise SpecError("defaults.sbatch_args sets an option twice")
        if "cpus_per_task" in data:
            values["cpus_per_task"] = parse_count(
                "defaults.cpus_per_task", data["cpus_per_task"], minimum=1
            )
    except SpecError as exc:
        raise ConfigError(f"cluster {name!r}: {exc}") from None
    if "exclusive" in data:
        if not isinstance(data["exclusive"], bool):
            raise ConfigError(
                f"cluster {name!r}: defaults.exclusive must be true or false, "
                f"got {data['exclusive']!r}"
            )
        values["exclusive"] = data["exclusive"]
    return ProfileDefaults(setup=lines, sbatch_args=passed, **values)


def _lines(name: str, key: str, value: Any) -> list[Any]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"cluster {name!r}: defaults.{key} must be a list")
    return value


def profile_from_dict(name: str, data: dict[str, Any]) -> ClusterProfile:
    """A validated profile from its TOML table (or ``cluster add``'s flags)."""
    if not isinstance(data, dict):
        raise ConfigError(f"cluster {name!r} must be a table")
    known = {item.name for item in fields(ClusterProfile)} - {"name"}
    unknown = set(data) - known
    if unknown:
        from nsml_hpc.suggest import did_you_mean

        named = ", ".join(key + did_you_mean(key, known) for key in sorted(unknown))
        raise ConfigError(
            f"cluster {name!r}: unknown key(s) {named}; valid keys: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "defaults":
            values[key] = _defaults(name, value)
        elif key == "port":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise ConfigError(f"cluster {name!r}: port must be 1-65535, got {value!r}")
            values[key] = value
        elif key == "connect_timeout":
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"cluster {name!r}: connect_timeout must be > 0 seconds")
            values[key] = float(value)
        else:
            values[key] = _text(name, key, value)
    return validate_profile(ClusterProfile(name=name, **values))


def validate_profile(profile: ClusterProfile) -> ClusterProfile:
    """Raise :class:`ConfigError` unless every field is usable; returns the profile."""
    name = profile.name
    if not CLUSTER_NAME.fullmatch(name):
        raise ConfigError(
            f"invalid cluster name {name!r}: letters, digits, '-', '_', '.' (at most 64)"
        )
    if profile.backend not in BACKENDS:
        raise ConfigError(
            f"unknown backend {profile.backend!r} for cluster {name!r}; valid backends: "
            + ", ".join(BACKENDS)
        )
    if profile.transport not in TRANSPORTS:
        raise ConfigError(
            f"cluster {name!r}: unknown transport {profile.transport!r}; valid: "
            + ", ".join(TRANSPORTS)
        )
    if profile.remote:
        if not profile.host:
            raise ConfigError(f"cluster {name!r}: the ssh backend needs a host")
    else:
        given = [key for key in SSH_ONLY if getattr(profile, key) is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise ConfigError(
                f"cluster {name!r}: {', '.join(given)} {verb} only to the ssh backend "
                f"(this profile's backend is {profile.backend}; give a host for an ssh cluster)"
            )
    if profile.host is not None and not HOST.fullmatch(profile.host):
        raise ConfigError(f"cluster {name!r}: invalid host {profile.host!r}")
    if profile.user is not None and not USER.fullmatch(profile.user):
        raise ConfigError(f"cluster {name!r}: invalid user name {profile.user!r}")
    if profile.jump_host is not None:
        parse_jump_hosts(profile.jump_host)
    if not PERSIST.fullmatch(profile.control_persist):
        raise ConfigError(
            f"cluster {name!r}: control_persist must be yes, no or a time such as 10m, "
            f"got {profile.control_persist!r}"
        )
    for key in ("remote_python", "remote_path"):
        value = getattr(profile, key)
        if value is not None and re.search(r"[\s\x00-\x1f\x7f]", value):
            raise ConfigError(f"cluster {name!r}: {key} cannot hold whitespace, got {value!r}")
    if profile.run_root is not None:
        check_run_root(profile)
    if profile.slurm_conf is not None:
        check_slurm_conf(profile)
    if profile.dataset_root is not None:
        check_run_root(profile, "dataset_root")
    return profile


SLURM_CONF_BACKENDS = ("local", "ssh")


def check_slurm_conf(profile: ClusterProfile) -> str:
    """An absolute path without spaces or control characters, for a backend that runs
    Slurm's commands (pyslurm reads one Slurm configuration per process)."""
    path = profile.slurm_conf or ""
    if not path.startswith("/") or RUN_ROOT_UNSAFE.search(path):
        raise ConfigError(
            f"cluster {profile.name!r}: slurm_conf {path!r} must be an absolute path without "
            "spaces, quotes, '%', '$' or control characters"
        )
    if profile.backend not in SLURM_CONF_BACKENDS:
        raise ConfigError(
            f"cluster {profile.name!r}: slurm_conf applies to the "
            f"{' and '.join(SLURM_CONF_BACKENDS)} backends (this profile's backend is "
            f"{profile.backend}; pyslurm reads one Slurm configuration per process)"
        )
    return path


def check_run_root(profile: ClusterProfile, key: str = "run_root") -> str:
    """``run_root`` (or ``dataset_root``): a path Slurm and the shell take as it is."""
    root = getattr(profile, key) or ""
    if not root or RUN_ROOT_UNSAFE.search(root):
        raise ConfigError(
            f"cluster {profile.name!r}: {key} {root!r} cannot hold spaces, quotes, '%', '$' "
            "or control characters"
        )
    if not profile.remote and not (root.startswith("/") or root.startswith("~")):
        raise ConfigError(
            f"cluster {profile.name!r}: {key} must be an absolute path (or start with ~)"
        )
    return root


def implicit_local() -> ClusterProfile:
    """The cluster every installation has: Slurm's commands on this machine."""
    return ClusterProfile(name=LOCAL)
