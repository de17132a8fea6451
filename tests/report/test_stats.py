import math
import warnings

import pytest
import scipy.stats
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from knowlearn.report.stats import (
    McNemarResult,
    PairedResult,
    contrast,
    equivalence,
    holm,
    mcnemar,
    mean_std,
    min_detectable_effect,
    paired_difference,
    pearson,
    spearman,
    t_interval,
    verdict,
    welch_interval,
)

NAN = float("nan")


def test_mean_std_uses_the_sample_std_and_zero_for_one_value():
    assert mean_std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == pytest.approx(
        (5.0, math.sqrt(32 / 7))
    )
    assert mean_std([3.5]) == (3.5, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))


def test_t_interval_by_hand_and_against_scipy():
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445: half-width 2.776445 * sqrt(2.5) / sqrt(5)
    lo, hi = t_interval([1, 2, 3, 4, 5])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert (lo, hi) == pytest.approx((3 - half, 3 + half), abs=1e-5)
    assert (lo, hi) == pytest.approx(scipy.stats.t.interval(0.95, 4, loc=3, scale=0.5**0.5))
    lo99, hi99 = t_interval([1, 2, 3, 4, 5], 0.99)
    assert lo99 < lo and hi < hi99
    assert t_interval([7.0]) == (7.0, 7.0)
    assert t_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert all(math.isnan(v) for v in t_interval([]))


def test_welch_interval_of_two_equal_spreads():
    # std 2 each, n 3 each: se^2 = 8/3, Welch df = 4 exactly
    diff, lo, hi = welch_interval([30, 32, 34], [10, 12, 14])
    half = 2.776445 * math.sqrt(8 / 3)
    assert (diff, lo, hi) == pytest.approx((20, 20 - half, 20 + half), abs=1e-5)
    with pytest.raises(ValueError):
        welch_interval([1.0], [1.0, 2.0])
    assert welch_interval([1.0, 1.0], [0.0, 0.0]) == (1.0, 1.0, 1.0)


def test_welch_interval_with_fractional_df_matches_scipy():
    xs, ys = [1.0, 2.0, 3.0], [2.0, 4.0, 7.0, 5.0]
    diff, lo, hi = welch_interval(xs, ys, 0.9)
    ref = scipy.stats.ttest_ind(xs, ys, equal_var=False).confidence_interval(0.9)
    assert diff == pytest.approx(2.0 - 4.5)
    assert (lo, hi) == pytest.approx((ref.low, ref.high))


def test_welch_interval_is_the_welch_satterthwaite_formula():
    # The formula stats.py computed by hand before it used scipy.stats.ttest_ind: means 2 and
    # 4.5, se^2 = 1/3 + 13/12 = 17/12, df = (17/12)^2 / ((1/3)^2/2 + (13/12)^2/3) = 867/193.
    xs, ys = [1.0, 2.0, 3.0], [2.0, 4.0, 7.0, 5.0]
    for confidence, fixed in ((0.9, -4.959590292985649), (0.95, -5.666609398550854)):
        half = scipy.stats.t.ppf(0.5 + confidence / 2, 867 / 193) * math.sqrt(17 / 12)
        diff, lo, hi = welch_interval(xs, ys, confidence)
        assert (diff, lo, hi) == pytest.approx((-2.5, -2.5 - half, -2.5 + half), rel=1e-12)
        assert lo == pytest.approx(fixed, rel=1e-12)  # the old code's value on this input
    lo, hi = welch_interval([30.5, 31.25, 29.0, 33.0], [10.0, 12.5, 11.0])[1:]
    assert (lo, hi) == pytest.approx((16.9286293021422, 22.613037364524473), rel=1e-12)


def test_pearson_on_fixed_numbers():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(pearson([1.0], [2.0]))
    assert math.isnan(pearson([], []))
    assert math.isnan(pearson([1, 2, 3], [5, 5, 5]))
    assert math.isnan(pearson([5, 5, 5], [1, 2, 3]))
    with pytest.raises(ValueError):
        pearson([1, 2], [1, 2, 3])


def test_spearman_with_ties_by_hand():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]: r = 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)
    assert math.isnan(spearman([1.0], [2.0]))
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1])


