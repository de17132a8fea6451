"""Decide the pre-registered gates and claims of an experiment from its run directories.

Every arm of one seed answers the same people (population seeds), so each claim is a
per-seed contrast with a paired t interval; two-arm claims also get McNemar's test on the
per-question outcomes pooled over seeds. The primary claims are Holm-corrected together.
A claim is "supported", "refuted" (an effect above its bound is ruled out), "inconclusive",
or "uninformative" when a validity gate failed; the minimum detectable effect says what a
null could have seen.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from knowlearn.eval.metrics import exact_match
from knowlearn.experiment.prereg import (
    Claim,
    Correlation,
    Gate,
    parse_claims,
    parse_correlations,
    parse_gates,
)
from knowlearn.report.stats import (
    contrast,
    holm,
    mcnemar,
    min_detectable_effect,
    spearman,
    spearman_interval,
    verdict,
)
from knowlearn.results import metric

PENDING = "pending"  # not enough complete seeds to decide
UNINFORMATIVE = "uninformative"


def _values(data: dict[str, Any], name: str) -> dict[str, dict[int, float]]:
    """arm -> seed -> the metric, over complete runs."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for run in data["runs"]:
        value = metric(run["results"], name) if run["complete"] else None
        if value is not None and math.isfinite(value):
            out[run["arm"]][run["seed"]] = value
    return out


def _aligned(
    values: dict[str, dict[int, float]], arms: dict[str, float]
) -> tuple[list[int], dict[str, list[float]]]:
    """The seeds every arm of the contrast has, and each arm's values in that seed order."""
    seeds = sorted(set.intersection(*(set(values.get(a, {})) for a in arms)))
    return seeds, {a: [values[a][s] for s in seeds] for a in arms}


def _gate(data: dict[str, Any], gate: Gate) -> dict[str, Any]:
    seeds, table = _aligned(_values(data, gate.metric), gate.arms)
    if not seeds:
        return {"status": PENDING, "mean": None, "n": 0, **_spec(gate)}
    mean = sum(sum(w * table[a][i] for a, w in gate.arms.items()) for i in range(len(seeds)))
    mean /= len(seeds)
    ok = (gate.min is None or mean >= gate.min) and (gate.max is None or mean <= gate.max)
    return {"status": "pass" if ok else "fail", "mean": mean, "n": len(seeds), **_spec(gate)}


def _spec(item: Gate | Claim | Correlation) -> dict[str, Any]:
    return {k: v for k, v in item.__dict__.items()}


def _outcomes(run_dir: Path) -> dict[str, bool]:
    """question id -> exact match, for the held-out questions of one run."""
    path = run_dir / "predictions.jsonl"
    if not path.is_file():
        return {}
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return {
        r["id"]: exact_match(r["prediction"], r["answer"]) for r in rows if r["split"] == "test"
    }


def _mcnemar(data: dict[str, Any], claim: Claim, seeds: list[int]) -> dict[str, Any] | None:
    """Pooled per-question test for a two-arm claim (weights +1 and -1) on held-out EM."""
    if claim.metric != "test_em" or sorted(claim.arms.values()) != [-1.0, 1.0]:
        return None
    a = next(k for k, w in claim.arms.items() if w > 0)
    b = next(k for k, w in claim.arms.items() if w < 0)
    exp_dir = Path(data["dir"])
    dirs = {(r["arm"], r["seed"]): exp_dir / r["path"] for r in data["runs"]}
    pairs: list[tuple[bool, bool]] = []
    for seed in seeds:
        oa, ob = _outcomes(dirs[(a, seed)]), _outcomes(dirs[(b, seed)])
        pairs += [(oa[q], ob[q]) for q in sorted(oa.keys() & ob.keys())]
    if not pairs:
        return None
    res = mcnemar(pairs)
    return {"b": res.b, "c": res.c, "n": res.n, "p": res.p}


def _claim(data: dict[str, Any], claim: Claim, alpha: float) -> dict[str, Any]:
    seeds, table = _aligned(_values(data, claim.metric), claim.arms)
    if len(seeds) < 2:
        return {"verdict": PENDING, "n": len(seeds), "seeds": seeds, **_spec(claim)}
    res = contrast(table, claim.arms)
    return {
        "n": res.n,
        "seeds": seeds,
        "mean": res.mean,
        "ci": [res.low, res.high],
        "sd": res.sd,
        "p": res.p,
        "mde": min_detectable_effect(res.sd, res.n, alpha=alpha),
        "per_seed": [sum(w * table[a][i] for a, w in claim.arms.items()) for i in range(res.n)],
        "mcnemar": _mcnemar(data, claim, seeds),
        "_result": res,
        **_spec(claim),
    }


