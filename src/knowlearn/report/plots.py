"""PNG plots of an experiment: QA per arm, per attribute, training curves, probe vs QA, groups.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so making a report
never opens a window, never switches a global backend, and works on a headless machine.
Every plot takes plain numbers (not run directories), returns the PNG path, and writes it
atomically. The same arm keeps the same colour in every plot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

from knowlearn.io import atomic_open
from knowlearn.report.stats import mean_std, pearson, spearman, t_interval

DPI = 120
EM_LABEL = "held-out QA exact match (%)"


def arm_colors(arms: Sequence[str]) -> dict[str, Any]:
    """One colour per arm, stable across plots (tab10, or tab20 beyond 10 arms)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(arms) <= 10 else "tab20"]
    return {arm: cmap(i % cmap.N) for i, arm in enumerate(arms)}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


SHORT_CURVE = 20  # points: a curve with no more is drawn with markers
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _bar_with_seeds(
    ax,
    x: float,
    vals: list[float],
    color,
    *,
    dot: float,
    dot_lw: float,
    err_lw: float | None = None,
) -> tuple[float, float, float]:
    """One arm's bar: the mean, its t-interval (2+ seeds) and every seed as a dot."""
    mean, lo, hi = _interval(vals)
    ax.bar(x, mean, width=0.65, color=color, alpha=0.8, edgecolor="black", lw=0.6)
    if len(vals) >= 2:
        ax.errorbar(
            x,
            mean,
            yerr=[[mean - lo], [hi - mean]],
            color="black",
            capsize=5,
            **({"lw": err_lw} if err_lw else {}),
        )
    ax.scatter(
        [x + d for d in _jitter(len(vals))],
        vals,
        s=dot,
        color="white",
        edgecolor="black",
        lw=dot_lw,
        zorder=3,
    )
    return mean, lo, hi


def _interval(vals: Sequence[float]) -> tuple[float, float, float]:
    mean = mean_std(vals)[0]
    lo, hi = t_interval(vals) if len(vals) >= 2 else (mean, mean)
    return mean, lo, hi


def _jitter(n: int) -> list[float]:
    """Offsets for seed dots: right of the whisker, so no dot sits where the mean is drawn."""
    return [0.17] if n <= 1 else [0.12 + 0.14 * i / (n - 1) for i in range(n)]


def _ylim_top(values: Sequence[float]) -> float:
    top = max([v for v in values if math.isfinite(v)], default=0.0)
    return min(105.0, max(10.0, top * 1.18 + 2.0))


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.2f}"


def qa_em_per_arm(
    values: Mapping[str, Sequence[float]],
    path: str | Path,
    baseline: str | None = None,
    colors: Mapping[str, Any] | None = None,
) -> Path:
    """Bars of mean held-out EM per arm, 95% t-interval whiskers, seeds as dots."""
    arms = [a for a, v in values.items() if v]
    colors = colors or arm_colors(arms)
    fig = _figure(max(6.0, 1.0 + 1.1 * len(arms)), 4.6)
    ax = fig.add_subplot()
    tops: list[float] = []
    for i, arm in enumerate(arms):
        vals = list(values[arm])
        mean, lo, hi = _bar_with_seeds(ax, i, vals, colors[arm], dot=22, dot_lw=0.8, err_lw=1.2)
        top = max([hi, *vals])
        ax.annotate(
            f"{mean:.1f}",
            (i, top),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            fontsize=9,
        )
        tops.append(top + 4)
    handles = [Line2D([], [], marker="o", ls="", mfc="white", mec="black", label="one seed")]
    if any(len(values[a]) >= 2 for a in arms):
        handles.append(
            Line2D([], [], color="black", marker="_", ms=10, label="95% t-interval (>= 2 seeds)")
        )
    if baseline in values and values[baseline]:
        base = mean_std(list(values[baseline]))[0]
        ax.axhline(base, color="grey", ls="--", lw=1.2)
        handles.append(Line2D([], [], color="grey", ls="--", label=f"baseline mean ({base:.1f}%)"))
    ax.set_xticks(
        range(len(arms)),
        arms,
        rotation=25 if len(arms) > 4 else 0,
        ha="right" if len(arms) > 4 else "center",
    )
    ax.set_xlim(-0.6, len(arms) - 0.4)
    ax.set_ylim(0, _ylim_top(tops))
    ax.set_ylabel(EM_LABEL)
    ax.set_xlabel("arm")
    n_seeds = sorted({len(values[a]) for a in arms})
    seeds = "/".join(str(n) for n in n_seeds)
    ax.set_title(f"Held-out QA exact match per arm ({seeds} seed{'s' if n_seeds != [1] else ''})")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if len(arms) > 5:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    else:
        ax.legend(handles=handles, loc="upper left", fontsize=8)
    return _save(fig, path)


