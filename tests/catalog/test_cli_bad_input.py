"""Bad input: one clear error line, a non-zero exit, and nothing half-created
(no run directory, no catalog row, no job)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import list_sessions
from nsml_hpc.cli import main
from nsml_hpc.config.settings import load_settings
from tests.helpers import jobs_working_under, write_script


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_nothing_created(nsml_env: Path) -> None:
    settings = load_settings()
    runs = settings.run_root
    leftovers = (
        [p for p in runs.rglob("*") if p.is_dir() and p.name[0].isdigit()] if runs.exists() else []
    )
    assert leftovers == []
    catalog = open_catalog(settings.catalog_url)
    try:
        assert list_sessions(catalog) == []
        with catalog.engine.connect() as conn:
            from sqlalchemy import text

            assert conn.execute(text("SELECT COUNT(*) FROM session")).scalar() == 0
    finally:
        catalog.close()


BEFORE_SLURM = [
    pytest.param(["--gpus", "-1"], "--gpus", id="negative-gpus"),
    pytest.param(["--gpus", "two"], "--gpus", id="non-numeric-gpus"),
    pytest.param(["--gpus", "1.5"], "--gpus", id="fractional-gpus"),
    pytest.param(["--nodes", "0"], "--nodes", id="zero-nodes"),
    pytest.param(["--cpus-per-gpu", "0", "--gpus", "1"], "--cpus-per-gpu", id="zero-cpus"),
    pytest.param(["--mem", "-4G"], "--mem", id="negative-mem"),
    pytest.param(["--mem", "lots"], "--mem", id="non-numeric-mem"),
    pytest.param(["--time", "soon"], "--time", id="bad-time"),
    pytest.param(["--time", "0"], "--time", id="zero-time"),
    pytest.param(["--project", "a/b"], "project", id="project-slash"),
    pytest.param(["--project", ".."], "project", id="project-dotdot"),
    pytest.param(["--project", "my project"], "project", id="project-space"),
    pytest.param(["--project", "bad\x07name"], "project", id="project-control"),
    pytest.param(["--partition", "gpu;rm -rf /"], "--partition", id="partition-semicolon"),
    pytest.param(["--partition", "gpu\n#SBATCH --uid=0"], "--partition", id="partition-newline"),
    pytest.param(["--account", "$(id)"], "--account", id="account-subshell"),
    pytest.param(["--qos", "a'b"], "--qos", id="qos-quote"),
    pytest.param(["--constraint", "a100\nx"], "--constraint", id="constraint-newline"),
    pytest.param(["--module", "cuda\nrm -rf ~"], "--module", id="module-newline"),
    pytest.param(["--setup", "echo a\necho b"], "--setup", id="setup-newline"),
    pytest.param(["--memo", "line1\nline2"], "--memo", id="memo-newline"),
    pytest.param(["--venv", "/a", "--conda", "b"], "--venv", id="venv-and-conda"),
    # issue 10: multi-node launch and the new resource flags
    pytest.param(["--gpus", "a100:x"], "--gpus", id="gpu-type-bad-count"),
    pytest.param(["--gpus", "a 100:2"], "--gpus", id="gpu-type-space"),
    pytest.param(["--gpus", "2", "--gpus-per-node", "4"], "disagree", id="gpus-twice"),
    pytest.param(
        ["--sbatch-arg=--comment=a\n#SBATCH --uid=0"], "control characters", id="sbatch-arg-newline"
    ),
    pytest.param(["--sbatch-arg=--comment=a --nice=1"], "one option", id="sbatch-arg-two-options"),
    pytest.param(["--sbatch-arg=--partition=gpu"], "use --partition", id="sbatch-arg-modeled"),
    pytest.param(["--sbatch-arg=--part=gpu"], "abbreviates --partition", id="sbatch-arg-prefix"),
    pytest.param(["--sbatch-arg=--output=/tmp/x"], "sets --output itself", id="sbatch-arg-ours"),
    pytest.param(["--sbatch-arg", "-pgpu"], "long form", id="sbatch-arg-short"),
    pytest.param(["--sbatch-arg", "--gres=gpu:2"], "use --gpus", id="sbatch-arg-spaced"),
    pytest.param(["--launch", "mpirun"], "--launch", id="unknown-launch"),
    pytest.param(["--launch", "srun-per-gpu"], "--gpus-per-node", id="per-gpu-without-gpus"),
    pytest.param(
        ["--launch", "torchrun", "--ntasks-per-node", "4"], "torchrun", id="torchrun-ntasks"
    ),
    pytest.param(["--mail-type", "SOMETIMES"], "--mail-type", id="bad-mail-type"),
    pytest.param(["--mail-user", "a b"], "--mail-user", id="bad-mail-user"),
    pytest.param(["--dependency", "afterok:x"], "--dependency", id="bad-dependency"),
    pytest.param(["--reservation", "a;b"], "--reservation", id="bad-reservation"),
    pytest.param(["--ntasks-per-node", "0"], "--ntasks-per-node", id="zero-tasks"),
    pytest.param(
        ["--cpus-per-task", "2", "--cpus-per-gpu", "2", "--gpus", "1"],
        "--cpus-per-task or --cpus-per-gpu",
        id="cpus-per-task-and-per-gpu",
    ),
]


@pytest.mark.parametrize(("flags", "mentions"), BEFORE_SLURM)
def test_bad_flag_is_one_error_line_and_creates_nothing(
    flags: list[str],
    mentions: str,
    nsml_env: Path,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_script(project_dir, "train.py", "print('never runs')\n")
    code, out, err = _run(["submit", *flags, "train.py", "--lr", "0.1"], capsys)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("nsml-hpc: error: ")
    assert mentions in err
    _assert_nothing_created(nsml_env)


def test_after_an_unknown_session_is_exit_code_3_and_creates_nothing(
    nsml_env: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "train.py", "print('never runs')\n")
    code, out, err = _run(["submit", "--after", "mnist/99", "train.py"], capsys)
    assert (code, out) == (3, "")
    assert err.strip() == "nsml-hpc: error: no session 'mnist/99' in the catalog"
    _assert_nothing_created(nsml_env)


def test_missing_script_is_one_error_line(
    nsml_env: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["submit", "--gpus", "1", "nope.py"], capsys)
    assert code == 2
    assert err.strip() == "nsml-hpc: error: script not found: nope.py"
    _assert_nothing_created(nsml_env)


def test_unknown_option_is_one_error_line(
    nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["submit", "--gpu", "2", "train.py"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1


def test_unknown_session_is_exit_code_3(nsml_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["show", "mnist/99", "--no-sync"], capsys)
    assert (code, err.strip()) == (3, "nsml-hpc: error: no session 'mnist/99' in the catalog")


def test_malformed_session_name_is_refused(
    nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["logs", "mnist"], capsys)
    assert code == 2
    assert "PROJECT/NUMBER" in err


def test_code_snapshot_over_the_size_guard_is_refused(
    nsml_env: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (nsml_env / "config.toml").write_text("max_code_mb = 1\n")
    write_script(project_dir, "train.py", "print(1)\n")
    (project_dir / "weights.bin").write_bytes(b"\0" * (2 * 1024 * 1024))
    code, _, err = _run(["submit", "train.py"], capsys)
    assert code == 2
    assert "weights.bin" in err and ".nsmlignore" in err
    _assert_nothing_created(nsml_env)


SLURM_REFUSES = [
    pytest.param(["--partition", "nosuch"], "invalid partition", id="unknown-partition"),
    pytest.param(["--account", "nosuch"], "Invalid account", id="unknown-account"),
    pytest.param(
        ["--gpus", "5"], "Requested node configuration is not available", id="too-many-gpus"
    ),
]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_sandbox")
@pytest.mark.parametrize(("flags", "cause"), SLURM_REFUSES)
def test_slurm_refusal_is_one_line_and_leaves_no_trace(
    flags: list[str],
    cause: str,
    nsml_env: Path,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_script(project_dir, "train.py", "print('never runs')\n")
    code, out, err = _run(["submit", *flags, "train.py"], capsys)
    assert code == 4
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("nsml-hpc: error: Slurm refused the job: ")
    assert cause.lower() in err.lower()
    _assert_nothing_created(nsml_env)
    assert jobs_working_under(nsml_env) == []  # Slurm holds no job of ours
