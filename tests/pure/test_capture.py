"""Zero-code capture readers: TensorBoard event files written by a real writer, CSV logs in
Lightning's and Keras' shapes, and discovery in a run directory."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from tensorboardX import SummaryWriter

from nsml_hpc.capture import CsvCursor, discover, read_csv_points, read_event_points
from nsml_hpc.capture.csvlog import read_csv_stream


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


def _record_starts(data: bytes) -> list[int]:
    """Byte offsets of every record in a clean event file (from the framing alone)."""
    starts, position = [], 0
    while position < len(data):
        starts.append(position)
        (length,) = struct.unpack_from("<Q", data, position)
        position += 12 + length + 4
    return starts


def test_a_record_with_a_bad_checksum_is_skipped_counted_and_named(event_file: Path) -> None:
    data = bytearray(event_file.read_bytes())
    starts = _record_starts(bytes(data))
    damaged = starts[4]  # a scalar record in the middle of the file
    data[damaged + 14] ^= 0xFF  # inside the record, after its 12-byte header
    result = read_event_points(bytes(data), 0)
    assert result.malformed == 1
    assert result.problems == [f"bad record checksum at byte {damaged}"]
    assert result.new_offset == len(data)
    assert len(result.points) == 9  # every other scalar still arrives


def test_a_damaged_header_in_the_middle_is_skipped_and_reading_goes_on(event_file: Path) -> None:
    data = bytearray(event_file.read_bytes())
    starts = _record_starts(bytes(data))
    damaged = starts[4]
    data[damaged + 2] ^= 0xFF  # the record's length: its header CRC no longer matches
    result = read_event_points(bytes(data), 0)
    assert result.malformed == 1
    assert result.problems[0].startswith(f"damaged record header at byte {damaged}")
    assert result.new_offset == len(data)
    assert len(result.points) == 9
    garbage = read_event_points(b"this is not an event file at all\n" * 3, 0)
    assert garbage.corrupt is not None and garbage.points == []
    assert garbage.new_offset > 0  # the garbage is not read again at every sync


def test_the_c_crc_agrees_with_the_pure_one_and_the_pure_one_still_works(
    event_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    from nsml_hpc.capture import tfevents

    c_crc = tfevents._c_masked_crc32c()
    assert c_crc is not None, "google-crc32c's C code is a dev dependency"
    for blob in (b"", b"x", bytes(range(256)) * 7, event_file.read_bytes()):
        assert c_crc(blob) == masked_crc32c(blob)
    monkeypatch.setitem(sys.modules, "google_crc32c", None)  # as if it were not installed
    assert tfevents._c_masked_crc32c() is None
    result = read_event_points(event_file.read_bytes(), 0)
    assert result.corrupt is None and len(result.points) == 10


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


def test_a_header_that_changes_mid_file_switches_the_columns_and_is_named() -> None:
    content = b"step,loss\n1,0.5\n2,0.4\nstep,loss,acc\n3,0.3,0.9\n4,x,0.95,7\n5,0.2,0.97\n"
    result = read_csv_points(content, CsvCursor())
    assert [(p[0], p[2], p[3]) for p in result.points] == [
        (1, "loss", 0.5),
        (2, "loss", 0.4),
        (3, "loss", 0.3),
        (3, "acc", 0.9),
        (5, "loss", 0.2),
        (5, "acc", 0.97),
    ]
    assert result.malformed == 1
    assert result.problems == ["header changed at line 4", "line 6: 4 cells, header has 3"]
    again = read_csv_points(content + b"6,0.1,0.99\n", result.cursor)
    assert [(p[0], p[2]) for p in again.points] == [(6, "loss"), (6, "acc")]  # once, not twice


def test_a_csv_read_in_small_chunks_and_bounded_pieces_loses_and_doubles_nothing() -> None:
    rows = b"".join(b"%d,%d.5\n" % (step, step) for step in range(1000))
    content = b"step,loss\n" + rows + b"1000,1"  # a partial last line
    whole = read_csv_points(content, CsvCursor())
    pieces = [content[i : i + 7] for i in range(0, len(content), 7)]
    cursor, taken = CsvCursor(), []
    for _ in range(100):
        part = read_csv_stream(iter(pieces), cursor, max_new_bytes=500)
        taken.extend(part.points)
        if part.cursor == cursor:
            break
        cursor = part.cursor
    assert taken == whole.points and len(taken) == 1000
    assert cursor.rows == 1000 and cursor.offset == len(content) - len(b"1000,1")


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
