"""~/.ssh/config as ssh reads it: the fallback parser's Include expansion, checked against the
installed ssh client (``ssh -G``) on the same files wherever both can read them.

Every test writes its config under a private HOME and hands ssh the file with ``-F`` (ssh reads
the passwd home's ``~/.ssh``, never ``$HOME``), so root's real config is never read or touched.
Includes given to both sources use absolute paths: with ``-F``, ssh resolves a relative Include
against the passwd home's ``~/.ssh``, the fallback against ``$HOME/.ssh``."""

from __future__ import annotations

import getpass
import os
import re
import shutil
from pathlib import Path

import pytest

from nsml_hpc.backends.ssh_target import SshTarget, resolve_target
from nsml_hpc.backends.sshconfig import (
    ParsedSshConfig,
    SshConfigSource,
    SystemSsh,
    configured_file,
    flatten,
    ssh_config_source,
)
from nsml_hpc.config.cluster_profiles import profile_from_dict
from nsml_hpc.errors import ConfigError

HAVE_SSH = shutil.which("ssh") is not None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("NSML_HPC_SSH_CONFIG", raising=False)
    return folder


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _sources(config: Path) -> list[tuple[str, SshConfigSource]]:
    sources: list[tuple[str, SshConfigSource]] = [
        ("fallback", ParsedSshConfig(config, system=None))
    ]
    if HAVE_SSH:
        sources.append(("ssh -G", SystemSsh(config)))
    return sources


def _target(source: SshConfigSource, host: str, **profile: object) -> SshTarget:
    return resolve_target(
        profile_from_dict("c", {"backend": "ssh", "host": host, **profile}),
        config=source,
        local_user=getpass.getuser(),
    )


def _same_everywhere(config: Path, host: str, **profile: object) -> SshTarget:
    """The target both sources resolve, asserted equal (the fallback agrees with ssh)."""
    targets = {name: _target(source, host, **profile) for name, source in _sources(config)}
    first = next(iter(targets.values()))
    for name, target in targets.items():
        assert target == first, f"{name} disagrees: {target} != {first}"
    return first


def test_paramiko_alone_ignores_include(home: Path) -> None:
    """The defect (paramiko#1044): paramiko's own parser drops the Include line."""
    import paramiko

    _write(home / "inc" / "hpc.conf", "Host hpc\n    HostName login.example.org\n    Port 2200\n")
    config = _write(home / ".ssh" / "config", f"Include {home}/inc/*.conf\n")
    options = paramiko.SSHConfig.from_path(str(config)).lookup("hpc")
    assert options["hostname"] == "hpc"  # not login.example.org
    assert "port" not in options


def test_an_included_host_is_resolved_as_ssh_does(home: Path) -> None:
    _write(
        home / "inc" / "10-hpc.conf",
        "Host hpc\n"
        "    HostName login.example.org\n"
        "    Port 2200\n"
        "    User alice\n"
        "    IdentityFile ~/.ssh/id_hpc\n"
        f"    UserKnownHostsFile {home}/kh_hpc\n",
    )
    # Lexical order: 10- comes first, so its Port wins over 20-'s (the first value wins).
    _write(home / "inc" / "20-more.conf", "Host hpc\n    Port 2300\n    User bob\n")
    config = _write(
        home / ".ssh" / "config", f"Include {home}/inc/*.conf\n\nHost *\n    User fallback\n"
    )
    target = _same_everywhere(config, "hpc")
    assert target.endpoint.text() == "alice@login.example.org:2200"
    assert target.endpoint.identity_files == (str(home / ".ssh" / "id_hpc"),)
    assert target.known_hosts[0] == f"{home}/kh_hpc"
    # A host of no included block still gets the Host * after the Include.
    other = _same_everywhere(config, "elsewhere")
    assert other.endpoint.text() == "fallback@elsewhere:22"


def test_relative_include_is_under_home_ssh_and_missing_files_are_ignored(home: Path) -> None:
    _write(home / ".ssh" / "config.d" / "hpc", "Host hpc\n    HostName login.example.org\n")
    config = _write(
        home / ".ssh" / "config", "Include config.d/*\nInclude does-not-exist nor-this/*\n"
    )
    target = _target(ParsedSshConfig(config, system=None), "hpc")
    assert target.endpoint.hostname == "login.example.org"


def test_include_inside_a_host_block_applies_only_to_that_host(home: Path) -> None:
    _write(home / "inc" / "gw.conf", "User gwuser\nHost inner\n    HostName inner.example.org\n")
    config = _write(
        home / ".ssh" / "config",
        "Host gw\n"
        "    HostName gw.example.org\n"
        f"    Include {home}/inc/gw.conf\n"
        "Host gw\n"
        "    Port 2022\n",
    )
    gw = _same_everywhere(config, "gw")
    assert gw.endpoint.text() == "gwuser@gw.example.org:2022"
    # "inner" is defined only inside the gw block's Include: ssh never sees it for inner.
    inner = _same_everywhere(config, "inner")
    assert inner.endpoint.hostname == "inner"


def test_lines_after_an_include_stay_in_their_block(home: Path) -> None:
    _write(home / "inc" / "other.conf", "Host other\n    User otheruser\n")
    config = _write(
        home / ".ssh" / "config",
        f"Host hpc\n    HostName login.example.org\n    Include {home}/inc/other.conf\n"
        "    Port 2201\n",
    )
    assert _same_everywhere(config, "hpc").endpoint.port == 2201
    # The Include sits in the hpc block: for "other" that block, Include and all, is skipped.
    other = _same_everywhere(config, "other")
    assert (other.endpoint.user, other.endpoint.port) == (getpass.getuser(), 22)


