"""Small-sample statistics for comparing arms over a handful of seeds, on scipy.stats.

With 1-5 seeds per arm a mean says little without its spread, so everything here carries
a Student-t interval. A seed draws the same population in every arm, so arms are compared
per seed (paired differences, contrasts, McNemar on per-question correctness), which
removes the between-population variance that would swamp an unpaired comparison; Holm
adjusts the family of pre-registered tests, and the minimum detectable effect and the
equivalence check let a null result say what it rules out.

Quantiles, intervals, correlations and tests come from scipy.stats. Hand-written is only
what scipy lacks: Holm's step-down (scipy.stats.false_discovery_control does Benjamini-
Hochberg/Yekutieli only), the Fisher-z interval of Spearman's rho with the 1.06 / (n - 3)
variance (scipy's Fisher-z interval is Pearson's, 1 / (n - 3)), the minimum detectable
effect (scipy.stats.power simulates; this is the closed form) and the one-sample t from
mean_std (see _one_sample_t).
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats as _st

NAN = float("nan")


def mean_std(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); the std of one value is 0.0."""
    if len(xs) == 0:
        return NAN, NAN
    mean = statistics.fmean(xs)
    if len(xs) == 1:
        return mean, 0.0
    return mean, float(statistics.stdev(xs))


def t_interval(xs: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean; one value (or no spread) gives (x, x)."""
    n = len(xs)
    if n == 0:
        return NAN, NAN
    mean, std = mean_std(xs)
    if n == 1 or std == 0.0:
        return mean, mean
    low, high = _st.t.interval(confidence, n - 1, loc=mean, scale=std / math.sqrt(n))
    return float(low), float(high)


def welch_interval(
    xs: Sequence[float], ys: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """mean(xs) - mean(ys) and its Welch t-interval (unequal variances); needs >= 2 each.

    For values that are not paired by seed. When a seed draws the same population in both
    arms, `paired_difference` is the sharper (and the right) comparison. No spread on
    either side gives (diff, diff, diff), where scipy's interval would be nan.
    """
    if len(xs) < 2 or len(ys) < 2:
        raise ValueError("the interval of a difference needs at least 2 values on each side")
    (mx, sx), (my, sy) = mean_std(xs), mean_std(ys)
    diff = mx - my
    if sx == 0.0 and sy == 0.0:
        return diff, diff, diff
    with warnings.catch_warnings():  # near-constant input: scipy warns, the interval stands
        warnings.simplefilter("ignore")
        ci = _st.ttest_ind(xs, ys, equal_var=False).confidence_interval(confidence)
    return diff, float(ci.low), float(ci.high)


def _check_paired(name: str, xs: Sequence[float], ys: Sequence[float]) -> None:
    if len(xs) != len(ys):
        raise ValueError(f"{name} needs paired values, got {len(xs)} and {len(ys)}")


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson's r; nan when there are fewer than 2 points or a side has no variance."""
    _check_paired("pearson", xs, ys)
    if len(xs) < 2 or min(xs) == max(xs) or min(ys) == max(ys):
        return NAN
    with warnings.catch_warnings():  # near-constant input: scipy warns, r is still defined
        warnings.simplefilter("ignore")
        r = float(_st.pearsonr(xs, ys).statistic)
    return max(-1.0, min(1.0, r)) if math.isfinite(r) else NAN


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rho (Pearson's r on average ranks, so ties are handled); nan as pearson."""
    _check_paired("spearman", xs, ys)
    if len(xs) < 2 or min(xs) == max(xs) or min(ys) == max(ys):
        return NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(_st.spearmanr(xs, ys).statistic)
    return max(-1.0, min(1.0, rho)) if math.isfinite(rho) else NAN


def spearman_interval(rho: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Confidence interval of Spearman's rho by Fisher's z with Fieller, Hartley and Pearson's
    variance 1.06 / (n - 3) (Biometrika 1957); (nan, nan) below 4 points or for a nan rho."""
    if n < 4 or not math.isfinite(rho):
        return NAN, NAN
    z = math.atanh(max(-0.999999, min(0.999999, rho)))
    half = float(_st.norm.ppf(0.5 + confidence / 2.0)) * math.sqrt(1.06 / (n - 3))
    return math.tanh(z - half), math.tanh(z + half)


@dataclass(frozen=True)
class PairedResult:
    """Mean of per-seed differences (or contrasts), its t interval, sample sd, n and p."""

    mean: float
    low: float
    high: float
    sd: float
    n: int
    p: float


def _one_sample_t(ds: Sequence[float], confidence: float) -> PairedResult:
    """Student-t interval and two-sided p (H0: mean 0) of per-seed values ds.

    The same statistic as scipy.stats.ttest_1samp(ds, 0), computed from mean_std so that a
    near-constant ds gives its (tiny) p without scipy's catastrophic-cancellation warning.
    """
    n = len(ds)
    if n == 0:
        return PairedResult(NAN, NAN, NAN, NAN, 0, NAN)
    mean, sd = mean_std(ds)
    if n < 2:
        return PairedResult(mean, NAN, NAN, NAN, n, NAN)
    if sd == 0.0:
        return PairedResult(mean, mean, mean, 0.0, n, 0.0 if mean != 0.0 else 1.0)
    se = sd / math.sqrt(n)
    low, high = _st.t.interval(confidence, n - 1, loc=mean, scale=se)
    p = 2.0 * float(_st.t.sf(abs(mean / se), n - 1))
    return PairedResult(mean, float(low), float(high), sd, n, min(1.0, p))


def contrast(
    values_by_arm: Mapping[str, Sequence[float]],
    weights: Mapping[str, float],
    confidence: float = 0.95,
) -> PairedResult:
    """Per-seed linear contrast sum_a w_a * x[a][s], with its t interval and p over seeds.

    Computing the contrast within each seed (e.g. the interaction FS - F - S + P) cancels
    what a seed's population shares across arms. Arms without a weight are ignored; every
    weighted arm needs the same number of seeds, listed in the same seed order.
    """
    if not weights:
        raise ValueError("contrast needs at least one weighted arm")
    missing = [arm for arm in weights if arm not in values_by_arm]
    if missing:
        raise ValueError(f"contrast weights name arms with no values: {missing}")
    arms = list(weights)
    n = len(values_by_arm[arms[0]])
    for arm in arms[1:]:
        if len(values_by_arm[arm]) != n:
            raise ValueError(
                f"arm {arm!r} has {len(values_by_arm[arm])} seeds, arm {arms[0]!r} has {n}"
            )
    ds = [math.fsum(weights[a] * values_by_arm[a][s] for a in arms) for s in range(n)]
    return _one_sample_t(ds, confidence)


def paired_difference(
    xs: Sequence[float], ys: Sequence[float], confidence: float = 0.95
) -> PairedResult:
    """mean(x_i - y_i) over seeds i, its t interval and paired t-test p.

    Valid because seed i draws the same population in both arms; the between-seed variance
    cancels, so a consistent per-seed difference shows even when populations differ a lot.
    """
    _check_paired("paired_difference", xs, ys)
    return _one_sample_t([x - y for x, y in zip(xs, ys, strict=True)], confidence)


@dataclass(frozen=True)
class McNemarResult:
    """Discordant counts b (A right, B wrong) and c (A wrong, B right), n pairs, exact p."""

    b: int
    c: int
    n: int
    p: float


def mcnemar(pairs: Sequence[tuple[bool, bool]]) -> McNemarResult:
    """Exact McNemar test on per-question correctness (A, B) of two arms on the same questions.

    Only discordant questions carry information; p is the two-sided binomial test of b out of
    b + c at 0.5, and 1.0 when no question is discordant.
    """
    b = sum(1 for a_ok, b_ok in pairs if a_ok and not b_ok)
    c = sum(1 for a_ok, b_ok in pairs if b_ok and not a_ok)
    p = float(_st.binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    return McNemarResult(b, c, len(pairs), p)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in input order (compare each to alpha directly).

    Controls the family-wise error of the pre-registered tests without assuming independence.
    NaN stays NaN and does not count toward the family size m.
    """
    order = sorted((i for i, p in enumerate(pvalues) if not math.isnan(p)), key=pvalues.__getitem__)
    m = len(order)
    adjusted = [NAN] * len(pvalues)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))  # monotone in the sorted order
        adjusted[i] = running
    return adjusted


def min_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean paired difference a two-sided paired t-test on n seeds detects.

    The standard approximation (t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n), with sd
    the sd of the per-seed differences: it says which effects a null result could have missed.
    NaN for n < 2 or a non-finite sd.
    """
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0):
        raise ValueError(f"need 0 < alpha < 1 and 0 < power < 1, got {alpha} and {power}")
    if n < 2 or not math.isfinite(sd):
        return NAN
    t_sum = float(_st.t.ppf(1.0 - alpha / 2.0, n - 1)) + float(_st.t.ppf(power, n - 1))
    return t_sum * sd / math.sqrt(n)


def equivalence(low: float, high: float, bound: float) -> bool:
    """Whether the CI lies inside (-bound, +bound): an effect above `bound` is ruled out.

    This is what lets a null read as evidence of absence rather than absence of evidence.
    NaN anywhere gives False.
    """
    return -bound < low and high < bound


def verdict(
    result: PairedResult,
    support: float,
    bound: float,
    p_adjusted: float | None = None,
    alpha: float = 0.05,
) -> str:
    """One of "supported", "refuted" or "inconclusive" for a pre-registered prediction.

    The prediction is a positive effect (orient the difference or contrast so). "supported":
    mean >= support, (p_adjusted, else p) < alpha and low > 0; "refuted": the CI lies in
    (-bound, bound), so an effect larger than `bound` is ruled out; else "inconclusive", as
    for any NaN input. Supported is checked first; with support >= bound the two cannot both
    hold. "uninformative" (a failed validity gate) is the caller's decision, never made here.
    """
    p = result.p if p_adjusted is None else p_adjusted
    numbers = (result.mean, result.low, result.high, p, support, bound, alpha)
    if any(math.isnan(v) for v in numbers):
        return "inconclusive"
    if result.mean >= support and p < alpha and result.low > 0:
        return "supported"
    if equivalence(result.low, result.high, bound):
        return "refuted"
    return "inconclusive"
