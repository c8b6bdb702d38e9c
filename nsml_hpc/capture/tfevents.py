"""TensorBoard event files, read from a byte offset.

The file is a sequence of TFRecords (8-byte length, 4-byte masked CRC of the length, the
record, 4-byte masked CRC of the record); each record is an ``Event`` protocol buffer. The
framing is read here; decoding comes from the ``tensorboard`` package (the optional
``tensorboard`` extra), so no protobuf parser is written by hand. Every record's CRC is checked:
with ``google-crc32c`` (C, in the same extra) when it is installed, else with tensorboard's
pure-Python CRC (about 25 times slower: it was 60 % of the capture's time). A record the writer
is still appending stays for the next sync; a corrupt file stops at the first bad record and
reports it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nsml_hpc.errors import TensorBoardUnavailable

HEADER = struct.Struct("<QI")  # length, masked crc32c of the length
FOOTER_BYTES = 4
MAX_RECORD_BYTES = 256 * 1024 * 1024


@dataclass
class EventPoints:
    points: list[tuple[int | None, float | None, str, float | None]] = field(default_factory=list)
    new_offset: int = 0
    records: int = 0
    malformed: int = 0  # records skipped: bad checksum, undecodable, or lost in a damaged span
    problems: list[str] = field(default_factory=list)  # each with its byte offset in the file

    @property
    def corrupt(self) -> str | None:
        """The problems in one line, or None for a clean read."""
        return "; ".join(self.problems) if self.problems else None


CRC_MASK_DELTA = 0xA282EAD8


def mask_crc(crc: int) -> int:
    """TFRecord's masked CRC: rotate right by 15 bits, add a constant (mod 2**32)."""
    return (((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA) & 0xFFFFFFFF


def _c_masked_crc32c() -> Callable[[bytes], int] | None:
    """The masked CRC-32C through google-crc32c's C code, or None where it is not there."""
    try:
        import google_crc32c
    except ImportError:
        return None
    if getattr(google_crc32c, "implementation", "c") != "c":
        return None
    value = google_crc32c.value

    def masked(data: bytes) -> int:
        return mask_crc(value(data))

    return masked


def _decoders() -> tuple[Any, Callable[[bytes], int], Any]:
    try:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
        from tensorboard.util import tensor_util
    except ImportError as exc:
        raise TensorBoardUnavailable(
            "TensorBoard event files need the optional extra: pip install 'nsml-hpc[tensorboard]'"
        ) from exc
    return event_pb2.Event, _c_masked_crc32c() or masked_crc32c, tensor_util


def _scalar(value: Any, tensor_util: Any) -> float | bool | None:
    """The scalar in a summary value; ``False`` when it is not a scalar (image, histogram)."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        number = float(value.simple_value)
    elif kind == "tensor":
        array = tensor_util.make_ndarray(value.tensor)
        if array.size != 1 or array.dtype.kind not in "fiu":
            return False
        number = float(array.reshape(()))
    else:
        return False
    return number if math.isfinite(number) else None


MAX_PROBLEMS = 10


def _note(result: EventPoints, problem: str) -> None:
    """Keep the first MAX_PROBLEMS problems word for word; ``malformed`` counts them all."""
    if len(result.problems) < MAX_PROBLEMS:
        result.problems.append(problem)


def _next_header(data: bytes, start: int, masked_crc32c: Callable[[bytes], int]) -> int | None:
    """The first position from ``start`` where a record header's own CRC checks out."""
    for position in range(start, len(data) - HEADER.size + 1):
        length, length_crc = HEADER.unpack_from(data, position)
        if (
            length <= MAX_RECORD_BYTES
            and masked_crc32c(data[position : position + 8]) == length_crc
        ):
            return position
    return None


def read_event_points(data: bytes, offset: int) -> EventPoints:
    """Scalars in the complete records of ``data`` (the file's bytes from ``offset``).

    A damaged record does not end the read: a record whose checksum fails (or that does not
    decode) is skipped by its length, and after a damaged header the reader moves to the next
    position where a header's own CRC checks out (a false match there is a 1 in 2**32 event,
    and its record CRC would then fail too). Each problem is named with its byte offset and
    counted in ``malformed``. A record the writer is still appending stays for the next read.
    """
    event_class, masked_crc32c, tensor_util = _decoders()
    result = EventPoints(new_offset=offset)
    position = 0
    end_of_data = len(data)
    while position + HEADER.size <= end_of_data:
        length, length_crc = HEADER.unpack_from(data, position)
        if length > MAX_RECORD_BYTES or masked_crc32c(data[position : position + 8]) != length_crc:
            found = _next_header(data, position + 1, masked_crc32c)
            resumed = found if found is not None else max(position, end_of_data - HEADER.size + 1)
            _note(
                result,
                f"damaged record header at byte {offset + position}"
                + (f", {resumed - position} bytes skipped" if found is not None else ""),
            )
            result.malformed += 1
            position = resumed
            result.new_offset = offset + position
            if found is None:
                break
            continue
        end = position + HEADER.size + length + FOOTER_BYTES
        if end > end_of_data:
            break  # the writer has not finished this record yet
        record = data[position + HEADER.size : end - FOOTER_BYTES]
        (record_crc,) = struct.unpack_from("<I", data, end - FOOTER_BYTES)
        event = None
        if masked_crc32c(record) != record_crc:
            _note(result, f"bad record checksum at byte {offset + position}")
        else:
            try:
                event = event_class.FromString(record)
            except Exception as exc:
                _note(result, f"undecodable record at byte {offset + position}: {exc}")
        position = end
        result.new_offset = offset + position
        if event is None:
            result.malformed += 1
            continue
        result.records += 1
        if not event.HasField("summary"):
            continue
        step, wall_time = int(event.step), float(event.wall_time)
        for value in event.summary.value:
            number = _scalar(value, tensor_util)
            if number is not False:
                result.points.append((step, wall_time, value.tag, number))
    return result
