"""Validation of every value that may reach an #SBATCH line or the job's shell."""

from __future__ import annotations

import pytest

from nsml_hpc.errors import SpecError
from nsml_hpc.job.spec import (
    MAX_ARG_BYTES,
    MAX_COUNT,
    EnvStep,
    Resources,
    SessionSpec,
    parse_count,
    time_limit_minutes,
    validate_args,
    validate_constraint,
    validate_env_step,
    validate_memo,
    validate_memory,
    validate_project,
    validate_slurm_name,
    validate_spec,
    validate_time,
)


@pytest.mark.parametrize("name", ["mnist", "a.b-c_1", "_x", "0", "a" * 64, "ResNet50"])
def test_ordinary_project_names_are_accepted(name):
    assert validate_project(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a/b",
        "..",
        "a..b",
        ".hidden",
        "-x",
        "a b",
        "a\tb",
        "a\x00b",
        "a\x1b[31m",
        "a\nb",
        "a" * 65,
        "mnïst",
        "a;b",
        "$(id)",
    ],
)
def test_project_names_that_could_escape_a_path_or_a_line_are_refused(name):
    with pytest.raises(SpecError, match="invalid project name"):
        validate_project(name)


@pytest.mark.parametrize(
    ("validate", "text"), [(validate_project, "mnist\n"), (validate_constraint, "a100\n")]
)
def test_trailing_newline_is_refused_not_matched_by_a_dollar_anchor(validate, text):
    with pytest.raises(SpecError):
        validate(text)


def test_slurm_name_with_a_trailing_newline_is_refused():
    with pytest.raises(SpecError):
        validate_slurm_name("--qos", "normal\n")


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("4", 4), (" 8 ", 8), (3, 3), (str(MAX_COUNT), MAX_COUNT)]
)
def test_whole_numbers_are_counted(text, value):
    assert parse_count("--gpus", text) == value


def test_missing_count_stays_missing():
    assert parse_count("--gpus", None) is None


@pytest.mark.parametrize(
    "text",
    ["-1", "abc", "1.5", "\u0663", "+3", "", "1e3", "0x10", str(MAX_COUNT + 1), "9" * 40, -1],
)
def test_counts_that_are_not_small_whole_numbers_are_refused(text):
    with pytest.raises(SpecError, match="--gpus must be a whole number"):
        parse_count("--gpus", text)


def test_count_below_the_minimum_is_refused():
    with pytest.raises(SpecError, match=">= 1"):
        parse_count("--nodes", "0", minimum=1)


@pytest.mark.parametrize(
    ("text", "normal"),
    [("16G", "16G"), ("16g", "16G"), ("16GB", "16G"), ("512M", "512M"), ("2000", "2000")],
)
def test_memory_sizes_are_normalised(text, normal):
    assert validate_memory(text) == normal


@pytest.mark.parametrize("text", ["0", "0G", "-1G", "16 G", "16P", "G", "1.5G", "16G;id", ""])
def test_memory_sizes_slurm_would_not_read_are_refused(text):
    with pytest.raises(SpecError, match="--mem"):
        validate_memory(text)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("30", 30),
        ("30:30", 30.5),
        ("4:00:00", 240),
        ("2-12", 2 * 1440 + 12 * 60),
        ("2-12:30", 2 * 1440 + 12 * 60 + 30),
        ("1-00:00:30", 1440.5),
    ],
)
def test_every_slurm_time_limit_form_is_read(text, minutes):
    assert time_limit_minutes(text) == minutes


@pytest.mark.parametrize("text", ["0", "0:00", "abc", "1h", "-5", "1-", "1:2:3:4", "30 min", ""])
def test_zero_or_unreadable_time_limits_are_refused(text):
    with pytest.raises(SpecError, match="--time"):
        validate_time(text)


@pytest.mark.parametrize("text", ["\u0663\u0660", "\u0661:\u0660\u0660:\u0660\u0660"])
def test_time_limit_in_non_ascii_digits_is_refused(text):
    with pytest.raises(SpecError, match="--time"):
        validate_time(text)


def test_memory_in_non_ascii_digits_is_refused():
    with pytest.raises(SpecError, match="--mem"):
        validate_memory("\u0663G")


@pytest.mark.parametrize("name", ["debug", "gpu-a100", "p.1", "a,b", "a_b"])
def test_partition_like_names_are_accepted(name):
    assert validate_slurm_name("--partition", name) == name


