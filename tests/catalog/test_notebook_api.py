"""The notebook API (nsml_hpc.client) and ``nsml-hpc export`` over a real catalog (the TUI
tests' fixed sessions: mnist/1..4 and cifar/1..2 with train_loss, val_loss, val_acc).
Submitting, sweeping and stopping from Python run against the real Slurm sandbox in
tests/slurm/test_everyday_slurm.py."""

from __future__ import annotations

import csv
import io
import json
import math
import tracemalloc
from pathlib import Path

import pandas
import pytest

from nsml_hpc.catalog.metrics import CursorState, store_metric_batch
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.cli import main
from nsml_hpc.client import Client
from nsml_hpc.errors import NotFoundError, SpecError
from nsml_hpc.experiments.history import iter_points
from nsml_hpc.runfiles.scrape import parse_metric_lines
from nsml_hpc.workspace import Workspace
from tests.tui.conftest import build_catalog


@pytest.fixture
def client(workspace: Workspace) -> Client:
    build_catalog(workspace.catalog, workspace.settings.run_root)
    return Client(workspace)


def test_sessions_is_a_dataframe_with_params_and_metrics_columns(client: Client) -> None:
    frame = client.sessions(project="mnist")
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame["name"]) == ["mnist/4", "mnist/3", "mnist/2", "mnist/1"]
    assert {"params.lr", "params.epochs", "metrics.val_loss", "state", "gpus"} <= set(frame)
    assert frame.set_index("name").loc["mnist/1", "params.lr"] == 0.1
    running = client.sessions(state="running")
    assert sorted(running["name"]) == ["cifar/1", "mnist/2"]
    assert list(client.sessions(state=["FAILED", "CANCELLED"], limit=1)["name"]) == ["cifar/2"]
    assert client.sessions(project="nothing").empty


def test_one_session_spec_state_hyperparameters_and_history(client: Client) -> None:
    run = client.session("mnist/1")
    assert run.state == "COMPLETED" and run.memo == "baseline"
    assert run.hyperparameters == {"lr": 0.1, "epochs": 30}
    assert run.spec.script == "train.py" and run.spec.resources.gpus == 2
    history = run.history()
    assert list(history.columns) == ["step", "time", "train_loss", "val_acc", "val_loss"]
    assert len(history) == 30 and list(history["step"][:3]) == [0, 1, 2]
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]
    assert str(history["time"].dtype).startswith("datetime64")
    only = run.history(["val_loss"])
    assert list(only.columns) == ["step", "time", "val_loss"]
    with pytest.raises(NotFoundError, match="did you mean 'mnist/1'"):
        client.session("mnsit/1")
    with pytest.raises(NotFoundError, match="did you mean 'val_loss'"):
        run.history(["val_los"])


def test_history_of_several_sessions_is_long_format(client: Client) -> None:
    points = client.history(["mnist/1", "mnist/2"], ["val_loss"])
    assert list(points.columns) == ["session", "step", "time", "metric", "value"]
    assert set(points["session"]) == {"mnist/1", "mnist/2"}
    assert len(points) == 30 + 22
    assert set(points["metric"]) == {"val_loss"}
    compared = client.compare(["mnist/1", "mnist/2"])
    assert list(compared.index) == ["mnist/1", "mnist/2"]


def test_nan_and_inf_are_nan_in_the_history(client: Client, workspace: Workspace) -> None:
    record = get_session(workspace.catalog, "mnist/4")
    assert record.id is not None
    chunk = b'{"step": 100, "val_loss": NaN}\n{"step": 101, "val_loss": Infinity}\n'
    batch = parse_metric_lines(chunk, 1000, record.id)
    store_metric_batch(workspace.catalog, record.id, batch, CursorState(), 10_000, 0.0)
    history = client.session("mnist/4").history(["val_loss"])
    assert math.isnan(history.set_index("step").loc[100, "val_loss"])
    assert client.session("mnist/4").detail["non_finite_values"] == 2