def test_match_blocks_use_the_profile_user(home: Path) -> None:
    config = _write(
        home / ".ssh" / "config",
        "Host hpc\n"
        "    HostName 10.1.2.3\n"
        "Match originalhost hpc user alice\n"
        "    IdentityFile ~/.ssh/id_alice\n"
        "Match host 10.1.2.3 user bob\n"
        "    IdentityFile ~/.ssh/id_bob\n"
        "    Port 2202\n",
    )
    alice = _same_everywhere(config, "hpc", user="alice")
    assert alice.endpoint.identity_files == (str(home / ".ssh" / "id_alice"),)
    assert alice.endpoint.port == 22
    bob = _same_everywhere(config, "hpc", user="bob")
    assert bob.endpoint.identity_files == (str(home / ".ssh" / "id_bob"),)
    assert bob.endpoint.port == 2202
    carol = _same_everywhere(config, "hpc", user="carol")
    assert carol.endpoint.identity_files == ()


def test_tokens_in_identity_file_and_proxy_command(home: Path) -> None:
    config = _write(
        home / ".ssh" / "config",
        "Host hpc\n"
        "    HostName login.example.org\n"
        "    User alice\n"
        "    Port 2200\n"
        "    IdentityFile ~/.ssh/id_%r_%h\n"
        "    ProxyCommand nc -X connect -x proxy:3128 %h %p\n",
    )
    target = _same_everywhere(config, "hpc")
    assert target.endpoint.identity_files == (str(home / ".ssh" / "id_alice_login.example.org"),)
    assert target.endpoint.proxy_command == "nc -X connect -x proxy:3128 login.example.org 2200"


def test_an_include_loop_is_a_config_error(home: Path) -> None:
    config = _write(home / ".ssh" / "config", f"Include {home}/.ssh/config\nHost x\n  Port 1\n")
    for name, source in _sources(config):
        with pytest.raises(ConfigError) as caught:
            _target(source, "x")
        # ssh: "... line 1: Too many recursive configuration includes"
        assert re.search(r"nested more than 16|Too many recursive", str(caught.value)), name


def test_an_include_with_blocks_inside_match_needs_ssh(home: Path) -> None:
    _write(home / "inc" / "blocks.conf", "Host a\n    Port 1\n")
    _write(home / "inc" / "plain.conf", "Port 2204\n")
    config = _write(
        home / ".ssh" / "config",
        f"Match user alice\n    Include {home}/inc/plain.conf\n",
    )
    assert _same_everywhere(config, "hpc", user="alice").endpoint.port == 2204
    assert _same_everywhere(config, "hpc", user="bob").endpoint.port == 22
    bad = _write(home / "bad.conf", f"Match user alice\n    Include {home}/inc/blocks.conf\n")
    with pytest.raises(ConfigError, match="inside a Match block needs the ssh program"):
        _target(ParsedSshConfig(bad, system=None), "hpc", user="alice")


def test_flatten_repeats_the_enclosing_header(home: Path) -> None:
    _write(home / "inc" / "x.conf", "Host x\n  Port 1\n")
    config = _write(home / "c", f"Include {home}/inc/x.conf\nUser top\n")
    assert flatten(config, "y", base=home).lines == ["Host x", "Port 1", "Host *", "User top"]


def test_ssh_defaults_are_not_taken_as_configured(home: Path) -> None:
    if not HAVE_SSH:
        pytest.skip("no ssh client installed: only the fallback applies here")
    config = _write(home / ".ssh" / "config", "Host hpc\n    HostName login.example.org\n")
    source = SystemSsh(config)
    options = source.lookup("hpc")
    assert options.identity_files == ()
    assert options.user_known_hosts == ()
    assert (options.user, options.port) == (getpass.getuser(), 22)
    source.lookup("hpc")
    assert source.calls == 2  # the lookup and the built-in defaults, each once


def test_an_ssh_config_error_is_one_config_error(home: Path) -> None:
    config = _write(home / ".ssh" / "config", "Host hpc\n    NoSuchOption yes\n")
    for _, source in _sources(config):
        if isinstance(source, SystemSsh):
            with pytest.raises(ConfigError, match="Bad configuration option"):
                source.lookup("hpc")


def test_which_file_ssh_is_told(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # HOME is not root's passwd home here: ssh must be told the file nsml-hpc means.
    assert configured_file() == Path(os.devnull)
    config = _write(home / ".ssh" / "config", "Host a\n")
    assert configured_file() == config
    monkeypatch.setenv("NSML_HPC_SSH_CONFIG", str(home / "missing"))
    with pytest.raises(ConfigError, match=r"NSML_HPC_SSH_CONFIG names .*missing, which does not"):
        configured_file()
    monkeypatch.setenv("NSML_HPC_SSH_CONFIG", str(config))
    assert configured_file() == config
    monkeypatch.setenv("PATH", str(home))  # no ssh client: the fallback parser
    assert isinstance(ssh_config_source(), ParsedSshConfig)
    monkeypatch.setenv("PATH", os.defpath)
    if HAVE_SSH:
        assert isinstance(ssh_config_source(), SystemSsh)
