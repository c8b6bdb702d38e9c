"""Where an SSH cluster really is: the profile first, then ~/.ssh/config, then defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import paramiko
import pytest

from nsml_hpc.backends.ssh_target import load_ssh_config, resolve_target
from nsml_hpc.config.cluster_profiles import ClusterProfile, profile_from_dict
from nsml_hpc.errors import ConfigError

CONFIG = """
Host hpc
    HostName login.hpc.example.org
    User me
    Port 2200
    IdentityFile ~/.ssh/id_hpc
    UserKnownHostsFile ~/.ssh/known_hosts_hpc ~/.ssh/known_hosts_other
    ProxyJump gw

Host gw
    HostName gateway.example.org
    User jumper
    IdentityFile ~/.ssh/id_gw

Host proxied
    HostName 10.0.0.7
    ProxyCommand nc -X connect -x proxy:3128 %h %p

Host deep
    ProxyJump hpc

Host loop-a
    ProxyJump loop-b
Host loop-b
    ProxyJump loop-a
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> paramiko.SSHConfig:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "ssh_config"
    path.write_text(CONFIG)
    return load_ssh_config(path)


def _profile(**values: Any) -> ClusterProfile:
    return profile_from_dict("c", {"backend": "ssh", **values})


def test_ssh_config_fills_everything_the_profile_leaves_out(
    config: paramiko.SSHConfig, tmp_path: Path
) -> None:
    target = resolve_target(_profile(host="hpc"), config=config, local_user="laptopuser")
    end = target.endpoint
    assert (end.hostname, end.port, end.user) == ("login.hpc.example.org", 2200, "me")
    assert end.identity_files == (str(tmp_path / ".ssh/id_hpc"),)
    assert target.known_hosts[:2] == (
        str(tmp_path / ".ssh/known_hosts_hpc"),
        str(tmp_path / ".ssh/known_hosts_other"),
    )
    (jump,) = target.jumps
    assert (jump.alias, jump.hostname, jump.user, jump.port) == (
        "gw",
        "gateway.example.org",
        "jumper",
        22,
    )
    assert jump.identity_files == (str(tmp_path / ".ssh/id_gw"),)
    assert end.known_hosts_name == "[login.hpc.example.org]:2200"
    assert jump.known_hosts_name == "gateway.example.org"


def test_what_the_profile_says_wins_over_ssh_config(
    config: paramiko.SSHConfig, tmp_path: Path
) -> None:
    target = resolve_target(
        _profile(
            host="hpc",
            user="other",
            port=22,
            identity_file="/keys/k",
            known_hosts="/kh",
            jump_host="direct@bastion:2022",
        ),
        config=config,
        local_user="laptopuser",
    )
    assert (target.endpoint.user, target.endpoint.port) == ("other", 22)
    assert target.endpoint.identity_files == ("/keys/k",)
    assert target.known_hosts == ("/kh",)
    assert [(j.hostname, j.user, j.port) for j in target.jumps] == [("bastion", "direct", 2022)]


def test_a_host_unknown_to_ssh_config_gets_the_defaults(
    config: paramiko.SSHConfig, tmp_path: Path
) -> None:
    target = resolve_target(_profile(host="other.example.org"), config=config, local_user="u")
    end = target.endpoint
    assert (end.hostname, end.port, end.user, end.identity_files) == (
        "other.example.org",
        22,
        "u",
        (),
    )
    assert target.known_hosts[0] == str(tmp_path / ".ssh/known_hosts")
    assert target.jumps == ()


def test_proxycommand_is_expanded_and_dropped_when_jumping(config: paramiko.SSHConfig) -> None:
    target = resolve_target(_profile(host="proxied"), config=config, local_user="u")
    assert target.endpoint.proxy_command == "nc -X connect -x proxy:3128 10.0.0.7 22"
    jumped = resolve_target(_profile(host="proxied", jump_host="gw"), config=config, local_user="u")
    assert jumped.endpoint.proxy_command is None  # ProxyJump wins, as in ssh


def test_a_jump_host_with_its_own_proxyjump_is_reached_through_it(
    config: paramiko.SSHConfig,
) -> None:
    target = resolve_target(_profile(host="deep"), config=config, local_user="u")
    assert [hop.alias for hop in target.jumps] == ["gw", "hpc"]


def test_a_proxyjump_loop_is_refused(config: paramiko.SSHConfig) -> None:
    with pytest.raises(ConfigError, match="loop"):
        resolve_target(_profile(host="loop-a"), config=config, local_user="u")


def test_no_ssh_config_file_is_fine(tmp_path: Path) -> None:
    config = load_ssh_config(tmp_path / "missing")
    target = resolve_target(_profile(host="h"), config=config, local_user="u")
    assert target.endpoint.text() == "u@h:22"
