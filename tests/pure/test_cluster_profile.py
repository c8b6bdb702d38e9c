"""Cluster profiles: validation, the clusters.toml file, settings, and submit defaults."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nsml_hpc.backends.registry import BACKEND_NAMES
from nsml_hpc.config.cluster_profiles import (
    BACKENDS,
    ClusterProfile,
    JumpHop,
    ProfileDefaults,
    parse_jump_hosts,
    profile_from_dict,
)
from nsml_hpc.config.clusters_file import (
    add_profile,
    load_profiles,
    remove_profile,
    render_profiles,
    save_profiles,
)
from nsml_hpc.config.settings import load_settings
from nsml_hpc.errors import ConfigError, NotFoundError
from nsml_hpc.job.spec import EnvStep, Resources, SessionSpec
from nsml_hpc.submit.create import apply_profile_defaults

SSH = {"backend": "ssh", "host": "login.example.org"}


def test_profile_backends_are_exactly_the_registry_backends():
    assert tuple(sorted(BACKENDS)) == BACKEND_NAMES


def test_a_full_ssh_profile_is_read():
    profile = profile_from_dict(
        "hpc",
        {
            **SSH,
            "port": 2222,
            "user": "me",
            "identity_file": "~/.ssh/id_hpc",
            "known_hosts": "~/.ssh/known_hosts_hpc",
            "jump_host": "me@gw.example.org:22,inner",
            "transport": "openssh",
            "control_path": "~/.ssh/cm-%C",
            "control_persist": "30m",
            "run_root": "scratch/runs",
            "remote_python": "/opt/conda/bin/python",
            "remote_path": "/opt/slurm/bin:/usr/bin:/bin",
            "connect_timeout": 5,
            "defaults": {
                "partition": "gpu",
                "account": "lab",
                "qos": "normal",
                "setup": "module load cuda",
            },
        },
    )
    assert profile.remote and profile.python == "/opt/conda/bin/python"
    assert profile.defaults == ProfileDefaults("gpu", "lab", "normal", ("module load cuda",))
    assert profile.jump_hops() == [JumpHop("gw.example.org", "me", 22), JumpHop("inner")]
    assert (
        profile.target_text()
        == "me@login.example.org:2222 via me@gw.example.org:22,inner (openssh)"
    )


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bad name", {}, "invalid cluster name"),
        ("../x", {}, "invalid cluster name"),
        ("x", {"backend": "slurmrestd"}, "valid backends: auto, local, pyslurm, ssh"),
        ("x", {"backend": "ssh"}, "needs a host"),
        ("x", {"port": 22}, "port applies only to the ssh backend"),
        ("x", {"host": "h", "user": "u"}, "host, user apply only to the ssh backend"),
        ("x", {**SSH, "port": 0}, "port must be 1-65535"),
        ("x", {**SSH, "port": "22"}, "port must be 1-65535"),
        ("x", {**SSH, "port": True}, "port must be 1-65535"),
        ("x", {**SSH, "host": "a b"}, "invalid host"),
        ("x", {**SSH, "host": "-oProxyCommand=x"}, "invalid host"),
        ("x", {**SSH, "user": "me; rm"}, "invalid user name"),
        ("x", {**SSH, "jump_host": "a b"}, "jump_host"),
        ("x", {**SSH, "jump_host": "gw:99999"}, "out of range"),
        ("x", {**SSH, "transport": "telnet"}, "unknown transport"),
        ("x", {**SSH, "control_persist": "forever"}, "control_persist"),
        ("x", {**SSH, "run_root": "/runs/$USER"}, "run_root"),
        ("x", {**SSH, "run_root": "/my runs"}, "run_root"),
        ("x", {"run_root": "relative"}, "absolute"),
        ("x", {**SSH, "remote_python": "python3 -I"}, "remote_python"),
        ("x", {**SSH, "user": "me\nx"}, "one-line"),
        ("x", {**SSH, "password": "hunter2"}, "unknown key(s) password"),
        ("x", {**SSH, "connect_timeout": 0}, "connect_timeout"),
        ("x", {"defaults": {"partition": "gpu;rm"}}, "defaults.partition"),
        ("x", {"defaults": {"setup": ["a\nb"]}}, "one-line"),
        ("x", {"defaults": {"gpus": 2}}, "unknown defaults key"),
        ("x", {"defaults": "gpu"}, "defaults must be a table"),
    ],
)
def test_an_invalid_profile_is_one_clear_config_error(name, data, message):
    with pytest.raises(ConfigError, match=None) as error:
        profile_from_dict(name, data)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_jump_host_forms():
    assert parse_jump_hosts("gw") == [JumpHop("gw")]
    assert parse_jump_hosts("me@gw:2200") == [JumpHop("gw", "me", 2200)]


HOSTILE = 'it\'s "quoted" \\ back\tslash, ünïcode'


def test_the_profiles_file_round_trips_every_value(tmp_path: Path) -> None:
    profiles = {
        "a.b": profile_from_dict(
            "a.b",
            {
                **SSH,
                "port": 2222,
                "run_root": "/r",
                "connect_timeout": 2.5,
                "remote_path": "/opt/x:/usr/bin",
                "defaults": {"setup": [HOSTILE.replace("\t", " "), "echo ok"], "qos": "hi"},
            },
        ),
        "local": ClusterProfile(name="local", defaults=ProfileDefaults(partition="debug")),
    }
    path = save_profiles(profiles, tmp_path / "clusters.toml")
    tomllib.loads(path.read_text())  # valid TOML
    assert load_profiles(path) == profiles
    assert '[clusters."a.b"]' in render_profiles(profiles)  # a dotted name stays one name


def test_add_refuses_a_duplicate_unless_replacing_and_rm_names_what_exists(tmp_path: Path) -> None:
    path = tmp_path / "clusters.toml"
    add_profile(profile_from_dict("hpc", SSH), path=path)
    with pytest.raises(ConfigError, match="already exists"):
        add_profile(profile_from_dict("hpc", {**SSH, "port": 2}), path=path)
    add_profile(profile_from_dict("hpc", {**SSH, "port": 2}), replace=True, path=path)
    assert load_profiles(path)["hpc"].port == 2
    with pytest.raises(NotFoundError, match=r"no cluster profile 'nope' \(configured: hpc\)"):
        remove_profile("nope", path=path)
    remove_profile("hpc", path=path)
    assert load_profiles(path) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[clusters.x]\nbackend = 'ssh'\n", "needs a host"),
        ("clusters = 3\n", "must be a table"),
        ("[cluster.x]\n", "unknown top-level key"),
        ("[clusters.x\n", "cannot read cluster profiles"),
    ],
)
def test_a_broken_profiles_file_names_itself(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "clusters.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_profiles(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_settings_know_local_without_a_profile_and_name_the_configured_ones(nsml_env: Path) -> None:
    add_profile(profile_from_dict("hpc", SSH))
    settings = load_settings()
    assert settings.cluster_names() == ["hpc", "local"]
    assert settings.profile("local").backend == "local"
    with pytest.raises(NotFoundError, match="configured: hpc, local"):
        settings.profile("nope")


def test_default_cluster_comes_from_the_environment_or_the_config(
    nsml_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_profile(profile_from_dict("hpc", SSH))
    assert load_settings().default_cluster == "local"
    (nsml_env / "config.toml").write_text('default_cluster = "hpc"\n')
    assert load_settings().default_cluster == "hpc"
    monkeypatch.setenv("NSML_HPC_CLUSTER", "local")
    assert load_settings().default_cluster == "local"
    monkeypatch.setenv("NSML_HPC_CLUSTER", "gone")
    with pytest.raises(ConfigError, match="default cluster 'gone' has no profile"):
        load_settings()


def test_profile_defaults_fill_what_the_command_line_left_open():
    profile = profile_from_dict(
        "hpc",
        {**SSH, "defaults": {"partition": "gpu", "qos": "low", "setup": ["module load cuda"]}},
    )
    spec = SessionSpec(
        project="p",
        script="t.py",
        resources=Resources(partition="debug"),
        environment=[EnvStep("venv", "/v")],
    )
    applied = apply_profile_defaults(spec, profile)
    assert applied.resources == Resources(partition="debug", qos="low")  # the flag wins
    assert applied.environment == [EnvStep("setup", "module load cuda"), EnvStep("venv", "/v")]