def per_attribute(
    means: Mapping[str, Mapping[str, float]],
    path: str | Path,
    colors: Mapping[str, Any] | None = None,
) -> Path:
    """Grouped bars: held-out EM per attribute (x), one bar per arm."""
    arms = [a for a, m in means.items() if m]
    attrs: list[str] = []
    for arm in arms:
        attrs += [k for k in means[arm] if k not in attrs]
    colors = colors or arm_colors(arms)
    fig = _figure(max(7.0, 1.2 + len(attrs) * (0.45 + 0.18 * len(arms))), 4.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(arms))
    for j, arm in enumerate(arms):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(attrs))]
        ys = [means[arm].get(a, float("nan")) for a in attrs]
        ax.bar(xs, ys, width=width, color=colors[arm], label=arm, edgecolor="black", lw=0.4)
    ax.set_xticks(range(len(attrs)), [a.replace("_", " ") for a in attrs])
    ax.set_ylabel(EM_LABEL)
    ax.set_xlabel("attribute")
    ax.set_ylim(0, _ylim_top([v for m in means.values() for v in m.values()]))
    ax.set_title("Held-out QA exact match per attribute (mean over seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if len(arms) > 4:
        ax.legend(title="arm", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    else:
        ax.legend(title="arm", fontsize=8)
    return _save(fig, path)


def training_curves(
    curves: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
    path: str | Path,
    colors: Mapping[str, Any] | None = None,
    note: str = "",
) -> Path:
    """Training loss vs optimizer step: CPT (documents) left, IT (QA) right; log scale."""
    arms = [a for a, c in curves.items() if any(c.values())]
    colors = colors or arm_colors(arms)
    fig = _figure(12.0, 4.4)
    titles = {"cpt": "CPT: loss on documents", "it": "IT: loss on training QA (answer tokens)"}
    for k, stage in enumerate(("cpt", "it")):
        ax = fig.add_subplot(1, 2, k + 1)
        for arm in arms:
            pts = list(curves[arm].get(stage) or [])
            if pts:
                # A short run logs a few points; a lone point draws no line, so mark them.
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    color=colors[arm],
                    label=arm,
                    lw=1.5,
                    marker="o" if len(pts) <= SHORT_CURVE else None,
                    ms=4,
                )
        if any(p[1] > 0 for arm in arms for p in curves[arm].get(stage) or []):
            ax.set_yscale("log")
            plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.1, 1, 4 rather than 4x10^0
            ax.yaxis.set_major_formatter(plain)
            lo, hi = ax.get_ylim()
            ax.yaxis.set_minor_formatter(plain if hi / lo < 15 else NullFormatter())
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss (nats/token, log scale)")
        ax.set_title(titles[stage] + (f" {note}" if note else ""), fontsize=10)
        ax.grid(alpha=0.3, which="major")
        ax.grid(alpha=0.08, which="minor")
    handles, labels = fig.axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = fig.axes[1].get_legend_handles_labels()
    if handles:
        fig.axes[1].legend(
            handles, labels, title="arm", loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8
        )
    return _save(fig, path)


def probe_vs_qa(
    points: Sequence[tuple[str, int, float, float]],
    path: str | Path,
    colors: Mapping[str, Any] | None = None,
    xlabel: str = "probe accuracy after CPT, held-out templates (%)",
) -> Path:
    """Scatter of (arm, seed, probe %, held-out EM %) with Pearson r, Spearman rho and n."""
    arms: list[str] = []
    for arm, *_ in points:
        if arm not in arms:
            arms.append(arm)
    colors = colors or arm_colors(arms)
    fig = _figure(6.8, 4.8)
    ax = fig.add_subplot()
    for k, arm in enumerate(arms):
        pts = [(x, y) for a, _, x, y in points if a == arm]
        # Arms often land on the same point (0 % EM, a saturated probe): each arm gets its
        # own shape, drawn smaller than the one before, so a point under another shows.
        ax.scatter(
            [p[0] for p in pts],
            [p[1] for p in pts],
            color=colors[arm],
            label=arm,
            s=max(90 - 12 * k, 16),
            marker=MARKERS[k % len(MARKERS)],
            edgecolor="black",
            lw=0.5,
            alpha=0.85,
            zorder=2 + k,
        )
    xs, ys = [p[2] for p in points], [p[3] for p in points]
    r, rho = pearson(xs, ys), spearman(xs, ys)
    ax.set_title(
        f"Probe vs held-out QA: Pearson r = {_fmt(r)}, Spearman ρ = {_fmt(rho)}, n = {len(points)}",
        fontsize=10,
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(EM_LABEL)
    ax.grid(alpha=0.3)
    ax.legend(title="arm", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(fig, path)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _sweep(ax, entries: Sequence[tuple[str, Any, Sequence[float]]], param: str) -> list[float]:
    """A numeric param: mean EM vs value as a line with 95% whiskers, seeds as dots; the
    tops of what was drawn (for the y limit)."""
    entries = sorted(entries, key=lambda e: e[1])
    values = [float(e[1]) for e in entries]
    span = (values[-1] - values[0]) or 1.0
    crowded = any(b - a < 0.05 * span for a, b in zip(values, values[1:], strict=False))
    # Values bunched at one end (rho 0, 0.01, 0.05, 0.2): evenly spaced, labelled by value.
    xs = [float(i) for i in range(len(values))] if crowded else values
    stats = [_interval(list(e[2])) for e in entries]
    dx = 0.02 * ((max(xs) - min(xs)) or 1.0)  # seed dots just right of the mean
    ax.errorbar(
        xs,
        [s[0] for s in stats],
        yerr=[[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]],
        color="tab:blue",
        marker="o",
        capsize=5,
        lw=1.5,
        label="mean (95% t-interval)",
    )
    tops: list[float] = []
    for (arm, _, vals), x, (_, _, hi) in zip(entries, xs, stats, strict=True):
        ax.scatter(
            [x + dx] * len(vals), vals, s=18, color="white", edgecolor="black", lw=0.7, zorder=3
        )
        ax.annotate(
            arm,
            (x, max(hi, *vals)),
            xytext=(0, 5),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
        tops.append(max(hi, *vals) + 6)
    ax.set_xlabel(param + (" (evenly spaced)" if crowded else ""))
    ax.set_xticks(xs, [f"{v:g}" for v in values])
    return tops


def _ablation(
    ax,
    entries: Sequence[tuple[str, Any, Sequence[float]]],
    param: str,
    colors: Mapping[str, Any],
) -> list[float]:
    """A non-numeric param: one bar per arm with its seeds; the tops of what was drawn."""
    tops: list[float] = []
    for i, (arm, _, vals) in enumerate(entries):
        mean, lo, hi = _bar_with_seeds(ax, i, list(vals), colors[arm], dot=18, dot_lw=0.7)
        ax.annotate(
            f"{mean:.1f}",
            (i, max(hi, *vals)),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            fontsize=9,
        )
        tops.append(max(hi, *vals) + 4)
    tilt = len(entries) > 4 or max(len(e[0]) for e in entries) > 12
    ax.set_xticks(
        range(len(entries)),
        [e[0] for e in entries],
        rotation=25 if tilt else 0,
        ha="right" if tilt else "center",
    )
    ax.set_xlabel(f"arm (varies {param})")
    return tops


def group_plot(
    name: str,
    param: str,
    entries: Sequence[tuple[str, Any, Sequence[float]]],
    path: str | Path,
    baseline_mean: float | None = None,
    colors: Mapping[str, Any] | None = None,
) -> Path:
    """A sweep (numeric param: EM vs value, line with 95% whiskers) or an ablation (bars by arm).

    `entries` are (arm, param value from the arm's config, held-out EM per seed).
    """
    entries = [e for e in entries if e[2]]
    colors = colors or arm_colors([e[0] for e in entries])
    numeric = bool(entries) and all(_is_number(e[1]) for e in entries)
    fig = _figure(max(6.0, 1.0 + 1.0 * len(entries)), 4.4)
    ax = fig.add_subplot()
    tops = _sweep(ax, entries, param) if numeric else _ablation(ax, entries, param, colors)
    if baseline_mean is not None and math.isfinite(baseline_mean):
        ax.axhline(
            baseline_mean,
            color="grey",
            ls="--",
            lw=1.2,
            label=f"baseline mean ({baseline_mean:.1f}%)",
        )
    ax.set_ylim(0, _ylim_top(tops))
    ax.set_ylabel(EM_LABEL)
    ax.set_title(f"{name}: held-out QA exact match vs {param}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)
