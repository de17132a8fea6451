"""`knowlearn report EXP_DIR`: report.md, results.json and plots/ from run directories only.

The report reads what runs wrote (results.json, metrics.jsonl, config.yaml) and nothing
else, so it can be made again at any time, also while an experiment is still running:
runs without results.json are listed as incomplete, never guessed. Comparisons with the
baseline follow one rule, stated in the report: an arm "beats" or "is below" the baseline
only when the 95% interval of the difference of means excludes 0.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from knowlearn.io import write_json, write_text
from knowlearn.report import diagnostics
from knowlearn.report.claims import decide
from knowlearn.report.claims import render as render_prereg
from knowlearn.report.stats import (
    mean_std,
    paired_difference,
    pearson,
    spearman,
    t_interval,
    welch_interval,
)
from knowlearn.results import METRICS, metric

NAN = float("nan")
CONFIDENCE = 0.95
PROBE_X = "probe after_cpt templates"  # the paper's probe: held-out templates, after CPT

# ---------------------------------------------------------------- reading


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _read_curve(path: Path) -> list[tuple[float, float]]:
    """(step, loss) rows of a metrics.jsonl; a torn last line (run in progress) is skipped."""
    pts: list[tuple[float, float]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return pts
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        step, loss = _num(_get(row, "step")), _num(_get(row, "loss"))
        if step is not None and loss is not None:
            pts.append((step, loss))
    return pts


def _status(run_dir: Path) -> str:
    """Where an incomplete run stands, from its training logs."""
    if not run_dir.is_dir():
        return "not started"
    for stage in ("it", "cpt"):
        log = run_dir / stage / "metrics.jsonl"
        if log.is_file():
            lines = [x for x in log.read_text(encoding="utf-8").splitlines() if x.strip()]
            for line in reversed(lines):
                try:
                    row = json.loads(line)
                    return f"{stage} step {row['step']}/{row['total']}, loss {row['loss']:.3f}"
                except (ValueError, KeyError, TypeError):
                    continue
            return f"{stage} started"
    return "no results.json"


def _seed_dirs(arm_dir: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if arm_dir.is_dir():
        for p in arm_dir.iterdir():
            m = re.fullmatch(r"seed(\d+)", p.name)
            if m and p.is_dir():
                out[int(m.group(1))] = p
    return out


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def collect(exp_dir: str | Path) -> dict[str, Any]:
    """Everything the report needs from an experiment directory, read defensively.

    Returns {"dir", "experiment", "arms" (ordered), "baseline", "runs": [one per (arm, seed)]};
    each run has "arm", "seed", "path" (relative), "complete", "status", "results",
    "config" and "curves" ({"cpt"/"it": [(step, loss)]}).
    """
    exp_dir = Path(exp_dir)
    exp = _read_json(exp_dir / "experiment.json")
    exp = exp if isinstance(exp, dict) else {}
    arms_dir = exp_dir / "arms"
    found = sorted(p.name for p in arms_dir.iterdir() if p.is_dir()) if arms_dir.is_dir() else []
    declared = list(exp["arms"]) if isinstance(exp.get("arms"), dict) else []
    if declared:
        arms = declared + [a for a in found if a not in declared]
    else:
        arms = sorted(found, key=lambda a: (a != "baseline", a))
    seeds = [s for s in exp.get("seeds") or [] if isinstance(s, int)]
    runs: list[dict[str, Any]] = []
    for arm in arms:
        dirs = _seed_dirs(arms_dir / arm)
        for seed in sorted(set(dirs) | set(seeds)):
            run_dir = dirs.get(seed, arms_dir / arm / f"seed{seed}")
            results = _read_json(run_dir / "results.json")
            # A results.json without QA metrics ({} from a crash, an edit) is no result.
            complete = isinstance(results, dict) and isinstance(results.get("qa"), dict)
            config = _read_yaml(run_dir / "config.yaml")
            if not isinstance(config, dict):
                config = _read_yaml(arms_dir / arm / f"seed{seed}.yaml")
            runs.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "path": run_dir.relative_to(exp_dir).as_posix(),
                    "complete": complete,
                    "status": "complete"
                    if complete
                    else (
                        "results.json holds no QA results (damaged?)"
                        if (run_dir / "results.json").is_file()
                        else _status(run_dir)
                    ),
                    "results": results if complete else None,
                    "config": config if isinstance(config, dict) else None,
                    "curves": {
                        s: _read_curve(run_dir / s / "metrics.jsonl") for s in ("cpt", "it")
                    },
                }
            )
    baseline = "baseline" if "baseline" in arms else (arms[0] if arms else None)
    return {
        "dir": str(exp_dir),
        "experiment": exp,
        "arms": arms,
        "baseline": baseline,
        "runs": runs,
    }


# ---------------------------------------------------------------- aggregating


def _summary(values: list[float | None]) -> dict[str, Any]:
    xs = [v for v in values if v is not None]
    mean, std = mean_std(xs)
    ci = list(t_interval(xs, CONFIDENCE)) if len(xs) >= 2 else None  # no interval from 1 seed
    return {"n": len(xs), "mean": mean, "std": std, "ci": ci, "values": values}


def _verdict(diff: float, lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return "few_seeds"
    if lo > 0:
        return "beats"
    if hi < 0:
        return "below"
    return "within_noise"


def _delta(
    arm_em: list[float],
    base_em: list[float],
    paired: tuple[dict[int, float], dict[int, float]] | None = None,
) -> dict[str, Any] | None:
    """Arm minus baseline: paired over seeds when a seed is a population (the same people in
    both arms), else Welch's unpaired interval."""
    if not arm_em or not base_em:
        return None
    if paired is not None:
        a, b = paired
        seeds = sorted(a.keys() & b.keys())
        if len(seeds) >= 2:
            r = paired_difference([a[s] for s in seeds], [b[s] for s in seeds], CONFIDENCE)
            return {
                "diff": r.mean,
                "ci": [r.low, r.high],
                "verdict": _verdict(r.mean, r.low, r.high),
                "paired": True,
            }
    if len(arm_em) >= 2 and len(base_em) >= 2:
        diff, lo, hi = welch_interval(arm_em, base_em, CONFIDENCE)
        return {"diff": diff, "ci": [lo, hi], "verdict": _verdict(diff, lo, hi)}
    diff = mean_std(arm_em)[0] - mean_std(base_em)[0]
    return {"diff": diff, "ci": None, "verdict": "few_seeds"}