def _correlation(data: dict[str, Any], corr: Correlation, confidence: float) -> dict[str, Any]:
    """Spearman's rho of x and y over complete runs, pooled and within arms, with intervals;
    the verdict is filled in by decide()."""
    xs, ys = _values(data, corr.x), _values(data, corr.y)
    points = [(a, xs[a][s], ys[a][s]) for a in xs for s in sorted(xs[a]) if s in ys.get(a, {})]
    if len(points) < 4:
        return {"n": len(points), "pooled": None, "within": None, **_spec(corr)}
    by_arm: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for a, x, y in points:
        by_arm[a].append((x, y))
    mean = {
        a: (sum(x for x, _ in v) / len(v), sum(y for _, y in v) / len(v)) for a, v in by_arm.items()
    }
    dx = [x - mean[a][0] for a, x, _ in points]
    dy = [y - mean[a][1] for a, _, y in points]

    def summary(u: list[float], v: list[float]) -> dict[str, Any]:
        rho = spearman(u, v)
        return {"rho": rho, "ci": list(spearman_interval(rho, len(u), confidence))}

    return {
        "n": len(points),
        "pooled": summary([p[1] for p in points], [p[2] for p in points]),
        "within": summary(dx, dy) if len(by_arm) < len(points) else None,
        **_spec(corr),
    }


def _correlation_verdict(c: dict[str, Any]) -> str:
    """supported: rho >= min pooled and within arms; refuted: an interval lies wholly below
    min; else inconclusive (pending below 4 runs)."""
    parts = [c[k] for k in ("pooled", "within") if c.get(k)]
    if not parts or any(not math.isfinite(p["rho"]) for p in parts):
        return PENDING
    if all(p["rho"] >= c["min"] for p in parts) and len(parts) == 2:
        return "supported"
    if any(math.isfinite(p["ci"][1]) and p["ci"][1] < c["min"] for p in parts):
        return "refuted"
    return "inconclusive"


def decide(data: dict[str, Any], exp: dict[str, Any]) -> dict[str, Any] | None:
    """Gates and claims of `exp` (experiment.json) decided on `data` (report.collect);
    None when the experiment pre-registered nothing."""
    if not exp.get("gates") and not exp.get("claims") and not exp.get("correlations"):
        return None
    arms = list(exp.get("arms") or data["arms"])
    source = Path(data["dir"]) / "experiment.json"
    gates = {
        n: _gate(data, g) for n, g in parse_gates(exp.get("gates") or {}, arms, source).items()
    }
    alpha = float(exp.get("alpha", 0.05))
    claims = {
        n: _claim(data, c, alpha)
        for n, c in parse_claims(exp.get("claims") or {}, arms, source).items()
    }
    correlations = {
        n: _correlation(data, c, 1 - alpha)
        for n, c in parse_correlations(exp.get("correlations") or {}, source).items()
    }
    informative = all(g["status"] == "pass" for g in gates.values())
    failed = [n for n, g in gates.items() if g["status"] == "fail"]
    for c in correlations.values():
        c["verdict"] = (
            UNINFORMATIVE if failed else _correlation_verdict(c) if informative else PENDING
        )
    primary = [n for n, c in claims.items() if c["primary"] and "_result" in c]
    adjusted = dict(zip(primary, holm([claims[n]["p"] for n in primary]), strict=True))
    for name, c in claims.items():
        res = c.pop("_result", None)
        c["p_holm"] = adjusted.get(name)
        if res is None:
            continue
        if failed:
            c["verdict"] = UNINFORMATIVE
        elif not informative:
            c["verdict"] = PENDING
        else:
            c["verdict"] = verdict(res, c["support"], c["bound"], adjusted.get(name), alpha)
    return {
        "alpha": alpha,
        "informative": informative,
        "failed_gates": failed,
        "gates": gates,
        "claims": claims,
        "correlations": correlations,
        "prior_em": prior_em(data),
    }


