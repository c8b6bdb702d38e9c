"""The upload progress bar: silent for quick uploads and when stderr is no terminal."""

from __future__ import annotations

import io

from nsml_hpc.cli.progress import UploadBar, render_bar


def test_the_bar_shows_the_share_sent_and_the_rate():
    line = render_bar(3 * 2**20, 10 * 2**20, 2.0, width=10)
    assert line == "uploading code [###.......]   3.0/10.0 MiB  1.5 MiB/s"
    assert render_bar(0, 0, 0.0, width=4).startswith("uploading code [####]")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_quick_upload_draws_nothing():
    out, clock = io.StringIO(), Clock()
    bar = UploadBar(out, clock=clock, enabled=True)
    clock.now = 0.2
    bar(100, 100)
    bar.finish()
    assert out.getvalue() == ""


def test_a_slow_upload_draws_after_the_delay_and_ends_its_line():
    out, clock = io.StringIO(), Clock()
    bar = UploadBar(out, clock=clock, enabled=True, delay=0.5, interval=0.1)
    clock.now = 0.6
    bar(10, 100)
    clock.now = 0.65
    bar(20, 100)  # within the redraw interval: skipped
    clock.now = 0.8
    bar(100, 100)
    bar.finish()
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) == 2
    assert frames[-1].endswith("\n") and "100.0" not in frames[0]


def test_no_terminal_no_bar():
    out, clock = io.StringIO(), Clock()
    bar = UploadBar(out, clock=clock)  # StringIO is no terminal
    clock.now = 5
    bar(1, 2)
    bar.finish()
    assert out.getvalue() == ""