# --- paired statistics ---------------------------------------------------------------------

# Populations differ a lot between seeds (10..50) while the arm effect is a steady ~1 per seed.
BASE = [10.0, 20.0, 30.0, 40.0, 50.0]
TREATED = [b + d for b, d in zip(BASE, [1.0, 1.2, 0.8, 1.1, 0.9], strict=True)]


def test_paired_difference_where_pairing_matters():
    r = paired_difference(TREATED, BASE)
    ref = scipy.stats.ttest_rel(TREATED, BASE)
    ci = ref.confidence_interval(0.95)
    # d = [1.0, 1.2, 0.8, 1.1, 0.9]: mean 1, sd = sqrt(0.1 / 4)
    assert r.mean == pytest.approx(1.0)
    assert r.sd == pytest.approx(math.sqrt(0.025))
    assert r.n == 5
    assert r.p == pytest.approx(ref.pvalue)
    assert (r.low, r.high) == pytest.approx((ci.low, ci.high))
    half = 2.776445 * math.sqrt(0.025) / math.sqrt(5)
    assert (r.low, r.high) == pytest.approx((1 - half, 1 + half), abs=1e-5)
    assert r.low > 0  # the paired interval excludes 0 ...
    _, w_lo, w_hi = welch_interval(TREATED, BASE)
    assert w_lo < 0 < w_hi  # ... the unpaired one does not
    assert r.p < 0.001


def test_paired_difference_confidence_level():
    r90, r99 = paired_difference(TREATED, BASE, 0.9), paired_difference(TREATED, BASE, 0.99)
    ci = scipy.stats.ttest_rel(TREATED, BASE).confidence_interval(0.9)
    assert (r90.low, r90.high) == pytest.approx((ci.low, ci.high))
    assert r99.low < r90.low and r90.high < r99.high
    assert r90.p == r99.p


def test_paired_difference_edge_cases():
    r = paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])  # the same difference every seed
    assert r == PairedResult(mean=1.0, low=1.0, high=1.0, sd=0.0, n=3, p=0.0)
    r = paired_difference([1.0, 2.0], [1.0, 2.0])
    assert r == PairedResult(mean=0.0, low=0.0, high=0.0, sd=0.0, n=2, p=1.0)
    one = paired_difference([3.0], [1.0])
    assert one.mean == 2.0 and one.n == 1
    assert math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.p)
    none = paired_difference([], [])
    assert none.n == 0 and math.isnan(none.mean) and math.isnan(none.p)
    with pytest.raises(ValueError, match="2 and 3"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])


def test_paired_difference_is_a_frozen_result():
    r = paired_difference(TREATED, BASE)
    with pytest.raises(AttributeError):
        r.mean = 0.0  # type: ignore[misc]
    assert all(isinstance(v, float) for v in (r.mean, r.low, r.high, r.sd, r.p))


TABLE = {
    "FS": [5.0, 6.0, 7.0],
    "F": [3.0, 3.5, 4.0],
    "S": [2.0, 2.5, 3.5],
    "P": [1.0, 1.0, 1.0],
    "other": [99.0],  # unweighted arms are ignored, whatever their length
}
INTERACTION = {"FS": 1.0, "F": -1.0, "S": -1.0, "P": 1.0}


def test_contrast_interaction_by_hand():
    # per seed: 5-3-2+1 = 1, 6-3.5-2.5+1 = 1, 7-4-3.5+1 = 0.5
    r = contrast(TABLE, INTERACTION)
    assert r.n == 3
    assert r.mean == pytest.approx(2.5 / 3)
    assert r.sd == pytest.approx(math.sqrt(1 / 12))  # deviations 1/6, 1/6, -1/3
    ref = scipy.stats.ttest_1samp([1.0, 1.0, 0.5], 0.0)
    ci = ref.confidence_interval(0.95)
    assert r.p == pytest.approx(ref.pvalue)
    assert (r.low, r.high) == pytest.approx((ci.low, ci.high))
    t = scipy.stats.t.ppf(0.975, 2)
    half = t * math.sqrt(1 / 12) / math.sqrt(3)
    assert (r.low, r.high) == pytest.approx((2.5 / 3 - half, 2.5 / 3 + half))


