"""Job arrays: how big one may be, how to split a sweep over several, and how Slurm names
array tasks (``8_3``, and ``8_[4-9%2]`` for tasks that have not started yet)."""

from __future__ import annotations

import re

DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's own default
_MAX_ARRAY = re.compile(r"^\s*MaxArraySize\s*=\s*(\d+)\s*$", re.MULTILINE)
_TASK_RANGE = re.compile(r"^(\d+)_\[([0-9,\-]+)(?:%\d+)?\]$")


def parse_max_array_size(scontrol_show_config: str) -> int:
    """MaxArraySize from ``scontrol show config`` output (Slurm's default if absent)."""
    match = _MAX_ARRAY.search(scontrol_show_config)
    return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE


def split_counts(count: int, max_array_size: int) -> list[int]:
    """Sizes of the arrays needed for ``count`` tasks; indices of one array run 0..size-1,
    and Slurm refuses an index >= MaxArraySize."""
    if count < 1 or max_array_size < 1:
        raise ValueError("need at least one task and a positive MaxArraySize")
    full, rest = divmod(count, max_array_size)
    return [max_array_size] * full + ([rest] if rest else [])


def array_spec(size: int, max_parallel: int | None) -> str:
    """The ``--array`` value: ``0-N`` with ``%K`` when at most K may run at once."""
    spec = f"0-{size - 1}" if size > 1 else "0"
    return f"{spec}%{max_parallel}" if max_parallel else spec


def expand_task_ids(job_id: str) -> list[str]:
    """``8_[2-4,7%2]`` -> ``8_2 8_3 8_4 8_7``; any other id is returned as it is."""
    match = _TASK_RANGE.match(job_id)
    if not match:
        return [job_id]
    master, ranges = match.groups()
    tasks: list[str] = []
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        for index in range(int(low), int(high or low) + 1):
            tasks.append(f"{master}_{index}")
    return tasks
