"""What ``submit`` takes beyond resources: the dataset a session reads (``--dataset``,
``--stage``) and the capture of metrics it only prints (``--capture-stdout``,
``--stdout-pattern``); and how ``show`` prints them, with the hyperparameters changed while
the session ran."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from nsml_hpc.errors import SpecError

if TYPE_CHECKING:
    from nsml_hpc.job.spec import SessionSpec
    from nsml_hpc.workspace import Workspace


def add_run_options(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data and capture")
    data.add_argument(
        "--dataset",
        metavar="NAME[:VERSION]",
        help="a pushed dataset the job reads (newest version by default): its folder is "
        "$NSML_HPC_DATASET and nsml_hpc.session.dataset",
    )
    data.add_argument(
        "--stage",
        action="store_true",
        help="copy the dataset to node-local scratch ($SLURM_TMPDIR/$TMPDIR; sbcast on several "
        "nodes) at job start, removed at the end",
    )
    capture = data.add_mutually_exclusive_group()
    capture.add_argument(
        "--capture-stdout",
        dest="capture_stdout",
        action="store_const",
        const=True,
        default=None,
        help="read metrics the script prints (step/epoch with name=value or name: value) "
        "from its Slurm output (default: the config's capture_stdout)",
    )
    capture.add_argument(
        "--no-capture-stdout", dest="capture_stdout", action="store_const", const=False
    )
    data.add_argument(
        "--stdout-pattern",
        metavar="REGEX",
        help="read printed metrics with this pattern instead: named groups are metrics, "
        "(?P<step>...)/(?P<epoch>...) the x axis (implies --capture-stdout)",
    )


def apply_run_options(
    args: argparse.Namespace, spec: SessionSpec, workspace: Workspace
) -> SessionSpec:
    """``spec`` with the dataset (resolved to a version on its cluster) and capture options."""
    from dataclasses import replace

    from nsml_hpc.job.spec import DatasetUse, parse_dataset_ref, validate_stdout_pattern

    dataset = getattr(args, "dataset", None)
    stage = bool(getattr(args, "stage", False))
    if stage and dataset is None:
        raise SpecError("--stage needs --dataset NAME")
    pattern = getattr(args, "stdout_pattern", None)
    if pattern is not None:
        validate_stdout_pattern(pattern)
    capture = getattr(args, "capture_stdout", None)
    if capture is False and pattern is not None:
        raise SpecError("--stdout-pattern captures the output; it contradicts --no-capture-stdout")
    spec = replace(
        spec,
        capture_stdout=workspace.settings.capture_stdout if capture is None else capture,
        stdout_pattern=pattern,
    )
    if dataset is not None:
        name, version = parse_dataset_ref(dataset)
        spec = workspace.resolve_dataset(replace(spec, dataset=DatasetUse(name, version, stage)))
    return spec


def detail_lines(detail: dict[str, Any]) -> list[str]:
    """Lines of ``show`` for a session's dataset, printed-metric capture and live changes."""
    lines: list[str] = []
    dataset = detail.get("dataset")
    if dataset:
        staged = ", staged to node-local scratch" if dataset["staged"] else ""
        lines.append(
            f"dataset     {dataset['name']}:{dataset['version']}{staged}  {dataset['path']}"
        )
    capture = detail.get("stdout_capture")
    if capture:
        how = f"pattern {capture['pattern']}" if capture["pattern"] else "name=value / name: value"
        lines.append(f"stdout      metrics read from the Slurm output ({how})")
    changes = detail.get("hyperparameter_changes") or []
    if changes:
        lines.append("hyperparameters changed while running")
        for change in changes:
            moves = ", ".join(
                f"{name} {change['previous'].get(name)!r} -> {value!r}"
                for name, value in sorted(change["changes"].items())
            )
            lines.append(f"  at step {change['step']}: {moves} (version {change['version']})")
    return lines


__all__ = ["add_run_options", "apply_run_options", "detail_lines"]
