"""The catalog never lies about resources: a user's ``SBATCH_*`` variables never beat a flag
given to nsml-hpc (sbatch itself lets them override ``#SBATCH`` lines), apply where no flag was
given, and ``show`` reports what Slurm gave the job, read back from the sync's sacct call."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from nsml_hpc.cli import main
from tests.helpers import write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

QUICK = "print('ok')\n"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _submit(flags: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """Submit and follow the session to its end (accounting has it all then)."""
    code, out, err = _run(["submit", "--follow", *flags, "quick.py"], capsys)
    assert code == 0, err
    match = re.match(r"submitted (\S+) \(job (\d+)\)", out)
    assert match, out
    return match.group(1), match.group(2)


def _sacct(job_id: str) -> dict[str, str]:
    """What accounting says the job got (asked as root on the cluster itself)."""
    fields = ["Partition", "Account", "QOS", "Timelimit", "NNodes", "AllocTRES", "ReqTRES"]
    done = subprocess.run(
        ["sacct", "-X", "-n", "-P", f"-j{job_id}", f"--format={','.join(fields)}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SLURM_TIME_FORMAT": "%s"},
    )
    (line,) = done.stdout.strip().splitlines()
    return dict(zip(fields, line.split("|"), strict=True))


def _show(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    code, out, err = _run(["show", name, "--json"], capsys)
    assert code == 0, err
    detail = json.loads(out)
    code, text, err = _run(["show", name, "--no-sync"], capsys)
    assert code == 0, err
    (line,) = [line for line in text.splitlines() if line.startswith("resources ")]
    return detail["allocation"], line


def _gpus(tres: str) -> int:
    match = re.search(r"gres/gpu=(\d+)", tres)
    return int(match.group(1)) if match else 0


def _check_shown_as_slurm_says(name: str, job_id: str, capsys: pytest.CaptureFixture[str]) -> str:
    """``show`` reports exactly what sacct says the job got; returns the partition.

    slurmdbd can report a quick job's end before the start record that carries its partition
    and time limit; sync asks again about such a job until it has them."""
    deadline = time.monotonic() + 90
    allocation, line = _show(name, capsys)
    while allocation is None or allocation["partition"] is None:
        assert time.monotonic() < deadline, f"{name}: no complete allocation: {allocation}"
        time.sleep(1.0)
        allocation, line = _show(name, capsys)
    truth = _sacct(job_id)
    assert allocation == {
        "partition": truth["Partition"],
        "account": truth["Account"],
        "qos": truth["QOS"],
        "gpus": _gpus(truth["AllocTRES"] or truth["ReqTRES"]),
        "time_limit": truth["Timelimit"],
        "nodes": int(truth["NNodes"]),
    }
    assert line == (
        f"resources   partition={truth['Partition']}, account={truth['Account']}, "
        f"qos={truth['QOS']}, gpus={allocation['gpus']}, time_limit={truth['Timelimit']}, "
        f"nodes={truth['NNodes']}"
    )
    return truth["Partition"]


@pytest.fixture
def quick(nsml_env: Path, project_dir: Path) -> Path:
    return write_script(project_dir, "quick.py", QUICK)


def test_an_explicit_partition_beats_sbatch_partition(
    quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SBATCH_PARTITION", "small")
    name, job_id = _submit(["--partition", "debug"], capsys)
    assert _check_shown_as_slurm_says(name, job_id, capsys) == "debug"


def test_without_a_flag_sbatch_partition_applies_and_show_reports_it(
    quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SBATCH_PARTITION", "small")
    name, job_id = _submit([], capsys)
    # Asked for nothing: the user's environment chose, and the catalog says what it chose.
    assert _check_shown_as_slurm_says(name, job_id, capsys) == "small"


def test_a_bogus_sbatch_partition_cannot_refuse_a_job_with_an_explicit_one(
    quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SBATCH_PARTITION", "nosuch")
    monkeypatch.setenv("SBATCH_ACCOUNT", "nosuch")
    name, job_id = _submit(["--partition", "debug", "--account", "root"], capsys)
    assert _check_shown_as_slurm_says(name, job_id, capsys) == "debug"
    # ... while without the flags, sbatch takes them and refuses, and nothing is left behind.
    code, _, err = _run(["submit", "quick.py"], capsys)
    assert code == 4 and "invalid partition" in err.lower(), err
    code, out, _ = _run(["ps", "--no-sync"], capsys)
    assert name in out and len(out.strip().splitlines()) == 2


def test_time_limit_and_gpus_given_beat_the_environment_and_are_read_back(
    quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SBATCH_TIMELIMIT", "5")
    monkeypatch.setenv("SBATCH_GPUS_PER_NODE", "3")
    name, job_id = _submit(["--time", "10", "--gpus", "1", "--partition", "debug"], capsys)
    _check_shown_as_slurm_says(name, job_id, capsys)
    allocation, _ = _show(name, capsys)
    assert (allocation["time_limit"], allocation["gpus"]) == ("00:10:00", 1)


def test_an_environment_time_limit_applies_where_none_was_given(
    quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SBATCH_TIMELIMIT", "7")
    name, job_id = _submit(["--partition", "debug"], capsys)
    _check_shown_as_slurm_says(name, job_id, capsys)
    assert _show(name, capsys)[0]["time_limit"] == "00:07:00"


def test_logs_stay_in_the_run_directory_whatever_sbatch_output_and_error_say(
    quick: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SBATCH_OUTPUT", str(tmp_path / "elsewhere-%j.out"))
    monkeypatch.setenv("SBATCH_ERROR", str(tmp_path / "elsewhere-%j.err"))
    name, _ = _submit(["--partition", "debug"], capsys)
    code, out, err = _run(["logs", name], capsys)
    assert code == 0 and "ok" in out, err
    assert not list(tmp_path.glob("elsewhere-*"))