def _description(exp: dict[str, Any], arm: str) -> str:
    desc = _get(exp, "descriptions", arm)
    if isinstance(desc, str) and desc.strip():
        return desc.strip()
    overrides = _flat(_get(exp, "arms", arm))
    text = ", ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items())
    return text if len(text) <= 120 else text[:117] + "..."


def _correlation(points: list[dict[str, Any]], x_name: str) -> dict[str, Any]:
    """Pooled over (arm, seed) points, and split into between arms (arm means) and within
    arms (deviations from each arm's mean, pooled): a pooled r can come from a few arms
    that differ in both, while the paper's claim is also about runs of one recipe."""
    xs, ys = [p["x"] for p in points], [p["y"] for p in points]
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        by_arm.setdefault(p["arm"], []).append(p)
    means = {
        a: (mean_std([p["x"] for p in ps])[0], mean_std([p["y"] for p in ps])[0])
        for a, ps in by_arm.items()
    }
    dx = [p["x"] - means[p["arm"]][0] for p in points]
    dy = [p["y"] - means[p["arm"]][1] for p in points]
    mx, my = [m[0] for m in means.values()], [m[1] for m in means.values()]
    return {
        "x": x_name,
        "y": "test EM",
        "n": len(points),
        "pearson": pearson(xs, ys) if len(points) >= 2 else NAN,
        "spearman": spearman(xs, ys) if len(points) >= 2 else NAN,
        "between_arms": {"n": len(means), "pearson": pearson(mx, my) if len(means) >= 2 else NAN},
        "within_arms": {"n": len(points), "pearson": pearson(dx, dy) if len(points) >= 2 else NAN},
        "points": points,
    }


