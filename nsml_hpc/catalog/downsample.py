"""Downsampling of metric curves to what a plot can show (pure, standard library only).

A terminal plot is a few hundred braille dots wide; drawing a million points would be slow
and no more precise. Two methods:

* :func:`minmax` keeps, for each of ``buckets`` equal slices of the x range, the lowest and
  the highest point, in x order: spikes and the envelope survive exactly (what a plot of all
  points would show at that width), at 2 points per pixel column.
* :func:`lttb` (Largest-Triangle-Three-Buckets, Steinarsson 2013) keeps ``threshold`` points
  that preserve the visual shape; smoother, used where a fixed count matters more than spikes.
"""

from __future__ import annotations

from collections.abc import Sequence

Points = tuple[list[float], list[float]]


def finite_points(xs: Sequence[float | None], ys: Sequence[float | None]) -> Points:
    """The pairs whose x and y are both known (NaN/inf are stored as None), sorted by x."""
    pairs = sorted(
        (float(x), float(y)) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None
    )
    return [x for x, _ in pairs], [y for _, y in pairs]


def minmax(xs: Sequence[float], ys: Sequence[float], buckets: int) -> Points:
    """At most ``2 * buckets`` points: each slice's min and max, in x order. ``xs`` ascending."""
    count = len(xs)
    if buckets <= 0 or count <= 2 * buckets:
        return list(xs), list(ys)
    lo, hi = xs[0], xs[-1]
    span = hi - lo
    if span <= 0:
        low, high = min(range(count), key=ys.__getitem__), max(range(count), key=ys.__getitem__)
        picks = sorted({low, high})
        return [xs[i] for i in picks], [ys[i] for i in picks]
    scale = buckets / span
    out_x: list[float] = []
    out_y: list[float] = []
    current = -1
    low_i = high_i = 0
    for index in range(count):
        bucket = min(int((xs[index] - lo) * scale), buckets - 1)
        if bucket != current:
            if current >= 0:
                _emit(xs, ys, low_i, high_i, out_x, out_y)
            current, low_i, high_i = bucket, index, index
        else:
            value = ys[index]
            if value < ys[low_i]:
                low_i = index
            if value > ys[high_i]:
                high_i = index
    _emit(xs, ys, low_i, high_i, out_x, out_y)
    return out_x, out_y


def _emit(
    xs: Sequence[float],
    ys: Sequence[float],
    low_i: int,
    high_i: int,
    out_x: list[float],
    out_y: list[float],
) -> None:
    for index in sorted({low_i, high_i}):
        out_x.append(xs[index])
        out_y.append(ys[index])


def lttb(xs: Sequence[float], ys: Sequence[float], threshold: int) -> Points:
    """``threshold`` points (first and last kept) with the largest-triangle rule."""
    count = len(xs)
    if threshold >= count or threshold < 3:
        return list(xs), list(ys)
    out_x = [xs[0]]
    out_y = [ys[0]]
    every = (count - 2) / (threshold - 2)
    a = 0
    for i in range(threshold - 2):
        start = int(i * every) + 1
        end = int((i + 1) * every) + 1
        next_start, next_end = end, min(int((i + 2) * every) + 1, count)
        if next_start >= next_end:
            next_start, next_end = count - 1, count
        avg_x = sum(xs[next_start:next_end]) / (next_end - next_start)
        avg_y = sum(ys[next_start:next_end]) / (next_end - next_start)
        ax, ay = xs[a], ys[a]
        best_area = -1.0
        best = start
        for j in range(start, min(end, count - 1)):
            area = abs((ax - avg_x) * (ys[j] - ay) - (ax - xs[j]) * (avg_y - ay))
            if area > best_area:
                best_area, best = area, j
        out_x.append(xs[best])
        out_y.append(ys[best])
        a = best
    out_x.append(xs[-1])
    out_y.append(ys[-1])
    return out_x, out_y
