"""Zero-code metric capture: metrics that training code already writes with TensorBoard or a
Lightning/Keras-style CSV logger, read incrementally from the run directory like metrics.jsonl.

Each reader is pure (bytes and offsets in, points out) so sync can drive it through the
backend's file seam; the TensorBoard decoder is the optional ``tensorboard`` extra.
"""

from __future__ import annotations

from nsml_hpc.capture.csvlog import CsvCursor, read_csv_points
from nsml_hpc.capture.discover import CapturedFile, discover
from nsml_hpc.capture.tfevents import read_event_points

__all__ = [
    "CapturedFile",
    "CsvCursor",
    "discover",
    "read_csv_points",
    "read_event_points",
]