def _param_value(runs: list[dict[str, Any]], key: str) -> Any:
    for run in runs:
        cfg = run["config"]
        if cfg is None:
            continue
        node: Any = cfg
        for k in key.split("."):
            if not isinstance(node, dict) or k not in node:
                node = None
                break
            node = node[k]
        return node
    return None


def aggregate(data: dict[str, Any]) -> dict[str, Any]:
    """Per-arm means, spreads and intervals; deltas vs baseline; the probe correlation."""
    exp, baseline = data["experiment"], data["baseline"]
    by_arm = {a: [r for r in data["runs"] if r["arm"] == a] for a in data["arms"]}
    arms: dict[str, dict[str, Any]] = {}
    for arm, runs in by_arm.items():
        done = [r for r in runs if r["complete"]]
        entry: dict[str, Any] = {
            "description": _description(exp, arm),
            "seeds": [r["seed"] for r in done],
            "n_seeds": len(done),
            "n_runs": len(runs),
            "incomplete": [r["seed"] for r in runs if not r["complete"]],
        }
        for key, path in METRICS.items():
            entry[key] = _summary([_num(_get(r["results"], *path)) for r in done])
        attrs: list[str] = []
        for r in done:
            attrs += [
                a for a in _get(r["results"], "qa", "test") or {} if a != "all" and a not in attrs
            ]
        per_attr: dict[str, dict[str, float]] = {}
        for attr in attrs:
            cols = {
                "test_em": ("qa", "test", attr, "em"),
                "train_em": ("qa", "train", attr, "em"),
                "memorization_after_cpt": ("memorization_after_cpt", attr, "acc"),
                "memorization_after_it": ("memorization", attr, "acc"),
                "probe_after_cpt_templates": ("probe", "after_cpt", "templates", attr, "acc"),
            }
            row: dict[str, float] = {}
            for name, path in cols.items():
                xs = [v for r in done if (v := _num(_get(r["results"], *path))) is not None]
                if xs:
                    row[name] = mean_std(xs)[0]
            per_attr[attr] = row
        entry["per_attribute"] = per_attr
        arms[arm] = entry
    base_em = _em_values(arms.get(baseline)) if baseline else []
    by_seed = {
        a: {
            r["seed"]: v
            for r in runs
            if r["complete"] and (v := metric(r["results"], "test_em")) is not None
        }
        for a, runs in by_arm.items()
    }
    for arm, entry in arms.items():
        pair = (by_seed[arm], by_seed[baseline]) if exp.get("population_seeds") else None
        entry["delta_vs_baseline"] = (
            None if arm == baseline else _delta(_em_values(entry), base_em, pair)
        )
    points: dict[str, list[dict[str, Any]]] = {k: [] for k in METRICS if k.startswith("probe_")}
    for r in data["runs"]:
        if not r["complete"]:
            continue
        y = _num(_get(r["results"], *METRICS["test_em"]))
        for key in points:
            x = _num(_get(r["results"], *METRICS[key]))
            if x is not None and y is not None:
                points[key].append({"arm": r["arm"], "seed": r["seed"], "x": x, "y": y})
    groups: dict[str, dict[str, Any]] = {}
    for name, group in (exp.get("groups") or {}).items():
        if not isinstance(group, dict):
            continue
        param = str(group.get("param", ""))
        members = [a for a in group.get("arms") or [] if a in by_arm]
        groups[name] = {
            "param": param,
            "arms": [
                {
                    "arm": a,
                    "value": _param_value(by_arm[a], param) if param else None,
                    "test_em": arms[a]["test_em"],
                }
                for a in members
            ],
            "missing_arms": [a for a in group.get("arms") or [] if a not in by_arm],
        }
    return {
        "prereg": decide(data, exp),
        "population_seeds": bool(exp.get("population_seeds")),
        "experiment": Path(data["dir"]).name,
        "command": exp.get("command"),
        "machine": exp.get("machine"),
        "baseline": baseline,
        "confidence": CONFIDENCE,
        "arms": arms,
        "correlation": _correlation(points["probe_after_cpt_templates"], PROBE_X),
        "correlations_other": {
            _probe_name(k): _correlation(v, _probe_name(k))
            for k, v in points.items()
            if k != "probe_after_cpt_templates" and v
        },
        "groups": groups,
        "incomplete": [
            {"arm": r["arm"], "seed": r["seed"], "path": r["path"], "status": r["status"]}
            for r in data["runs"]
            if not r["complete"]
        ],
    }


