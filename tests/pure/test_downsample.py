"""Downsampling of metric curves to a plot's width."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from nsml_hpc.catalog.downsample import finite_points, lttb, minmax


def test_short_curves_are_returned_unchanged() -> None:
    assert minmax([0, 1, 2], [3.0, 2.0, 1.0], 10) == ([0, 1, 2], [3.0, 2.0, 1.0])


def test_minmax_keeps_at_most_two_points_per_bucket_and_every_spike() -> None:
    xs = list(range(100_000))
    ys = [math.sin(x / 1000) for x in xs]
    ys[12_345] = 50.0
    ys[77_777] = -50.0
    out_x, out_y = minmax(xs, ys, 200)
    assert len(out_x) <= 400
    assert max(out_y) == 50.0 and min(out_y) == -50.0
    assert out_x == sorted(out_x)
    assert out_x[0] == 0


def test_minmax_of_a_constant_x_keeps_the_extremes() -> None:
    out_x, out_y = minmax([5.0] * 100, [float(i % 7) for i in range(100)], 3)
    assert sorted(out_y) == [0.0, 6.0]
    assert out_x == [5.0, 5.0]


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10_000),
            st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        ),
        min_size=1,
        max_size=500,
    ),
    st.integers(min_value=1, max_value=50),
)
def test_minmax_preserves_the_global_range(pairs: list[tuple[int, float]], buckets: int) -> None:
    xs, ys = finite_points([p[0] for p in pairs], [p[1] for p in pairs])
    out_x, out_y = minmax(xs, ys, buckets)
    assert len(out_x) <= max(2 * buckets, len(xs))
    assert min(out_y) == min(ys) and max(out_y) == max(ys)
    assert set(zip(out_x, out_y, strict=True)) <= set(zip(xs, ys, strict=True))


def test_finite_points_drops_gaps_and_sorts_by_x() -> None:
    assert finite_points([3, None, 1, 2], [1.0, 2.0, None, 4.0]) == ([2.0, 3.0], [4.0, 1.0])


def test_lttb_keeps_the_requested_count_with_both_ends() -> None:
    rng = random.Random(1)
    xs = list(range(1000))
    ys = [rng.random() for _ in xs]
    out_x, _out_y = lttb(xs, ys, 50)
    assert len(out_x) == 50
    assert (out_x[0], out_x[-1]) == (0, 999)
    assert out_x == sorted(out_x)


def test_lttb_of_few_points_is_a_copy() -> None:
    assert lttb([1, 2], [3.0, 4.0], 10) == ([1, 2], [3.0, 4.0])
