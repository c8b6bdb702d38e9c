"""TensorBoard event files, read from a byte offset.

The file is a sequence of TFRecords (8-byte length, 4-byte masked CRC of the length, the
record, 4-byte masked CRC of the record); each record is an ``Event`` protocol buffer. The
framing is read here; decoding and the CRC come from the ``tensorboard`` package (the optional
``tensorboard`` extra), so no protobuf parser is written by hand. A record the writer is still
appending stays for the next sync; a corrupt file stops at the first bad record and reports it.
"""

from __future__ import annotations

import math
import struct
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
    corrupt: str | None = None  # why reading stopped early, if it did


def _decoders() -> tuple[Any, Any, Any]:
    try:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
        from tensorboard.util import tensor_util
    except ImportError as exc:
        raise TensorBoardUnavailable(
            "TensorBoard event files need the optional extra: pip install 'nsml-hpc[tensorboard]'"
        ) from exc
    return event_pb2.Event, masked_crc32c, tensor_util


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


def read_event_points(data: bytes, offset: int) -> EventPoints:
    """Scalars in the complete records of ``data`` (the file's bytes from ``offset``)."""
    event_class, masked_crc32c, tensor_util = _decoders()
    result = EventPoints(new_offset=offset)
    position = 0
    while position + HEADER.size <= len(data):
        length, length_crc = HEADER.unpack_from(data, position)
        if masked_crc32c(data[position : position + 8]) != length_crc or length > MAX_RECORD_BYTES:
            result.corrupt = f"bad record header at byte {offset + position}"
            break
        end = position + HEADER.size + length + FOOTER_BYTES
        if end > len(data):
            break  # the writer has not finished this record yet
        record = data[position + HEADER.size : position + HEADER.size + length]
        (record_crc,) = struct.unpack_from("<I", data, end - FOOTER_BYTES)
        if masked_crc32c(record) != record_crc:
            result.corrupt = f"bad record checksum at byte {offset + position}"
            break
        try:
            event = event_class.FromString(record)
        except Exception as exc:
            result.corrupt = f"undecodable record at byte {offset + position}: {exc}"
            break
        position = end
        result.records += 1
        result.new_offset = offset + position
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            number = _scalar(value, tensor_util)
            if number is not False:
                result.points.append((int(event.step), float(event.wall_time), value.tag, number))
    return result