def _probe_name(key: str) -> str:
    """probe_after_cpt_formats -> "probe after_cpt formats" (as the correlation block names it)."""
    when, what = key.removeprefix("probe_").rsplit("_", 1)
    return f"probe {when} {what}"


def _em_values(entry: dict[str, Any] | None) -> list[float]:
    if not entry:
        return []
    return [v for v in entry["test_em"]["values"] if v is not None]


# ---------------------------------------------------------------- writing


def _f(x: Any, digits: int = 1, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _em_cell(s: dict[str, Any]) -> str:
    if s["n"] == 0:
        return "–"
    if s["n"] == 1:
        return f"{_f(s['mean'])} (1 seed)"
    return f"{_f(s['mean'])} ± {_f(s['std'])} [{_f(s['ci'][0])}, {_f(s['ci'][1])}]"


def _delta_cell(d: dict[str, Any] | None, is_baseline: bool) -> str:
    if is_baseline:
        return "(baseline)"
    if d is None:
        return "–"
    if d["ci"] is None:
        return _f(d["diff"], sign=True)
    return f"{_f(d['diff'], sign=True)} [{_f(d['ci'][0], sign=True)}, {_f(d['ci'][1], sign=True)}]"


def _int_cell(s: dict[str, Any]) -> str:
    return "–" if s["n"] == 0 else f"{s['mean']:,.0f}"


def _ppl_cell(e: dict[str, Any]) -> str:
    """Reference perplexity of the starting model, then of the trained one (means)."""
    before, after = e["reference_ppl_before"]["mean"], e["reference_ppl_after"]["mean"]
    return "–" if _f(after) == "–" else f"{_f(before, 2)} → {_f(after, 2)}"


def main_table(agg: dict[str, Any]) -> str:
    """The headline table: one row per arm, means over seeds."""
    pct = int(agg["confidence"] * 100)
    head = (
        f"| arm | seeds | held-out QA EM (%) mean ± std [{pct}% CI] | Δ vs baseline (points) [{pct}% CI] "
        "| train QA EM (%) | memorization after CPT / after IT (%) "
        "| probe after CPT: templates / formats (%) "
        "| retained QA (%) | reference ppl before → after | CPT tokens "
        "| CPT steps | wall (s) |"
    )
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for arm, e in agg["arms"].items():
        seeds = str(e["n_seeds"]) if not e["incomplete"] else f"{e['n_seeds']} of {e['n_runs']}"
        probe = " / ".join(
            _f(e[k]["mean"]) for k in ("probe_after_cpt_templates", "probe_after_cpt_formats")
        ).replace("– / –", "–")
        lines.append(
            f"| {arm} | {seeds} | {_em_cell(e['test_em'])} "
            f"| {_delta_cell(e['delta_vs_baseline'], arm == agg['baseline'])} "
            f"| {_f(e['train_em']['mean'])} "
            f"| {_f(e['memorization_after_cpt']['mean'])} / {_f(e['memorization_after_it']['mean'])} "
            f"| {probe} | {_f(e['retention_em']['mean'])} | {_ppl_cell(e)} "
            f"| {_int_cell(e['cpt_tokens'])} "
            f"| {_int_cell(e['cpt_steps'])} | {_int_cell(e['seconds'])} |"
        )
    return "\n".join(lines)


def verdict_sentence(arm: str, entry: dict[str, Any], agg: dict[str, Any]) -> str:
    """One plain sentence comparing an arm's held-out EM with the baseline's."""
    base = agg["baseline"]
    desc = f" ({entry['description']})" if entry["description"] else ""
    if arm == base:
        s = entry["test_em"]
        if s["n"] == 0:
            return f"**{arm}**{desc} is the reference, but none of its runs is complete."
        return (
            f"**{arm}**{desc} is the reference: held-out QA EM {_f(s['mean'])}% "
            f"over {s['n']} seed{'s' if s['n'] != 1 else ''}."
        )
    d = entry["delta_vs_baseline"]
    if d is None:
        why = (
            "it has no complete run"
            if not entry["test_em"]["n"]
            else "the baseline has no complete run"
        )
        return f"**{arm}**{desc}: no comparison ({why})."
    diff = d["diff"]
    if d["verdict"] == "few_seeds":
        na, nb = entry["test_em"]["n"], agg["arms"][base]["test_em"]["n"]
        seeds = "one seed" if na == nb == 1 else f"{na} vs {nb} seeds"
        return (
            f"**{arm}**{desc}: {seeds}: difference {_f(diff, sign=True)} points; "
            "under ~5 points is noise at this scale."
        )
    lo, hi = d["ci"]
    ci = f"[{_f(lo, sign=True)}, {_f(hi, sign=True)}]"
    if d["verdict"] == "beats":
        return f"**{arm}**{desc} beats the baseline by {_f(diff)} points (CI of the difference {ci} excludes 0)."
    if d["verdict"] == "below":
        return f"**{arm}**{desc} is below the baseline by {_f(-diff)} points (CI of the difference {ci} excludes 0)."
    return f"**{arm}**{desc} is within noise of the baseline (difference {_f(diff, sign=True)}, CI {ci} includes 0)."


def _correlation_sentence(c: dict[str, Any]) -> str:
    if c["n"] == 0:
        return f"No run has the {c['x']} numbers, so there is no probe-vs-QA correlation."
    if c["n"] < 3:
        return f"Only {c['n']} (arm, seed) point(s) have both {c['x']} and test EM: too few for a correlation."
    text = (
        f"Across n = {c['n']} (arm, seed) points, {c['x']} vs held-out QA EM: "
        f"Pearson r = {_f(c['pearson'], 2)}, Spearman ρ = {_f(c['spearman'], 2)}."
    )
    between, within = c.get("between_arms"), c.get("within_arms")
    if between and within and between["n"] >= 3:
        text += (
            f" Between arms (the {between['n']} arm means): r = {_f(between['pearson'], 2)}; "
            f"within arms (each run's deviation from its arm's mean, pooled): "
            f"r = {_f(within['pearson'], 2)}."
        )
    return text


def _machine_text(machine: Any) -> str:
    if isinstance(machine, dict):
        return ", ".join(f"{k}: {v}" for k, v in machine.items())
    return str(machine)


def _per_attribute_table(agg: dict[str, Any]) -> str:
    attrs: list[str] = []
    for e in agg["arms"].values():
        attrs += [a for a in e["per_attribute"] if a not in attrs]
    if not attrs:
        return ""
    head = "| arm | " + " | ".join(a.replace("_", " ") for a in attrs) + " |"
    lines = [head, "|---" * (len(attrs) + 1) + "|"]
    for arm, e in agg["arms"].items():
        if e["n_seeds"]:
            cells = [_f(e["per_attribute"].get(a, {}).get("test_em")) for a in attrs]
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "group"


def _curves(runs: list[dict[str, Any]], stage: str) -> tuple[list[tuple[float, float]], int]:
    """Mean loss over seeds at the steps every seed logged (seed 0 alone if they differ)."""
    series = [r["curves"][stage] for r in runs if r["curves"][stage]]
    if not series:
        return [], 0
    common = set.intersection(*(set(s for s, _ in pts) for pts in series))
    if len(series) > 1 and len(common) >= 2:
        by_step = [dict(pts) for pts in series]
        return [(s, mean_std([d[s] for d in by_step])[0]) for s in sorted(common)], len(series)
    return series[0], 1


def make_plots(
    data: dict[str, Any], agg: dict[str, Any], plot_dir: Path, skip: tuple[str, ...] = ()
) -> dict[str, Path]:
    """Every plot that has data, but those named in `skip`; {name: path}. Needs matplotlib."""
    from knowlearn.report import plots

    colors = plots.arm_colors(data["arms"])
    out: dict[str, Path] = {}
    em = {a: _em_values(e) for a, e in agg["arms"].items() if _em_values(e)}
    if em:
        if "qa_em" not in skip:
            out["qa_em"] = plots.qa_em_per_arm(em, plot_dir / "qa_em.png", agg["baseline"], colors)
        attr_means = {
            a: {
                k: v["test_em"]
                for k, v in agg["arms"][a]["per_attribute"].items()
                if "test_em" in v
            }
            for a in em
        }
        if any(attr_means.values()) and "per_attribute" not in skip:
            out["per_attribute"] = plots.per_attribute(
                attr_means, plot_dir / "per_attribute.png", colors
            )
    curves: dict[str, dict[str, list[tuple[float, float]]]] = {}
    curve_colors: dict[str, Any] = {}
    n_max = 0
    for arm in data["arms"]:
        runs = [r for r in data["runs"] if r["arm"] == arm]
        done = [r for r in runs if r["complete"]]
        label = arm if done else f"{arm} (incomplete)"
        curves[label], curve_colors[label] = {}, colors[arm]
        for stage in ("cpt", "it"):
            curves[label][stage], n = _curves(done or runs, stage)
            n_max = max(n_max, n)
    if any(any(c.values()) for c in curves.values()):
        note = f"(mean of {n_max} seeds)" if n_max > 1 else ""
        out["training_curves"] = plots.training_curves(
            curves, plot_dir / "training_curves.png", curve_colors, note
        )
    corr = agg["correlation"]
    if corr["n"] >= 2 and "probe_vs_qa" not in skip:
        pts = [(p["arm"], p["seed"], p["x"], p["y"]) for p in corr["points"]]
        out["probe_vs_qa"] = plots.probe_vs_qa(pts, plot_dir / "probe_vs_qa.png", colors)
    base = agg["arms"].get(agg["baseline"] or "", {}).get("test_em", {}).get("mean")
    for name, g in agg["groups"].items():
        entries = [
            (m["arm"], m["value"], [v for v in m["test_em"]["values"] if v is not None])
            for m in g["arms"]
        ]
        if any(e[2] for e in entries):
            out[f"group_{name}"] = plots.group_plot(
                name,
                g["param"] or "arm",
                entries,
                plot_dir / f"group_{_slug(name)}.png",
                base if base is not None and math.isfinite(base) else None,
                colors,
            )
    return out


PLOT_CAPTIONS = {
    "qa_em": "Held-out QA exact match per arm: bars are means, whiskers 95% t-intervals, dots single seeds; dashed line: baseline mean.",
    "per_attribute": "Held-out QA exact match per attribute (mean over seeds).",
    "training_curves": "Training loss vs optimizer step, CPT (left) and IT (right).",
    "probe_vs_qa": "Probe accuracy after CPT (held-out templates) vs held-out QA exact match, one point per (arm, seed).",
}


def plots_section(
    plots: dict[str, Path], captions: dict[str, str], root: Path, note: str
) -> list[str]:
    """ "## Plots": each plot made, captioned, linked relative to `root` (where report.md is)."""
    md = ["## Plots", ""] + ([note] if note else [])
    for key, caption in captions.items():
        if key in plots:
            md += [caption, "", f"![{key}]({plots[key].relative_to(root).as_posix()})", ""]
    return md


def render_markdown(
    agg: dict[str, Any],
    plots: dict[str, Path],
    exp_dir: Path,
    plots_note: str = "",
    sections: list[str] = (),
) -> str:
    """report.md: tables, one honest sentence per arm, correlation, plots, incomplete runs."""
    n_done = sum(e["n_seeds"] for e in agg["arms"].values())
    total_s = sum(
        math.fsum(v for v in e["seconds"]["values"] if v is not None) for e in agg["arms"].values()
    )
    md = [f"# Report: {agg['experiment']}", ""]
    md.append(
        f"{len(agg['arms'])} arm(s), {n_done} complete run(s), {len(agg['incomplete'])} incomplete; "
        f"{total_s:,.0f} s of run wall time in total (summed over runs). "
        f"Made by `knowlearn report {exp_dir}` from the run directories only."
    )
    if agg.get("command"):
        md += ["", f"Command: `{agg['command']}`"]
    if agg.get("machine"):
        md += ["", f"Machine: {_machine_text(agg['machine'])}"]
    pct = int(agg["confidence"] * 100)
    if agg.get("prereg"):
        md += ["", render_prereg(agg["prereg"])]
    md += [
        "",
        "## Held-out QA per arm",
        "",
        "Held-out QA EM: exact match on questions about people whose QA was never trained on "
        f"(the generalization the paper is about). Mean ± sample std over seeds, [{pct}% Student-t "
        f"interval]. Δ: arm mean − baseline mean, [{pct}% interval of the difference: "
        + (
            "paired over seeds, since each seed draws its own people for every arm"
            if agg.get("population_seeds")
            else "Welch's, unpaired"
        )
        + "] when both arms have ≥ 2 seeds. Memorization: teacher-forced accuracy of the fact tokens in the "
        "training documents. Probe: teacher-forced fact accuracy after CPT in contexts never "
        "trained on (held-out paraphrase templates / held-out formats) of the same people. "
        "Retained QA: of the questions the starting model answered (the base population's, or "
        "`data.retention`), the share the trained model still answers; reference ppl: "
        "perplexity on text no stage trained on, before and after (what the model forgot). "
        "Tokens, steps and wall time: means per run.",
        "",
        main_table(agg),
        "",
        "## Compared with the baseline",
        "",
        f"Rule: an arm beats (or is below) the baseline only when the {pct}% interval of the "
        "difference excludes 0.",
        "",
    ]
    md += [f"- {verdict_sentence(arm, e, agg)}" for arm, e in agg["arms"].items()]
    table = _per_attribute_table(agg)
    if table:
        md += ["", "## Held-out QA EM per attribute (%, mean over seeds)", "", table]
    md += ["", "## Probe vs held-out QA", "", _correlation_sentence(agg["correlation"])]
    for c in agg["correlations_other"].values():
        if c["n"] >= 3:
            md.append(
                f"- {c['x']}: Pearson r = {_f(c['pearson'], 2)}, Spearman ρ = {_f(c['spearman'], 2)}, n = {c['n']}."
            )
    for name, g in agg["groups"].items():
        md += ["", f"## Group: {name} (varies `{g['param']}`)", ""]
        md += [f"| arm | {g['param']} | held-out QA EM (%) |", "|---|---|---|"]
        for m in g["arms"]:
            value = json.dumps(m["value"])
            if m["value"] == [] and g["param"].endswith(".transforms"):
                value = "[] (all)"  # an empty transform list draws from every transform
            md.append(f"| {m['arm']} | {value} | {_em_cell(m['test_em'])} |")
        if g["missing_arms"]:
            md += [
                "",
                f"Arms named in the group but absent from the runs: {', '.join(g['missing_arms'])}.",
            ]
        if f"group_{name}" in plots:
            md += ["", f"![{name}]({plots[f'group_{name}'].relative_to(exp_dir).as_posix()})"]
    for section in sections:
        md += ["", section]
    md += ["", *plots_section(plots, PLOT_CAPTIONS, exp_dir, plots_note)]
    md += ["## Incomplete runs", ""]
    if agg["incomplete"]:
        md += [f"- `{r['path']}`: {r['status']}" for r in agg["incomplete"]]
    else:
        md.append("None: every run has its results.json.")
    return "\n".join(md).rstrip() + "\n"


def write_report(exp_dir: str | Path) -> Path:
    """Write EXP/report.md, EXP/results.json and EXP/plots/*.png; return report.md's path."""
    exp_dir = Path(exp_dir)
    data = collect(exp_dir)
    agg = aggregate(data)
    note = ""
    try:
        plot_paths = make_plots(data, agg, exp_dir / "plots")
    except ImportError:
        plot_paths = {}
        note = "Plots skipped: matplotlib is not installed (`pip install 'knowlearn[report]'`)."
    agg["plots"] = {k: p.relative_to(exp_dir).as_posix() for k, p in plot_paths.items()}
    write_json(exp_dir / "results.json", agg)  # strict JSON: write_json writes NaN as null
    path = exp_dir / "report.md"
    sections = diagnostics.render(data, data["arms"])
    write_text(path, render_markdown(agg, plot_paths, exp_dir, note, sections))
    return path