@pytest.mark.parametrize("name", ["", "a b", "a,,b", ",a", "a'", 'a"', "a;b", "$(id)", "a\nb", "é"])
def test_partition_like_names_with_odd_characters_are_refused(name):
    with pytest.raises(SpecError, match="--partition"):
        validate_slurm_name("--partition", name)


@pytest.mark.parametrize("text", ["a100", "a100|h100", "[rack1*2&rack2*4]", "!slow", "x:1"])
def test_constraint_expressions_are_accepted(text):
    assert validate_constraint(text) == text


@pytest.mark.parametrize("text", ["a100 h100", "a'", "a;b", "$(id)", "`id`", "a\nb", ""])
def test_constraints_with_shell_or_space_characters_are_refused(text):
    with pytest.raises(SpecError, match="--constraint"):
        validate_constraint(text)


@pytest.mark.parametrize(
    "step",
    [
        EnvStep("module", "cuda/12.1"),
        EnvStep("module", "gcc+openmpi/4.1"),
        EnvStep("venv", "/shared/envs/my env"),
        EnvStep("conda", "torch-2.3"),
        EnvStep("setup", "export OMP_NUM_THREADS=4 && ulimit -n 4096"),
    ],
)
def test_one_line_environment_steps_are_accepted(step):
    assert validate_env_step(step) is step


@pytest.mark.parametrize("kind", ["setup", "module", "venv", "conda"])
@pytest.mark.parametrize("value", ["", "a\nb", "a\rb", "a\x00b", "x\x7f"])
def test_environment_steps_must_be_one_clean_line(kind, value):
    with pytest.raises(SpecError, match=f"--{kind}"):
        validate_env_step(EnvStep(kind, value))


@pytest.mark.parametrize("value", ["cuda 12", "cuda;id", "$(id)", "a'b"])
def test_module_names_with_shell_characters_are_refused(value):
    with pytest.raises(SpecError, match="not a module name"):
        validate_env_step(EnvStep("module", value))


def test_arguments_keep_unicode_spaces_and_quotes_untouched():
    args = ["--name", "résumé 日本語 🚀", "--q", 'it\'s "quoted"', "--empty", ""]
    assert validate_args(args) == args


def test_argument_with_a_nul_byte_is_refused():
    with pytest.raises(SpecError, match="NUL"):
        validate_args(["--x", "a\x00b"])


def test_argument_at_the_byte_limit_is_accepted_and_one_byte_more_refused():
    assert validate_args(["x" * MAX_ARG_BYTES])
    with pytest.raises(SpecError, match="limit"):
        validate_args(["x" * (MAX_ARG_BYTES + 1)])


def test_argument_limit_counts_utf8_bytes_not_characters():
    with pytest.raises(SpecError, match="limit"):
        validate_args(["é" * (MAX_ARG_BYTES // 2 + 1)])


def test_memo_allows_tabs_but_not_newlines_or_length():
    assert validate_memo("lr sweep\twarmup; it's $fine") == "lr sweep\twarmup; it's $fine"
    with pytest.raises(SpecError):
        validate_memo("two\nlines")
    with pytest.raises(SpecError):
        validate_memo("x" * 1001)


@pytest.fixture
def spec():
    return SessionSpec(
        project="mnist",
        script="train.py",
        args=["--lr", "0.1", "--amp"],
        resources=Resources(gpus=2, cpus_per_gpu=4, mem="16G", time="1:00:00", partition="debug"),
        environment=[EnvStep("module", "cuda/12.1")],
        memo="baseline",
    )


def test_complete_spec_is_valid_and_round_trips_through_a_dict(spec):
    assert validate_spec(spec) is spec
    assert SessionSpec.from_dict(spec.to_dict()) == spec


def test_spec_exposes_its_hyperparameters(spec):
    assert spec.hyperparameters == {"lr": 0.1, "amp": True}


@pytest.mark.parametrize(
    "resources",
    [
        Resources(gpus=-1),
        Resources(nodes=0),
        Resources(gpus=0, cpus_per_gpu=4),
        Resources(gpus=1, cpus_per_gpu=0),
        Resources(mem="lots"),
        Resources(time="0"),
        Resources(account="a b"),
        Resources(qos="high'"),
        Resources(constraint="a b"),
    ],
)
def test_spec_with_impossible_resources_is_refused(spec, resources):
    with pytest.raises(SpecError):
        validate_spec(SessionSpec(project="mnist", script="train.py", resources=resources))


@pytest.mark.parametrize("script", ["", "/abs/train.py", "train\n.py"])
def test_script_path_must_be_relative_and_one_line(script):
    with pytest.raises(SpecError, match="script path"):
        validate_spec(SessionSpec(project="mnist", script=script))
