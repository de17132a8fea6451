"""Small-sample statistics for comparing arms over a handful of seeds, in pure Python.

With 1-5 seeds per arm, a mean without its spread says little: these give the sample
standard deviation, Student-t intervals (exact quantiles, so fractional Welch degrees of
freedom work too), the Welch interval of a difference of means, and Pearson/Spearman
correlations. scipy is used for the t quantile when it is installed, never required.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

NAN = float("nan")


def mean_std(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); the std of one value is 0.0."""
    n = len(xs)
    if n == 0:
        return NAN, NAN
    mean = math.fsum(xs) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` (possibly fractional) degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t value with P(T <= t) = p (scipy when installed, else bisection on the CDF)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p}, df={df}")
    try:
        from scipy.stats import t as student_t  # type: ignore[import-not-found]

        return float(student_t.ppf(p, df))
    except ImportError:
        pass
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


def t_interval(xs: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean; one value gives (x, x)."""
    n = len(xs)
    if n == 0:
        return NAN, NAN
    mean, std = mean_std(xs)
    if n == 1 or std == 0.0:
        return mean, mean
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return mean - half, mean + half


def welch_interval(
    xs: Sequence[float], ys: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """mean(xs) - mean(ys) and its Welch t-interval (unequal variances); needs >= 2 each.

    Unpaired on purpose: arms share seed numbers, but a seed drives different batches in
    different arms, so pairing by seed would claim a correlation nobody measured.
    """
    if len(xs) < 2 or len(ys) < 2:
        raise ValueError("the interval of a difference needs at least 2 values on each side")
    (mx, sx), (my, sy) = mean_std(xs), mean_std(ys)
    diff = mx - my
    vx, vy = sx * sx / len(xs), sy * sy / len(ys)
    se2 = vx + vy
    if se2 == 0.0:
        return diff, diff, diff
    df = se2 * se2 / (vx * vx / (len(xs) - 1) + vy * vy / (len(ys) - 1))
    half = t_quantile(0.5 + confidence / 2.0, df) * math.sqrt(se2)
    return diff, diff - half, diff + half


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson's r; nan when there are fewer than 2 points or a side has no variance."""
    if len(xs) != len(ys):
        raise ValueError(f"pearson needs paired values, got {len(xs)} and {len(ys)}")
    n = len(xs)
    if n < 2:
        return NAN
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    dx, dy = [x - mx for x in xs], [y - my for y in ys]
    sxx, syy = math.fsum(d * d for d in dx), math.fsum(d * d for d in dy)
    denom = math.sqrt(sxx) * math.sqrt(syy)  # not sqrt(sxx * syy), which can underflow to 0
    if denom == 0.0:
        return NAN
    r = math.fsum(a * b for a, b in zip(dx, dy, strict=True)) / denom
    return max(-1.0, min(1.0, r))


def rank(xs: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the average of the ranks they span."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rho: Pearson's r on average ranks (so ties are handled)."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs paired values, got {len(xs)} and {len(ys)}")
    return pearson(rank(xs), rank(ys))
