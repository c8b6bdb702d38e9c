"""Where an SSH cluster really is: its profile, completed by ``~/.ssh/config``.

What the profile says wins; ``~/.ssh/config`` fills in what it leaves out, as ``ssh`` itself
would: ``HostName``, ``User``, ``Port``, ``IdentityFile``, ``ProxyJump``, ``ProxyCommand`` and
``UserKnownHostsFile``. The config is read by :mod:`nsml_hpc.backends.sshconfig`: ``ssh -G``
when an ssh client is installed (``Include``, ``Match`` and all), else paramiko's parser with
our own ``Include`` expansion. Reading configuration is all this module does; nothing connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nsml_hpc.backends.sshconfig import (
    HostOptions,
    ParsedSshConfig,
    SshConfigSource,
    ssh_config_source,
)
from nsml_hpc.config import locations
from nsml_hpc.config.cluster_profiles import ClusterProfile, JumpHop, parse_jump_hosts
from nsml_hpc.config.identity import current_user
from nsml_hpc.errors import ConfigError

DEFAULT_PORT = 22
GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
MAX_JUMPS = 8


@dataclass(frozen=True)
class SshEndpoint:
    """One SSH server to log in to (the cluster's login node, or a jump host)."""

    alias: str  # the name the profile or ProxyJump used (a Host block's pattern)
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    proxy_command: str | None = None

    @property
    def known_hosts_name(self) -> str:
        """How known_hosts names this server: ``host``, or ``[host]:port`` off port 22."""
        return self.hostname if self.port == DEFAULT_PORT else f"[{self.hostname}]:{self.port}"

    def text(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


@dataclass(frozen=True)
class SshTarget:
    cluster: str
    endpoint: SshEndpoint
    jumps: tuple[SshEndpoint, ...]  # outermost first
    known_hosts: tuple[str, ...]  # the first one is where `cluster trust` writes
    connect_timeout: float

    def text(self) -> str:
        via = f" via {', '.join(jump.text() for jump in self.jumps)}" if self.jumps else ""
        return f"{self.endpoint.text()}{via}"


def _expand(path: str) -> str:
    return str(Path(path).expanduser())


def load_ssh_config(path: Path | None = None) -> ParsedSshConfig:
    """The fallback parser over ``path`` alone (tests, and machines without ssh)."""
    return ParsedSshConfig(path or locations.ssh_config_file(), system=None)


def _lookup(
    config: SshConfigSource, host: str, *, user: str | None = None, port: int | None = None
) -> HostOptions:
    return config.lookup(host, user=user, port=port)


def _endpoint(
    config: SshConfigSource,
    host: str,
    *,
    user: str | None,
    port: int | None,
    identity_file: str | None,
    local_user: str,
) -> tuple[SshEndpoint, str | None]:
    """The endpoint of ``host`` and the ProxyJump its config block names, if any."""
    options = _lookup(config, host, user=user, port=port)
    identities = (identity_file,) if identity_file else options.identity_files
    endpoint = SshEndpoint(
        alias=host,
        hostname=options.hostname,
        port=port or options.port or DEFAULT_PORT,
        user=user or options.user or local_user,
        identity_files=tuple(_expand(path) for path in identities),
        proxy_command=options.proxy_command,
    )
    return endpoint, options.proxy_jump


def _hop(config: SshConfigSource, hop: JumpHop, local_user: str) -> SshEndpoint:
    endpoint, _ = _endpoint(
        config, hop.host, user=hop.user, port=hop.port, identity_file=None, local_user=local_user
    )
    return endpoint


def _chain(config: SshConfigSource, spec: str, local_user: str) -> list[SshEndpoint]:
    """The hops of a jump spec, each completed by its own Host block; a first hop that has a
    ProxyJump of its own is reached through that one first (as ssh -J does)."""
    hops = [_hop(config, hop, local_user) for hop in parse_jump_hosts(spec)]
    seen = {hops[0].alias}
    while len(hops) <= MAX_JUMPS:
        _, outer = _endpoint(
            config,
            hops[0].alias,
            user=None,
            port=None,
            identity_file=None,
            local_user=local_user,
        )
        if outer is None:
            return hops
        first = parse_jump_hosts(outer)
        if first[-1].host in seen:
            raise ConfigError(f"ProxyJump loop through {first[-1].host!r} in ~/.ssh/config")
        seen.add(first[-1].host)
        hops = [_hop(config, hop, local_user) for hop in first] + hops
    raise ConfigError(f"more than {MAX_JUMPS} jump hosts for {spec!r}")


def _known_hosts(profile: ClusterProfile, options: HostOptions) -> tuple[str, ...]:
    if profile.known_hosts:
        return (_expand(profile.known_hosts),)
    files = (
        [_expand(item) for item in options.user_known_hosts]
        if options.user_known_hosts
        else [str(locations.known_hosts_file())]
    )
    if Path(GLOBAL_KNOWN_HOSTS).is_file():
        files.append(GLOBAL_KNOWN_HOSTS)
    return tuple(files)


def resolve_target(
    profile: ClusterProfile,
    *,
    config: SshConfigSource | None = None,
    local_user: str | None = None,
) -> SshTarget:
    """The login node, jump hosts and known_hosts files of an ``ssh`` profile."""
    if not profile.host:
        raise ConfigError(f"cluster {profile.name!r} has no host")
    config = config if config is not None else ssh_config_source()
    local_user = local_user or current_user()
    endpoint, config_jump = _endpoint(
        config,
        profile.host,
        user=profile.user,
        port=profile.port,
        identity_file=profile.identity_file,
        local_user=local_user,
    )
    jump_spec = profile.jump_host or config_jump
    jumps = _chain(config, jump_spec, local_user) if jump_spec else []
    if jumps:
        endpoint = SshEndpoint(
            endpoint.alias,
            endpoint.hostname,
            endpoint.port,
            endpoint.user,
            endpoint.identity_files,
            None,  # ssh ignores ProxyCommand when ProxyJump is set, and so do we
        )
    return SshTarget(
        cluster=profile.name,
        endpoint=endpoint,
        jumps=tuple(jumps),
        known_hosts=_known_hosts(
            profile, _lookup(config, profile.host, user=profile.user, port=profile.port)
        ),
        connect_timeout=profile.connect_timeout,
    )