def prior_em(data: dict[str, Any]) -> dict[str, float]:
    """EM in % of always answering an attribute's most common QA-train answer, per attribute:
    the floor a model reaches without knowing any held-out person (from one run's predictions)."""
    exp_dir = Path(data["dir"])
    for run in data["runs"]:
        path = exp_dir / run["path"] / "predictions.jsonl"
        if run["complete"] and path.is_file():
            rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
            break
    else:
        return {}
    common = {
        attr: Counter(
            r["answer"] for r in rows if r["split"] == "train" and r["attribute"] == attr
        ).most_common(1)[0][0]
        for attr in {r["attribute"] for r in rows if r["split"] == "train"}
    }
    by: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        if r["split"] == "test" and r["attribute"] in common:
            hit = exact_match(common[r["attribute"]], r["answer"])
            by["all"].append(hit)
            by[r["attribute"]].append(hit)
    return {a: 100 * sum(v) / len(v) for a, v in sorted(by.items())}


def _f(x: Any, digits: int = 1, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _rho(part: dict[str, Any] | None) -> str:
    if not part:
        return "n/a"
    lo, hi = part["ci"]
    return f"{_f(part['rho'], 2)} [{_f(lo, 2)}, {_f(hi, 2)}]"


def _contrast_text(arms: dict[str, float]) -> str:
    parts = []
    for i, (arm, w) in enumerate(arms.items()):
        sign = "-" if w < 0 else ("+" if i else "")
        mag = "" if abs(w) == 1 else f"{abs(w):g}·"
        parts.append(f"{sign} {mag}{arm}".strip())
    return " ".join(parts)


def render(decided: dict[str, Any]) -> str:
    """The pre-registered section of report.md: gates, then one row per claim."""
    md = [
        "## Pre-registered verdicts",
        "",
        "Decided by the rules in the experiment config, fixed before the run. Each claim is a "
        "per-seed contrast (every arm of a seed answers the same people): mean [95% paired t "
        f"interval]; p from the paired t test, Holm-adjusted over the primary claims (α = "
        f"{decided['alpha']:g}); MDE: the smallest true effect these seeds detect with 80% power. "
        "supported: mean ≥ the support threshold and adjusted p < α; refuted: the interval lies "
        "inside ±bound (an effect larger than the bound is ruled out); otherwise inconclusive. "
        "If a validity gate fails, every claim is uninformative.",
        "",
        "| gate | contrast | metric | required | seeds | mean | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, g in decided["gates"].items():
        req = " and ".join(
            t
            for t in (
                f"≥ {_f(g['min'])}" if g["min"] is not None else "",
                f"≤ {_f(g['max'])}" if g["max"] is not None else "",
            )
            if t
        )
        md.append(
            f"| {name} | {_contrast_text(g['arms'])} | {g['metric']} | {req} | {g['n']} | "
            f"{_f(g['mean'])} | {g['status']} |"
        )
    md += [
        "",
        "| claim | contrast | support / bound | seeds | mean [95% CI] | p (Holm) | MDE | "
        "McNemar b/c, p | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in decided["claims"].items():
        ci = c.get("ci") or [None, None]
        mc = c.get("mcnemar")
        mc_text = f"{mc['b']}/{mc['c']}, {mc['p']:.3g}" if mc else "n/a"
        p_text = _f(c.get("p"), 3) + (
            f" ({_f(c['p_holm'], 3)})" if c.get("p_holm") is not None else ""
        )
        md.append(
            f"| {name}{' (primary)' if c['primary'] else ''} | {_contrast_text(c['arms'])} | "
            f"{_f(c['support'])} / ±{_f(c['bound'])} | {c['n']} | "
            f"{_f(c.get('mean'), sign=True)} [{_f(ci[0], sign=True)}, {_f(ci[1], sign=True)}] | "
            f"{p_text} | {_f(c.get('mde'))} | {mc_text} | **{c['verdict']}** |"
        )
    if decided.get("correlations"):
        md += [
            "",
            "| correlation | x vs y | required | runs | Spearman pooled [CI] | within arms [CI] "
            "| verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, c in decided["correlations"].items():
            md.append(
                f"| {name} | {c['x']} vs {c['y']} | ρ ≥ {c['min']:.2f} pooled and within | "
                f"{c['n']} | {_rho(c.get('pooled'))} | {_rho(c.get('within'))} | "
                f"**{c['verdict']}** |"
            )
    says = [(n, c["says"]) for n, c in decided["claims"].items() if c.get("says")]
    says += [(n, c["says"]) for n, c in (decided.get("correlations") or {}).items() if c["says"]]
    if says:
        md += ["", *[f"- {n}: {text}" for n, text in says]]
    if decided["prior_em"]:
        prior = ", ".join(f"{a} {v:.1f}" for a, v in decided["prior_em"].items())
        md += ["", f"Prior (the most common QA-train answer, held-out EM %): {prior}."]
    return "\n".join(md)