def test_contrast_of_two_arms_is_the_paired_difference():
    r = contrast({"a": TREATED, "b": BASE}, {"a": 1.0, "b": -1.0})
    ref = paired_difference(TREATED, BASE)
    for field in ("mean", "low", "high", "sd", "p"):
        assert getattr(r, field) == pytest.approx(getattr(ref, field))
    assert r.n == ref.n


def test_contrast_rejects_ragged_or_missing_arms():
    with pytest.raises(ValueError, match="'S'"):
        contrast({**TABLE, "S": [2.0, 2.5]}, INTERACTION)
    with pytest.raises(ValueError, match="FS"):
        contrast({"F": [1.0], "S": [1.0], "P": [1.0]}, INTERACTION)
    with pytest.raises(ValueError):
        contrast(TABLE, {})


def test_mcnemar_eight_against_two():
    pairs = [(True, False)] * 8 + [(False, True)] * 2 + [(True, True)] * 5 + [(False, False)] * 3
    r = mcnemar(pairs)
    # two-sided exact: 2 * P(Bin(10, 1/2) <= 2) = 2 * (1 + 10 + 45) / 1024
    assert r == McNemarResult(b=8, c=2, n=18, p=pytest.approx(0.109375))
    assert r.p == pytest.approx(scipy.stats.binomtest(8, 10, 0.5).pvalue)
    assert mcnemar([(b, a) for a, b in pairs]).p == pytest.approx(r.p)  # symmetric in A, B


def test_mcnemar_without_discordant_pairs():
    assert mcnemar([(True, True), (False, False)]) == McNemarResult(b=0, c=0, n=2, p=1.0)
    assert mcnemar([]) == McNemarResult(b=0, c=0, n=0, p=1.0)


def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_skips_nan():
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    adjusted = holm([0.01, NAN, 0.04])  # m = 2, not 3
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
    assert holm([]) == []
    assert holm([0.2]) == [0.2]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=10))
def test_holm_is_bounded_and_keeps_the_order(ps):
    adjusted = holm(ps)
    assert len(adjusted) == len(ps)
    for p, a in zip(ps, adjusted, strict=True):
        assert p <= a <= 1.0
        assert a <= min(1.0, len(ps) * p) + 1e-15  # never worse than Bonferroni
    for i in range(len(ps)):
        for j in range(len(ps)):
            if ps[i] <= ps[j]:
                assert adjusted[i] <= adjusted[j]


def test_min_detectable_effect_is_the_formula_and_shrinks_with_n():
    # t(0.975, 4) = 2.7764, t(0.80, 4) = 0.9410 (printed table)
    assert min_detectable_effect(1.0, 5) == pytest.approx(
        (2.7764 + 0.9410) / math.sqrt(5), abs=1e-4
    )
    for n in (2, 3, 5, 10):
        expected = (
            (scipy.stats.t.ppf(0.975, n - 1) + scipy.stats.t.ppf(0.8, n - 1)) * 2.5 / math.sqrt(n)
        )
        assert min_detectable_effect(2.5, n) == pytest.approx(expected)
    mdes = [min_detectable_effect(1.0, n) for n in range(2, 30)]
    assert all(a > b for a, b in zip(mdes, mdes[1:], strict=False))
    assert min_detectable_effect(1.0, 5, alpha=0.01) > min_detectable_effect(1.0, 5)
    assert min_detectable_effect(1.0, 5, power=0.9) > min_detectable_effect(1.0, 5)
    assert min_detectable_effect(0.0, 5) == 0.0


def test_min_detectable_effect_with_too_little_data():
    assert math.isnan(min_detectable_effect(1.0, 1))
    assert math.isnan(min_detectable_effect(1.0, 0))
    assert math.isnan(min_detectable_effect(NAN, 5))
    assert math.isnan(min_detectable_effect(math.inf, 5))
    with pytest.raises(ValueError):
        min_detectable_effect(1.0, 5, alpha=0.0)


