"""Sync's side of printed-metric capture (``submit --capture-stdout``): which Slurm output
files of which sessions to read, and their new lines as metric points.

The output files are named by the session's job ids (``slurm-<job>.out``, one per job id; a
requeue appends to its file), so they join the one ``sizes`` and ``read_many`` call sync makes
per cluster: no extra round trip. A metric that arrives through ``report()`` or a captured
TensorBoard/CSV file is never taken from the output as well: names those sources already own
are skipped here, and a name the output captured first is handed over (its printed points
removed) when another source brings it (:func:`nsml_hpc.catalog.metrics.store_ingests`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from nsml_hpc.capture.stdout import parse_stdout, usable_chunk
from nsml_hpc.catalog.datasets import stdout_captures
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, MetricIngest, owned_metric_names
from nsml_hpc.catalog.sessions import jobs_of
from nsml_hpc.job.layout import slurm_output
from nsml_hpc.runfiles.scrape import MAX_READ_BYTES, MetricBatch

PRINTED_LINE = -1  # metric_point.line of captured points
SOURCE_PREFIX = "stdout:"


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None  # checked at submit; a catalog edited by hand falls back to the default


@dataclass
class PrintedOutputs:
    """The sessions of one sync that capture printed metrics."""

    catalog: Catalog
    patterns: dict[int, str | None] = field(default_factory=dict)
    files: dict[int, list[str]] = field(default_factory=dict)
    _owned: dict[int, set[str]] | None = None

    @property
    def sessions(self) -> frozenset[int]:
        return frozenset(self.patterns)

    def files_of(self, session_id: int) -> list[str]:
        return self.files.get(session_id, [])

    def owned(self, session_id: int) -> set[str]:
        """Metric names that report() or a captured file brings (asked once per sync)."""
        if self._owned is None:
            self._owned = owned_metric_names(self.catalog, sorted(self.patterns), SOURCE_PREFIX)
        return self._owned.get(session_id, set())

    def ingest(
        self,
        outputs: Sequence[tuple[int, str, CursorState, bytes]],
        others: Sequence[MetricIngest],
        warnings: list[str],
    ) -> list[MetricIngest]:
        """The new complete lines of each output (``(session, file, cursor, bytes read)``)
        as metric batches; ``others`` are the same read's metrics.jsonl batches."""
        items: list[MetricIngest] = []
        for session_id, file, cursor, raw in outputs:
            chunk, new_offset = usable_chunk(raw, cursor.offset)
            if new_offset == cursor.offset and len(raw) >= MAX_READ_BYTES:
                # One line longer than a whole read, without a carriage return to skip to:
                # skipped, so the file does not stall (the rest ends at its newline).
                warnings.append(f"{file}: a line longer than {MAX_READ_BYTES:,} bytes skipped")
                items.append(
                    MetricIngest(
                        session_id,
                        MetricBatch(malformed=1),
                        cursor,
                        cursor.offset + len(raw),
                        file=file,
                    )
                )
                continue
            if new_offset == cursor.offset:
                continue
            skip = set(self.owned(session_id))
            for other in others:
                if other.session_id == session_id:
                    skip.update(other.batch.last_metrics)
            parsed = parse_stdout(
                chunk,
                cursor.lines,
                pattern=_compiled(self.patterns.get(session_id)),
                skip=skip,
                label=file,
            )
            warnings.extend(parsed.problems)
            batch = MetricBatch(lines=parsed.lines, malformed=parsed.malformed)
            for step, when, name, value in parsed.points:
                batch.points.append((session_id, PRINTED_LINE, step, when, name, value))
                batch.last_metrics[name] = value
                if step is not None and (batch.last_step is None or step >= batch.last_step):
                    batch.last_step = step
            items.append(
                MetricIngest(
                    session_id,
                    batch,
                    cursor,
                    new_offset,
                    file=file,
                    sources={name: f"{SOURCE_PREFIX}{file}" for name in batch.last_metrics},
                )
            )
        return items


def printed_outputs(catalog: Catalog, session_ids: Sequence[int]) -> PrintedOutputs:
    """Which of ``session_ids`` capture printed metrics, and their output files (2 queries,
    none when no session captures)."""
    patterns = stdout_captures(catalog, session_ids)
    outputs = PrintedOutputs(catalog, patterns)
    if patterns:
        for session_id, jobs in jobs_of(catalog, sorted(patterns)).items():
            outputs.files[session_id] = list(
                dict.fromkeys(slurm_output(job.job_id) for job in jobs)
            )
    return outputs


__all__ = ["PRINTED_LINE", "SOURCE_PREFIX", "PrintedOutputs", "printed_outputs"]
