"""Reading metrics a script prints (pure): what a terminal would show of a line, the x axis,
name=value and name: value pairs, values that are no numbers, patterns, and output that never
ends its line. Garbage never raises."""

from __future__ import annotations

import os
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from nsml_hpc.capture.stdout import number, parse_stdout, usable_chunk, visible_text


def _points(text: str, **kwargs: object) -> list[tuple[int | None, str, float | None]]:
    result = parse_stdout(text.encode(), 0, **kwargs)  # type: ignore[arg-type]
    return [(step, name, value) for step, _, name, value in result.points]


def test_the_oldest_habit_reads_step_epoch_and_the_metrics() -> None:
    assert _points("epoch 3 step 120 loss=0.4321 val_acc: 0.91\n") == [
        (120, "loss", 0.4321),
        (120, "val_acc", 0.91),
        (120, "epoch", 3.0),
    ]
    assert _points("Epoch: 7 | loss: 0.5\n") == [(7, "loss", 0.5)]  # epoch alone is the x
    assert _points("Step 5/100 - loss=1e-3 - acc=98.5%\n") == [(5, "loss", 0.001), (5, "acc", 98.5)]
    assert _points("iter 40 loss=nan lr=inf\n") == [(40, "loss", None), (40, "lr", None)]


def test_tensors_printed_as_values_give_their_number() -> None:
    text = "step 9 loss=tensor(0.2500, grad_fn=<NllLossBackward0>)\n"
    assert _points(text) == [(9, "loss", 0.25)]


def test_lines_without_an_x_axis_are_not_metrics() -> None:
    text = (
        "Namespace(lr=0.1, batch_size=32)\n"
        "INFO:root: loading data: 12 files\n"
        '  File "train.py", line 10, in <module>\n'
        "2026-12-01 10:00:01 loss=0.5\n"
    )
    result = parse_stdout(text.encode(), 0)
    assert result.points == [] and result.malformed == 0 and result.lines == 4


def test_progress_bars_count_by_what_a_terminal_shows_last() -> None:
    bar = "\r 10%|#         | 1/10 loss=0.90\r 50%|#####     | 5/10 loss=0.50"
    text = f"{bar}\repoch 1 step 10 loss=0.4\n\x1b[32mstep 11 loss=0.3\x1b[0m\n"
    assert visible_text(bar.encode()) == "50%|#####     | 5/10 loss=0.50"
    assert _points(text) == [(10, "loss", 0.4), (10, "epoch", 1.0), (11, "loss", 0.3)]


def test_stderr_interleaved_on_the_same_line_keeps_the_printed_metrics() -> None:
    text = " 30%|###       | 3/10 [00:01<00:02]epoch 0 step 3 loss=0.7\n"
    assert _points(text) == [(3, "loss", 0.7), (3, "epoch", 0.0)]


def test_values_that_are_no_numbers_are_counted_and_named_never_fatal() -> None:
    text = "step 1 loss=0.5\nepoch 2 step 12 loss=abc\nstep 13 phase=train loss=0.25\n"
    result = parse_stdout(text.encode(), 40, label="slurm-7.out")
    assert [(s, n, v) for s, _, n, v in result.points] == [
        (1, "loss", 0.5),
        (13, "loss", 0.25),  # phase=train beside a number: not a malformed line
    ]
    assert result.malformed == 1
    assert result.problems == ["slurm-7.out line 42: loss=abc is not a number"]


def test_names_another_source_brings_are_skipped() -> None:
    assert _points("step 1 loss=0.5 acc=0.9\n", skip={"acc"}) == [(1, "loss", 0.5)]


def test_a_pattern_reads_its_named_groups() -> None:
    pattern = re.compile(r"Iter (?P<step>\d+): loss (?P<loss>\S+)")
    result = parse_stdout(b"Iter 100: loss 0.25\nIter 200: loss oops\nother\n", 0, pattern=pattern)
    assert [(s, n, v) for s, _, n, v in result.points] == [(100, "loss", 0.25)]
    assert result.malformed == 1


def test_output_that_never_ends_its_line_is_skipped_past_its_last_redraw() -> None:
    assert usable_chunk(b"epoch 1 step 1 loss=0.5\n\r 10%", 100) == (
        b"epoch 1 step 1 loss=0.5\n",
        124,
    )
    assert usable_chunk(b"\r 10%|#   \r 20%|##  \r 30", 100) == (b"", 121)
    assert usable_chunk(b"no newline and no redraw", 100) == (b"", 100)


def test_number_reads_printed_values() -> None:
    assert number("0.5") == 0.5 and number("-1e-3") == -0.001 and number("98%") == 98.0
    assert number("nan") is None and number("-inf") is None
    assert number("abc") is False and number("0.5.3") is False and number("12:30") is False


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_raising(data: bytes) -> None:
    result = parse_stdout(data, 0)
    assert result.lines >= 0
    for step, _, name, value in result.points:
        assert step is None or step >= 0
        assert isinstance(name, str) and (value is None or isinstance(value, float))


def test_a_huge_line_is_read_by_its_end_only() -> None:
    line = os.urandom(100_000).replace(b"\n", b" ") + b"\rstep 3 loss=0.5\n"
    assert _points(line.decode("latin-1")) in ([(3, "loss", 0.5)], [])
    assert parse_stdout(line, 0).points == [(3, None, "loss", 0.5)]
