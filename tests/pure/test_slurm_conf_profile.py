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
from nsml_hpc.config.cluster_profiles import ClusterProfile, profile_from_dict
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


# --- exclusive, cpus_per_task and gpu_type defaults --------------------------------------------


def _whole_nodes_profile() -> ClusterProfile:
    return profile_from_dict(
        "duo",
        {
            "backend": "local",
            "defaults": {"exclusive": True, "cpus_per_task": 4, "gpu_type": "a100"},
        },
    )


def test_exclusive_cpus_and_gpu_type_defaults_fill_what_the_session_left_open() -> None:
    profile = _whole_nodes_profile()
    spec = SessionSpec(project="p", script="t.py", resources=Resources(gpus=2, nodes=2))
    res = apply_profile_defaults(spec, profile).resources
    assert (res.exclusive, res.cpus_per_task, res.gpu_type, res.gpus) == (True, 4, "a100", 2)


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        # the session's own values win; --no-exclusive is a value too
        (Resources(exclusive=False), (False, 4, None)),
        (Resources(cpus_per_task=8), (True, 8, None)),
        # --cpus-per-gpu and --cpus-per-task cannot both reach Slurm: no default then
        (Resources(gpus=1, cpus_per_gpu=2), (True, None, "a100")),
        (Resources(gpus=1, gpu_type="h100"), (True, 4, "h100")),
        # a CPU-only session gets no GPU type (a type needs a count)
        (Resources(), (True, 4, None)),
    ],
    ids=["no-exclusive", "own-cpus", "cpus-per-gpu", "own-type", "cpu-only"],
)
def test_the_sessions_own_values_win_over_the_new_defaults(
    asked: Resources, expected: tuple[object, ...]
) -> None:
    from nsml_hpc.job.spec import validate_spec

    spec = SessionSpec(project="p", script="t.py", resources=asked)
    res = validate_spec(apply_profile_defaults(spec, _whole_nodes_profile())).resources
    assert (res.exclusive, res.cpus_per_task, res.gpu_type) == expected


def test_the_new_defaults_render_as_directives() -> None:
    from nsml_hpc.submit.render import directive_args, resource_directives

    spec = SessionSpec(project="p", script="t.py", resources=Resources(gpus=2))
    lines = directive_args(
        resource_directives(apply_profile_defaults(spec, _whole_nodes_profile()))
    )
    assert {"--exclusive", "--cpus-per-task=4", "--gres=gpu:a100:2"} <= set(lines)


def test_cluster_add_takes_the_new_defaults_and_the_file_keeps_them(tmp_path: Path) -> None:
    from nsml_hpc.cli import build_parser
    from nsml_hpc.cli.cluster_commands import _profile_data

    args = build_parser().parse_args(
        [
            "cluster",
            "add",
            "duo",
            "--backend",
            "local",
            "--exclusive",
            "--cpus-per-task",
            "4",
            "--gpu-type",
            "a100",
            "--sbatch-arg",
            "--comment=lab",
        ]
    )
    profile = profile_from_dict("duo", _profile_data(args))
    assert profile.defaults.exclusive is True
    assert profile.defaults.cpus_per_task == 4  # the flag's text, parsed
    assert profile.defaults.gpu_type == "a100"
    assert profile.defaults.sbatch_args == ("--comment=lab",)
    path = tmp_path / "clusters.toml"
    path.write_text(render_profiles({"duo": profile}))
    assert "exclusive = true" in path.read_text() and "cpus_per_task = 4" in path.read_text()
    assert load_profiles(path)["duo"] == profile


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ({"exclusive": "yes"}, "defaults.exclusive must be true or false"),
        ({"cpus_per_task": 0}, "defaults.cpus_per_task must be a whole number >= 1"),
        ({"cpus_per_task": "four"}, "defaults.cpus_per_task"),
        ({"cpus_per_task": True}, "defaults.cpus_per_task"),
        ({"gpu_type": "a100:2"}, "defaults.gpu_type"),
        ({"gpu_type": "a 100"}, "defaults.gpu_type"),
        ({"gpus": 2}, "unknown defaults key"),
    ],
)
def test_bad_new_defaults_are_refused_in_one_line(
    defaults: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        profile_from_dict("duo", {"backend": "local", "defaults": defaults})
    assert "\n" not in str(caught.value)


def test_cluster_add_with_a_bad_cpus_per_task_is_one_line() -> None:
    from nsml_hpc.cli import build_parser
    from nsml_hpc.cli.cluster_commands import _profile_data

    args = build_parser().parse_args(["cluster", "add", "duo", "--cpus-per-task", "x"])
    with pytest.raises(ConfigError, match=r"defaults\.cpus_per_task must be a whole number"):
        profile_from_dict("duo", _profile_data(args))