def test_nsml_hpc_log_turns_on_logging_in_a_notebook(
    nsml_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    logger = logging.getLogger("nsml_hpc")
    try:
        with Client():
            pass
        assert "INFO" not in capsys.readouterr().err  # nothing by default
        monkeypatch.setenv("NSML_HPC_LOG", "info")
        with Client() as nsml:
            nsml.sessions()
        assert "nsml-hpc: INFO nsml_hpc.catalog.engine: catalog sqlite:" in capsys.readouterr().err
        monkeypatch.setenv("NSML_HPC_LOG", "verbos")
        with Client():
            pass
        assert "NSML_HPC_LOG='verbos' is not a level" in capsys.readouterr().err
    finally:
        logger.setLevel(logging.NOTSET)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


# --- export ---------------------------------------------------------------------------------


def test_export_csv_to_stdout_and_jsonl_and_parquet_files(
    client: Client, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["export", "mnist/1", "cifar/2", "--metric", "val_loss"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsysbinary.readouterr().out.decode())))
    assert rows[0] == {
        "session": "mnist/1",
        "step": "0",
        "time": rows[0]["time"],
        "metric": "val_loss",
        "value": rows[0]["value"],
    }
    assert len(rows) == 30 + 8 and float(rows[0]["value"]) > 2
    target = tmp_path / "points.jsonl"
    assert main(["export", "mnist/2", "-o", str(target)]) == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(lines) == 22 * 3 and {line["metric"] for line in lines} == {
        "train_loss",
        "val_loss",
        "val_acc",
    }
    import pyarrow.parquet

    parquet = tmp_path / "points.parquet"
    assert main(["export", "mnist/1", "mnist/2", "-o", str(parquet)]) == 0
    table = pyarrow.parquet.read_table(parquet)
    assert table.num_rows == (30 + 22) * 3
    assert table.column_names == ["session", "step", "time", "metric", "value"]


def test_export_to_stdout_of_an_unknown_name_writes_nothing_to_stdout(
    client: Client, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    for argv in (
        ["export", "nosuch/1"],
        ["export", "mnist/1", "mnsit/2"],
        ["export", "mnsit/2", "--format", "jsonl"],
        ["export", "mnist/1", "--metric", "val_los"],
    ):
        assert main(argv) == 3, argv
        out, err = capsysbinary.readouterr()
        assert out == b"", argv  # not even the CSV header
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1, lines
    assert main(["export", "mnsit/2"]) == 3
    assert "did you mean 'mnist/2'" in capsysbinary.readouterr().err.decode()
    assert main(["export", "mnist/1", "--metric", "val_los"]) == 3
    assert "did you mean 'val_loss'" in capsysbinary.readouterr().err.decode()


def test_export_refuses_an_existing_file_without_force_and_leaves_nothing_on_error(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    target = folder / "out.csv"
    target.write_text("precious\n")
    assert main(["export", "mnist/1", "-o", str(target)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert target.read_text() == "precious\n"
    assert main(["export", "mnist/1", "-o", str(target), "--force"]) == 0
    assert target.read_text().startswith("session,step,time,metric,value")
    missing = folder / "new.csv"
    assert main(["export", "mnist/1", "mnsit/2", "-o", str(missing)]) == 3
    assert "did you mean 'mnist/2'" in capsys.readouterr().err
    assert sorted(path.name for path in folder.iterdir()) == ["out.csv"]
    with pytest.raises(SpecError, match="give -o PATH"):
        client.workspace.export(["mnist/1"], "parquet", None)


def test_export_streams_in_chunks(client: Client, workspace: Workspace, tmp_path: Path) -> None:
    record = get_session(workspace.catalog, "cifar/1")
    assert record.id is not None
    lines = b"".join(
        b'{"step": %d, "loss": %f, "acc": %f}\n' % (step, 1 / (step + 1), step / 1e5)
        for step in range(100, 60_100)
    )
    batch = parse_metric_lines(lines, 10_000, record.id)
    store_metric_batch(workspace.catalog, record.id, batch, CursorState(), len(lines), 0.0)
    chunks = list(iter_points(workspace.catalog, ["cifar/1"], ["loss"], chunk_rows=10_000))
    assert [len(chunk) for chunk in chunks] == [10_000] * 6
    target = tmp_path / "big.csv"
    tracemalloc.start()
    count = workspace.export(["cifar/1"], "csv", target)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 40 * 3 + 60_000 * 2
    assert peak < 40 * 2**20  # one chunk at a time, not 120,000 rows of Python objects