def test_equivalence():
    assert equivalence(-0.5, 0.5, 1.0)
    assert not equivalence(-0.5, 1.0, 1.0)  # touching the bound does not rule it out
    assert not equivalence(-2.0, 0.5, 1.0)
    assert not equivalence(NAN, 0.5, 1.0)
    assert not equivalence(-0.5, 0.5, NAN)


def _r(mean, low, high, p, n=5):
    return PairedResult(mean=mean, low=low, high=high, sd=1.0, n=n, p=p)


def test_verdict_branches():
    sig = _r(3.0, 1.0, 5.0, 0.01)
    assert verdict(sig, support=2.0, bound=1.0) == "supported"
    assert verdict(sig, support=2.0, bound=1.0, p_adjusted=0.2) == "inconclusive"
    assert verdict(sig, support=2.0, bound=1.0, p_adjusted=0.04) == "supported"
    assert verdict(sig, support=2.0, bound=1.0, alpha=0.001) == "inconclusive"
    assert verdict(sig, support=4.0, bound=1.0) == "inconclusive"  # real but below support
    assert verdict(_r(3.0, 0.0, 6.0, 0.01), support=2.0, bound=1.0) == "inconclusive"  # low = 0
    assert verdict(_r(0.1, -0.4, 0.6, 0.6), support=2.0, bound=1.0) == "refuted"
    assert verdict(_r(-0.1, -0.6, 0.4, 0.6), support=2.0, bound=1.0) == "refuted"
    assert verdict(_r(0.5, -2.0, 3.0, 0.5), support=2.0, bound=1.0) == "inconclusive"
    # significant but small: not supported, yet an effect of `bound` is not ruled out either
    assert verdict(_r(1.0, 0.5, 1.5, 0.001), support=2.0, bound=1.0) == "inconclusive"


def test_verdict_on_nan_is_inconclusive():
    assert verdict(_r(NAN, NAN, NAN, NAN), support=2.0, bound=1.0) == "inconclusive"
    assert verdict(_r(0.1, NAN, NAN, NAN, n=1), support=0.0, bound=1.0) == "inconclusive"
    assert verdict(_r(0.1, -0.4, 0.6, 0.6), support=2.0, bound=1.0, p_adjusted=NAN) == (
        "inconclusive"
    )
    assert verdict(_r(3.0, 1.0, 5.0, 0.01), support=NAN, bound=1.0) == "inconclusive"
    assert verdict(paired_difference([1.0], [0.0]), support=0.5, bound=5.0) == "inconclusive"


def test_verdict_end_to_end():
    assert verdict(paired_difference(TREATED, BASE), support=0.5, bound=0.2) == "supported"
    null = paired_difference(
        [b + d for b, d in zip(BASE, [0.05, -0.05, 0.0, 0.02, -0.02], strict=True)], BASE
    )
    assert verdict(null, support=0.5, bound=0.2) == "refuted"


# --- properties ----------------------------------------------------------------------------

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


small = st.floats(min_value=-100, max_value=100, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.lists(small, min_size=2, max_size=10))
def test_paired_difference_matches_ttest_rel_and_ignores_seed_offsets(data, xs):
    ys = data.draw(st.lists(small, min_size=len(xs), max_size=len(xs)))
    offsets = data.draw(st.lists(small, min_size=len(xs), max_size=len(xs)))
    ds = [x - y for x, y in zip(xs, ys, strict=True)]
    assume(max(ds) - min(ds) > 1e-3)
    r = paired_difference(xs, ys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = scipy.stats.ttest_rel(xs, ys)
    ci = ref.confidence_interval(0.95)
    assert r.p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
    assert (r.low, r.high) == pytest.approx((ci.low, ci.high), rel=1e-6, abs=1e-6)
    assert r.low <= r.mean <= r.high
    # a per-seed offset shared by both arms (the population) leaves the paired result alone
    shifted = paired_difference(
        [x + o for x, o in zip(xs, offsets, strict=True)],
        [y + o for y, o in zip(ys, offsets, strict=True)],
    )
    assert shifted.mean == pytest.approx(r.mean, abs=1e-9)
    assert shifted.p == pytest.approx(r.p, rel=1e-6, abs=1e-9)
