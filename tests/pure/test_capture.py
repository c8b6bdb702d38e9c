"""Zero-code capture readers: TensorBoard event files written by a real writer, CSV logs in
Lightning's and Keras' shapes, and discovery in a run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboardX import SummaryWriter

from nsml_hpc.capture import CsvCursor, discover, read_csv_points, read_event_points


@pytest.fixture
def event_file(tmp_path: Path) -> Path:
    writer = SummaryWriter(str(tmp_path / "runs"))
    for step in range(5):
        writer.add_scalar("train/loss", 1.0 / (step + 1), step)
        writer.add_scalar("val/acc", step / 10, step)
    writer.add_text("note", "not a scalar", 0)
    writer.close()
    return next((tmp_path / "runs").glob("events.out.tfevents.*"))


def test_scalars_of_a_real_tensorboard_writer_are_read(event_file: Path) -> None:
    data = event_file.read_bytes()
    result = read_event_points(data, 0)
    assert result.corrupt is None
    assert result.new_offset == len(data)
    losses = [(step, value) for step, _, tag, value in result.points if tag == "train/loss"]
    assert [step for step, _ in losses] == list(range(5))
    assert [value for _, value in losses] == pytest.approx([1.0 / (step + 1) for step in range(5)])
    assert {tag for _, _, tag, _ in result.points} == {"train/loss", "val/acc"}


def test_reading_resumes_from_the_offset_and_leaves_a_partial_record(event_file: Path) -> None:
    data = event_file.read_bytes()
    first = read_event_points(data[: len(data) - 7], 0)  # the last record is half written
    assert first.new_offset < len(data) - 7
    rest = read_event_points(data[first.new_offset :], first.new_offset)
    assert rest.new_offset == len(data)
    assert len(first.points) + len(rest.points) == 10


def test_a_corrupt_event_file_stops_with_a_reason_not_a_crash(event_file: Path) -> None:
    data = bytearray(event_file.read_bytes())
    data[60] ^= 0xFF
    result = read_event_points(bytes(data), 0)
    assert result.corrupt is not None and "byte" in result.corrupt
    garbage = read_event_points(b"this is not an event file at all\n" * 3, 0)
    assert garbage.corrupt is not None and garbage.points == []


LIGHTNING_V1 = b"epoch,step,train_loss\n0,9,0.9\n0,19,0.8\n"
LIGHTNING_V2 = b"epoch,step,train_loss,val_acc\n0,9,0.9,\n0,19,0.8,\n0,19,,0.5\n1,29,0.7,\n"


def test_csv_rows_are_taken_once_even_when_lightning_rewrites_the_header() -> None:
    first = read_csv_points(LIGHTNING_V1, CsvCursor())
    assert [(p[0], p[2], p[3]) for p in first.points] == [
        (9, "epoch", 0.0),
        (9, "train_loss", 0.9),
        (19, "epoch", 0.0),
        (19, "train_loss", 0.8),
    ]
    second = read_csv_points(LIGHTNING_V2, first.cursor)
    assert [(p[0], p[2], p[3]) for p in second.points] == [
        (19, "epoch", 0.0),
        (19, "val_acc", 0.5),
        (29, "epoch", 1.0),
        (29, "train_loss", 0.7),
    ]
    assert second.cursor.rows == 4


def test_keras_csv_uses_the_epoch_as_step_and_skips_a_partial_line() -> None:
    content = b"epoch,loss,accuracy\n0,0.5,0.8\n1,0.4,0.85\n2,0.3"
    result = read_csv_points(content, CsvCursor())
    assert {(p[0], p[2], p[3]) for p in result.points} == {
        (0, "loss", 0.5),
        (0, "accuracy", 0.8),
        (1, "loss", 0.4),
        (1, "accuracy", 0.85),
    }
    assert result.cursor.rows == 2


def test_csv_rows_of_the_wrong_width_are_counted_as_malformed() -> None:
    result = read_csv_points(b"epoch,loss\n0,0.5\n1,0.4,extra\n", CsvCursor())
    assert result.malformed == 1 and len(result.points) == 1


def test_discovery_finds_event_files_and_csv_logs_but_not_snapshots(tmp_path: Path) -> None:
    (tmp_path / "code" / "runs" / "exp1").mkdir(parents=True)
    (tmp_path / "code" / "runs" / "exp1" / "events.out.tfevents.1.vm").write_bytes(b"")
    (tmp_path / "code" / "lightning_logs" / "version_0").mkdir(parents=True)
    (tmp_path / "code" / "lightning_logs" / "version_0" / "metrics.csv").write_text("a\n")
    (tmp_path / "code" / ".git").mkdir()
    (tmp_path / "code" / ".git" / "events.out.tfevents.x").write_bytes(b"")
    (tmp_path / "code" / "train.py").write_text("")
    found = discover(str(tmp_path))
    assert [(f.relative, f.kind) for f in found] == [
        ("code/lightning_logs/version_0/metrics.csv", "csv"),
        ("code/runs/exp1/events.out.tfevents.1.vm", "tensorboard"),
    ]
