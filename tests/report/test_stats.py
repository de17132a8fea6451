import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowlearn.report.stats import (
    mean_std,
    pearson,
    rank,
    spearman,
    t_interval,
    t_quantile,
    welch_interval,
)


def test_mean_std_uses_the_sample_std_and_zero_for_one_value():
    assert mean_std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == pytest.approx(
        (5.0, math.sqrt(32 / 7))
    )
    assert mean_std([3.5]) == (3.5, 0.0)


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.7062),
        (0.975, 2, 4.3027),
        (0.975, 4, 2.7764),
        (0.975, 10, 2.2281),
        (0.975, 30, 2.0423),
        (0.975, 1000, 1.9623),
        (0.995, 10, 3.1693),
        (0.95, 3, 2.3534),
    ],
)
def test_t_quantile_matches_the_printed_table(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-4)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=1e-4)


def test_t_quantile_takes_fractional_degrees_of_freedom():
    assert t_quantile(0.975, 4) > t_quantile(0.975, 4.5) > t_quantile(0.975, 5)


def test_t_interval_by_hand():
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445: half-width 2.776445 * sqrt(2.5) / sqrt(5)
    lo, hi = t_interval([1, 2, 3, 4, 5])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert (lo, hi) == pytest.approx((3 - half, 3 + half), abs=1e-5)
    assert t_interval([7.0]) == (7.0, 7.0)


def test_welch_interval_of_two_equal_spreads():
    # std 2 each, n 3 each: se^2 = 8/3, Welch df = 4 exactly
    diff, lo, hi = welch_interval([30, 32, 34], [10, 12, 14])
    half = 2.776445 * math.sqrt(8 / 3)
    assert (diff, lo, hi) == pytest.approx((20, 20 - half, 20 + half), abs=1e-5)
    with pytest.raises(ValueError):
        welch_interval([1.0], [1.0, 2.0])


def test_pearson_on_fixed_numbers():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(pearson([1.0], [2.0]))
    assert math.isnan(pearson([1, 2, 3], [5, 5, 5]))


def test_rank_averages_ties():
    assert rank([10, 20, 20, 30]) == [1, 2.5, 2.5, 4]
    assert rank([3, 1, 3, 3]) == [3, 1, 3, 3]


def test_spearman_with_ties_by_hand():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]: r = 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)


values = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=3, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(
    st.data(),
    values,
    st.floats(min_value=0.1, max_value=10),
    st.floats(min_value=-50, max_value=50),
)
def test_pearson_is_bounded_symmetric_and_affine_invariant(data, xs, a, b):
    ys = data.draw(
        st.lists(
            st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
            min_size=len(xs),
            max_size=len(xs),
        )
    )
    r = pearson(xs, ys)
    if math.isnan(r):
        return
    spread = max(xs) - min(xs)
    if spread < 1e-3 * max(1.0, max(abs(x) for x in xs)):
        return  # near-constant: rounding dominates an affine map
    assert -1.0 <= r <= 1.0
    assert pearson(ys, xs) == pytest.approx(r, abs=1e-9)
    assert pearson([a * x + b for x in xs], ys) == pytest.approx(r, abs=1e-6)
    assert -1.0 <= spearman(xs, ys) <= 1.0
