"""Issue 10's resource flags as a spec: --gpus TYPE:N, tasks and CPUs, --exclusive,
--dependency, --reservation, mail, launch modes, and --sbatch-arg validated as strictly as
the directives nsml-hpc renders itself."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from nsml_hpc.errors import SpecError
from nsml_hpc.job.sbatch_options import option_name, split_option, validate_sbatch_arg
from nsml_hpc.job.spec import (
    Resources,
    SessionSpec,
    parse_gpus,
    ranks_per_node,
    validate_dependency,
    validate_mail_type,
    validate_spec,
)

BASE = SessionSpec(project="mnist", script="train.py")


def _spec(launch: str = "plain", **resources: object) -> SessionSpec:
    return replace(BASE, resources=Resources(**resources), launch=launch)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", (None, 4)),
        ("0", (None, 0)),
        ("a100:2", ("a100", 2)),
        ("nvidia_h100-80gb:8", ("nvidia_h100-80gb", 8)),
    ],
)
def test_gpus_take_a_count_or_a_type_and_a_count(
    text: str, expected: tuple[str | None, int]
) -> None:
    assert parse_gpus("--gpus", text) == expected


@pytest.mark.parametrize(
    "text", ["two", "a100:", ":2", "a100:0", "a 100:2", "a100:2:3", "-1", "1.5"]
)
def test_bad_gpu_requests_are_one_spec_error(text: str) -> None:
    with pytest.raises(SpecError, match="--gpus"):
        parse_gpus("--gpus", text)


@pytest.mark.parametrize(
    "text",
    ["afterok:12", "afterok:12:13,afterany:4", "after:5+10?afterok:6", "singleton", "afterok:7_3"],
)
def test_slurm_dependency_grammar_is_accepted(text: str) -> None:
    assert validate_dependency(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "afterok",
        "afterok:x",
        "afterok:1,afterany:2?after:3",
        "afterok:1 afterok:2",
        "afterok:1\n",
        "before:1",
        "",
    ],
)
def test_other_dependencies_are_refused(text: str) -> None:
    with pytest.raises(SpecError, match="--dependency"):
        validate_dependency(text)


def test_mail_types_are_slurms_list_upper_cased() -> None:
    assert validate_mail_type("end,fail") == "END,FAIL"
    with pytest.raises(SpecError, match="valid: NONE, BEGIN"):
        validate_mail_type("END,SOMETIMES")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_spec(cpus_per_task=2, cpus_per_gpu=2, gpus=1), "--cpus-per-task or --cpus-per-gpu"),
        (_spec(ntasks_per_node=0), "--ntasks-per-node"),
        (_spec(gpu_type="a100"), "GPU type needs a GPU count"),
        (_spec(mail_user="alice smith"), "--mail-user"),
        (_spec(reservation="maint;x"), "--reservation"),
        (_spec("mpirun"), "valid modes are plain, srun, srun-per-gpu, torchrun"),
        (_spec("srun-per-gpu"), "one task per GPU"),
        (_spec("srun-per-gpu", gpus=4, ntasks_per_node=2), "disagrees"),
        (_spec("torchrun", gpus=4, ntasks_per_node=4), "leave out --ntasks-per-node"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_inconsistent_requests_are_refused(spec: SessionSpec, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        validate_spec(spec)


def test_ranks_per_node_follow_the_launch_mode() -> None:
    assert ranks_per_node(Resources(gpus=4, nodes=2), "srun") == 1
    assert ranks_per_node(Resources(gpus=4, nodes=2, ntasks_per_node=3), "srun") == 3
    assert ranks_per_node(Resources(gpus=4, nodes=2), "srun-per-gpu") == 4
    assert ranks_per_node(Resources(gpus=4, nodes=2), "torchrun") == 4
    assert ranks_per_node(Resources(nodes=2), "torchrun") == 1


def test_new_fields_survive_session_json_and_old_documents_still_load() -> None:
    spec = _spec(
        "torchrun", gpus=2, gpu_type="a100", nodes=2, exclusive=True, sbatch_args=["--nice=5"]
    )
    spec = replace(spec, after=["mnist/1"])
    assert SessionSpec.from_dict(spec.to_dict()) == spec
    old = {"project": "mnist", "script": "train.py", "resources": {"gpus": 1, "nodes": 1}}
    loaded = SessionSpec.from_dict(old)
    assert loaded.launch == "plain" and loaded.after == [] and loaded.resources.sbatch_args == []


# --- --sbatch-arg ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "--comment=nightly",
        "--hint=nomultithread",
        "--no-kill",
        "--gpus-per-task=1",
        "--exclusive-x=1",
    ],
)
def test_options_we_do_not_model_pass_through(text: str) -> None:
    assert validate_sbatch_arg(text) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--comment=a\n#SBATCH --uid=0", "control characters"),
        ("--comment=x\r", "control characters"),
        ("--comment=a --nice=5", "one option per --sbatch-arg"),
        ("--comment=a\t--nice=5", "control characters"),
        ("--comment='a b'", "one option per --sbatch-arg"),
        ("--comment='ab'", "cannot hold quotes"),
        ("--comment=a\\b", "cannot hold quotes"),
        ("-p gpu", "one option per"),
        ("-pgpu", "long form"),
        ("comment=x", "starts with --"),
        ("--Comment=x", "lowercase"),
        ("--comment=", "has no value"),
        ("", "give one sbatch option"),
    ],
    ids=ascii,
)
def test_unsafe_or_malformed_values_are_refused(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        validate_sbatch_arg(text)


@pytest.mark.parametrize(
    ("text", "pointer"),
    [
        ("--partition=gpu", "use --partition"),
        ("--gres=gpu:2", "use --gpus / --gpus-per-node"),
        ("--gpus=8", "use --gpus"),
        ("--time=10", "use --time"),
        ("--exclusive", "use --exclusive"),
        ("--dependency=afterok:1", "use --dependency or --after"),
        ("--mail-type=ALL", "use --mail-type"),
        ("--signal=B:USR1@60", "use --grace"),
        ("--part=gpu", "--part abbreviates --partition"),
        ("--mem=4G", "use --mem"),
        ("--output=/tmp/x", "sets --output itself"),
        ("--chdir=/tmp", "sets --chdir itself"),
        ("--array=0-3", "sets --array itself"),
        ("--wrap=true", "sets --wrap itself"),
        ("--uid=0", "sets --uid itself"),
        ("--clusters=other", "choose the cluster with --cluster"),
    ],
)
def test_options_we_model_or_set_are_refused_with_a_pointer(text: str, pointer: str) -> None:
    with pytest.raises(SpecError, match="--sbatch-arg") as caught:
        validate_sbatch_arg(text)
    assert pointer in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_ambiguous_abbreviation_is_refused() -> None:
    with pytest.raises(SpecError, match="ambiguous"):
        validate_sbatch_arg("--mem-per=1G")  # --mem-per-cpu or --mem-per-gpu


def test_task_layout_options_are_refused_in_launch_modes_that_lay_out_tasks() -> None:
    assert validate_sbatch_arg("--ntasks=4") == "--ntasks=4"
    with pytest.raises(SpecError, match="--launch srun lays out the tasks itself"):
        validate_sbatch_arg("--ntasks=4", launch="srun")


def test_an_option_given_twice_or_with_mem_is_refused() -> None:
    with pytest.raises(SpecError, match="given twice"):
        validate_spec(_spec(sbatch_args=["--comment=a", "--comment=b"]))
    with pytest.raises(SpecError, match="either --mem or"):
        validate_spec(_spec(mem="4G", sbatch_args=["--mem-per-cpu=1G"]))


def test_option_names_resolve_like_sbatch_does() -> None:
    assert split_option("--nice=5") == ("nice", "5")
    assert split_option("--no-kill") == ("no-kill", None)
    assert option_name("--hin=nomultithread") == "hint"
    assert option_name("--brand-new-option=1") == "brand-new-option"


def test_the_command_line_takes_an_sbatch_option_after_a_space_but_leaves_script_args_alone() -> (
    None
):
    from nsml_hpc.cli import build_parser

    args = build_parser().parse_args(
        [
            "submit",
            "--sbatch-arg",
            "--comment=x",
            "--memo",
            "nightly",
            "--sbatch-arg=--nice=3",
            "train.py",
            "--sbatch-arg",
            "--lr=1",
        ]
    )
    assert args.sbatch_args == ["--comment=x", "--nice=3"]
    assert args.memo == "nightly"
    assert args.script_args == ["--sbatch-arg", "--lr=1"]


def test_a_fork_keeps_the_launch_and_nodes_but_not_what_its_parent_waited_for() -> None:
    from nsml_hpc.snapshots.fork import ForkRequest, _child_spec

    parent = _spec("srun", nodes=2, gpus=2, dependency="afterok:5")
    parent = replace(parent, after=["mnist/1"])
    child = _child_spec(parent, ForkRequest(parent="mnist/2"), [], "mnist/2:step-1")
    assert (child.launch, child.resources.nodes, child.resources.gpus) == ("srun", 2, 2)
    assert child.resources.dependency is None and child.after == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["cluster", "add", "duo", "--backend", "local", "--sbatch-arg", "--comment=x"], "x"),
        (["fork", "p/1", "--sbatch-arg", "--comment=y"], "y"),
        (["fork", "--memo", "m", "p/1", "--sbatch-arg", "--comment=z", "--gpus", "1"], "z"),
    ],
    ids=["cluster-add", "fork", "fork-option-first"],
)
def test_the_space_form_works_after_a_positional_word(argv: list[str], expected: str) -> None:
    from nsml_hpc.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.sbatch_args == [f"--comment={expected}"]


def test_script_args_that_look_like_sbatch_args_stay_untouched() -> None:
    from nsml_hpc.cli import build_parser

    args = build_parser().parse_args(
        ["submit", "train.py", "--sbatch-arg", "--comment=x", "--sbatch-arg=--nice=1"]
    )
    assert args.sbatch_args in (None, [])
    assert args.script_args == ["--sbatch-arg", "--comment=x", "--sbatch-arg=--nice=1"]


def test_sweep_options_after_the_script_take_the_space_form_but_shared_args_do_not() -> None:
    from nsml_hpc.cli import build_parser
    from nsml_hpc.cli.experiment_commands import _sweep_options

    args = build_parser().parse_args(
        [
            "sweep",
            "--sbatch-arg",
            "--comment=x",
            "train.py",
            "--sbatch-arg",
            "--nice=2",
            "--",
            "--sbatch-arg",
            "--lr=1",
        ]
    )
    assert args.sbatch_args == ["--comment=x"]
    assert args.rest == ["--sbatch-arg", "--nice=2", "--", "--sbatch-arg", "--lr=1"]
    cut = args.rest.index("--")
    _sweep_options().parse_args(args.rest[:cut], namespace=args)
    assert args.sbatch_args == ["--comment=x", "--nice=2"]
    assert args.rest[cut + 1 :] == ["--sbatch-arg", "--lr=1"]


# --- one parser for the CLI and the notebook client ---------------------------------------------


def test_the_cli_and_the_client_parse_resources_with_the_same_code() -> None:
    from nsml_hpc.cli import build_parser
    from nsml_hpc.cli.common import resources_from
    from nsml_hpc.submit.request import keyword
    from nsml_hpc.submit.request import resources_from as parse

    args = build_parser().parse_args(
        [
            "submit",
            "--gpus",
            "a100:2",
            "--nodes",
            "2",
            "--cpus-per-task",
            "4",
            "--exclusive",
            "--mail-type",
            "end",
            "--sbatch-arg",
            "--comment=x",
            "t.py",
        ]
    )
    from_flags = resources_from(args)
    from_keywords = parse(
        {
            "gpus": "a100:2",
            "nodes": 2,
            "cpus_per_task": 4,
            "exclusive": True,
            "mail_type": "end",
            "sbatch_args": ["--comment=x"],
        },
        keyword,
    )
    assert from_flags == from_keywords
    assert (from_keywords.gpu_type, from_keywords.gpus, from_keywords.mail_type) == (
        "a100",
        2,
        "END",
    )
    assert parse({"gpus": 2, "gpu_type": "h100"}, keyword).gpu_type == "h100"  # the old keyword
    assert parse({"sbatch_args": "--comment=y"}, keyword).sbatch_args == ["--comment=y"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gpus": "a100:0"}, "gpus TYPE:N needs N >= 1"),
        ({"gpus": True}, "gpus must be a whole number"),
        ({"gpus": 2, "gpus_per_node": 4}, "gpus 2 and gpus_per_node 4 disagree"),
        ({"gpus": "a100:2", "gpu_type": "h100"}, "give one"),
        ({"nodes": 0}, "nodes must be a whole number >= 1"),
        ({"exclusive": "yes"}, "exclusive must be True or False"),
        ({"mail_type": "SOMETIMES"}, "--mail-type"),
        ({"mem": 4}, "mem must be text"),
        ({"gpu": 1}, "did you mean 'gpus'"),
        ({"sbatch_args": 5}, "sbatch_args must be a list"),
    ],
)
def test_the_clients_bad_values_are_one_line_errors_named_as_keywords(
    values: dict[str, object], message: str
) -> None:
    from nsml_hpc.submit.request import keyword, resources_from

    with pytest.raises(SpecError, match=re.escape(message)) as caught:
        resources_from(values, keyword)
    assert "\n" not in str(caught.value)


def test_no_exclusive_is_a_request_of_its_own_and_a_fork_can_drop_its_parents() -> None:
    from nsml_hpc.cli import build_parser
    from nsml_hpc.cli.common import resources_from, resources_given
    from nsml_hpc.snapshots.fork import ForkRequest, _child_spec

    parser = build_parser()
    assert resources_from(parser.parse_args(["submit", "t.py"])).exclusive is None
    assert resources_from(parser.parse_args(["submit", "--exclusive", "t.py"])).exclusive is True
    assert (
        resources_from(parser.parse_args(["submit", "--no-exclusive", "t.py"])).exclusive is False
    )
    given = resources_given(parser.parse_args(["fork", "mnist/1", "--no-exclusive"]))
    assert given == {"exclusive": False}
    parent = _spec("srun", nodes=2, exclusive=True)
    child = _child_spec(parent, ForkRequest(parent="mnist/1", resources=given), [], "mnist/1:s")
    assert child.resources.exclusive is False
