"""A cluster profile for a cluster with its own Slurm configuration on this machine (or on a
login node): every Slurm command nsml-hpc runs for it gets SLURM_CONF; profile defaults for
the new sbatch settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nsml_hpc.backends.base import CommandResult
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.registry import make_backend
from nsml_hpc.backends.remote_shell import EnvChanges, remote_command
from nsml_hpc.backends.sbatch_env import variables_to_remove
from nsml_hpc.config.cluster_profiles import profile_from_dict
from nsml_hpc.config.clusters_file import load_profiles, render_profiles
from nsml_hpc.errors import ConfigError
from nsml_hpc.job.spec import Resources, SessionSpec
from nsml_hpc.submit.create import apply_profile_defaults

DUO_CONF = "/etc/slurm-duo/slurm.conf"


class RecordingRunner:
    """Records the environment changes of every command; answers like an empty sinfo."""

    def __init__(self) -> None:
        self.envs: list[dict[str, str | None]] = []

    def run(
        self, argv: list[str], *, timeout: float, env: EnvChanges | None = None
    ) -> CommandResult:
        self.envs.append(dict(env or {}))
        return CommandResult(argv, 0, "", "")


def test_a_local_profile_with_slurm_conf_runs_every_command_with_it() -> None:
    profile = profile_from_dict("duo", {"backend": "local", "slurm_conf": DUO_CONF})
    backend = make_backend(profile)
    assert isinstance(backend, CliBackend)
    recorder = RecordingRunner()
    backend.runner = recorder
    backend.partitions()
    backend.queue(["1"])
    backend.cancel(["1"])
    assert [env.get("SLURM_CONF") for env in recorder.envs] == [DUO_CONF] * 3
    assert profile.target_text() == f"this machine SLURM_CONF={DUO_CONF}"


def test_the_slurm_conf_reaches_the_command_in_a_real_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/slurm.conf")
    backend = CliBackend("duo", slurm_conf=DUO_CONF)
    script = "import os; print(os.environ['SLURM_CONF'])"
    assert backend._run([sys.executable, "-c", script], 30).stdout.strip() == DUO_CONF
    plain = CliBackend("local")
    assert plain._run([sys.executable, "-c", script], 30).stdout.strip() == "/etc/slurm/slurm.conf"


def test_a_profile_without_slurm_conf_sets_none() -> None:
    backend = make_backend(profile_from_dict("nsml", {"backend": "local"}))
    assert isinstance(backend, CliBackend) and backend.slurm_env == {}
    assert remote_command(["squeue"], None, {"SLURM_CONF": DUO_CONF}) == (
        f"env SLURM_CONF={DUO_CONF} squeue"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"backend": "local", "slurm_conf": "etc/slurm.conf"}, "absolute path"),
        ({"backend": "local", "slurm_conf": "/etc/my slurm.conf"}, "absolute path"),
        ({"backend": "local", "slurm_conf": "/etc/$X.conf"}, "absolute path"),
        ({"backend": "pyslurm", "slurm_conf": DUO_CONF}, "local and ssh backends"),
        ({"backend": "auto", "slurm_conf": DUO_CONF}, "local and ssh backends"),
    ],
)
def test_bad_slurm_conf_is_refused_in_one_line(data: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        profile_from_dict("duo", data)
    assert "\n" not in str(caught.value)


def test_the_profiles_file_keeps_slurm_conf_and_the_new_defaults(tmp_path: Path) -> None:
    profile = profile_from_dict(
        "duo",
        {
            "backend": "local",
            "slurm_conf": DUO_CONF,
            "defaults": {
                "reservation": "maint",
                "mail_type": "end,fail",
                "mail_user": "alice@example.org",
                "sbatch_args": ["--comment=lab", "--nice=5"],
            },
        },
    )
    path = tmp_path / "clusters.toml"
    path.write_text(render_profiles({"duo": profile}))
    assert load_profiles(path)["duo"] == profile
    assert profile.defaults.mail_type == "END,FAIL"


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ({"sbatch_args": ["--partition=gpu"]}, "use --partition"),
        ({"sbatch_args": ["--comment=a", "--comment=b"]}, "twice"),
        ({"mail_type": "SOMETIMES"}, "--mail-type"),
        ({"reservation": "a b"}, "reservation"),
    ],
)
def test_bad_profile_defaults_are_refused(defaults: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        profile_from_dict("duo", {"backend": "local", "defaults": defaults})


def test_profile_defaults_fill_what_the_command_line_left_open() -> None:
    profile = profile_from_dict(
        "duo",
        {
            "backend": "local",
            "defaults": {
                "reservation": "maint",
                "mail_user": "lab@example.org",
                "sbatch_args": ["--comment=lab", "--nice=5"],
            },
        },
    )
    spec = SessionSpec(
        project="p",
        script="t.py",
        resources=Resources(mail_user="me@example.org", sbatch_args=["--nice=1"]),
    )
    res = apply_profile_defaults(spec, profile).resources
    assert res.reservation == "maint"
    assert res.mail_user == "me@example.org"
    assert res.sbatch_args == ["--comment=lab", "--nice=1"]  # the command line's --nice wins


def test_sbatch_variables_cannot_override_the_new_directives() -> None:
    script = (
        "#!/bin/bash\n#SBATCH --exclusive\n#SBATCH --reservation=maint\n"
        "#SBATCH --hint=nomultithread\n#SBATCH --gres=gpu:2\nexec true\n"
    )
    removed = set(variables_to_remove(script))
    assert {"SBATCH_EXCLUSIVE", "SBATCH_RESERVATION", "SBATCH_HINT", "SBATCH_GPUS_PER_NODE"} <= (
        removed
    )
