"""report.md from an aggregate: tables, one plain sentence per arm, the probe correlation,
the groups, the plots and the incomplete runs; the third step of a report.

Everything here formats numbers aggregate.py computed and decides nothing, so the markdown
says exactly what results.json holds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from knowlearn.report.claims import render as render_prereg

PLOT_CAPTIONS = {
    "qa_em": "Held-out QA exact match per arm: bars are means, whiskers 95% t-intervals, dots single seeds; dashed line: baseline mean.",
    "per_attribute": "Held-out QA exact match per attribute (mean over seeds).",
    "training_curves": "Training loss vs optimizer step, CPT (left) and IT (right).",
    "probe_vs_qa": "Probe accuracy after CPT (held-out templates) vs held-out QA exact match, one point per (arm, seed).",
}

# ---------------------------------------------------------------- cells


def fmt(x: Any, digits: int = 1, sign: bool = False) -> str:
    """A number with `digits` decimals (and a sign if asked); "–" for None or non-finite."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _em_cell(s: dict[str, Any]) -> str:
    if s["n"] == 0:
        return "–"
    if s["n"] == 1:
        return f"{fmt(s['mean'])} (1 seed)"
    return f"{fmt(s['mean'])} ± {fmt(s['std'])} [{fmt(s['ci'][0])}, {fmt(s['ci'][1])}]"


def _delta_cell(d: dict[str, Any] | None, is_baseline: bool) -> str:
    if is_baseline:
        return "(baseline)"
    if d is None:
        return "–"
    if d["ci"] is None:
        return fmt(d["diff"], sign=True)
    return (
        f"{fmt(d['diff'], sign=True)} [{fmt(d['ci'][0], sign=True)}, {fmt(d['ci'][1], sign=True)}]"
    )


def _int_cell(s: dict[str, Any]) -> str:
    return "–" if s["n"] == 0 else f"{s['mean']:,.0f}"


def _ppl_cell(e: dict[str, Any]) -> str:
    """Reference perplexity of the starting model, then of the trained one (means)."""
    before, after = e["reference_ppl_before"]["mean"], e["reference_ppl_after"]["mean"]
    return "–" if fmt(after) == "–" else f"{fmt(before, 2)} → {fmt(after, 2)}"


# ---------------------------------------------------------------- tables and sentences


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
            fmt(e[k]["mean"]) for k in ("probe_after_cpt_templates", "probe_after_cpt_formats")
        ).replace("– / –", "–")
        lines.append(
            f"| {arm} | {seeds} | {_em_cell(e['test_em'])} "
            f"| {_delta_cell(e['delta_vs_baseline'], arm == agg['baseline'])} "
            f"| {fmt(e['train_em']['mean'])} "
            f"| {fmt(e['memorization_after_cpt']['mean'])} / {fmt(e['memorization_after_it']['mean'])} "
            f"| {probe} | {fmt(e['retention_em']['mean'])} | {_ppl_cell(e)} "
            f"| {_int_cell(e['cpt_tokens'])} "
            f"| {_int_cell(e['cpt_steps'])} | {_int_cell(e['seconds'])} |"
        )
    return "\n".join(lines)


def _baseline_sentence(arm: str, desc: str, entry: dict[str, Any]) -> str:
    s = entry["test_em"]
    if s["n"] == 0:
        return f"**{arm}**{desc} is the reference, but none of its runs is complete."
    return (
        f"**{arm}**{desc} is the reference: held-out QA EM {fmt(s['mean'])}% "
        f"over {s['n']} seed{'s' if s['n'] != 1 else ''}."
    )


def verdict_sentence(arm: str, entry: dict[str, Any], agg: dict[str, Any]) -> str:
    """One plain sentence comparing an arm's held-out EM with the baseline's."""
    base = agg["baseline"]
    desc = f" ({entry['description']})" if entry["description"] else ""
    if arm == base:
        return _baseline_sentence(arm, desc, entry)
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
            f"**{arm}**{desc}: {seeds}: difference {fmt(diff, sign=True)} points; "
            "under ~5 points is noise at this scale."
        )
    lo, hi = d["ci"]
    ci = f"[{fmt(lo, sign=True)}, {fmt(hi, sign=True)}]"
    if d["verdict"] == "beats":
        return f"**{arm}**{desc} beats the baseline by {fmt(diff)} points (CI of the difference {ci} excludes 0)."
    if d["verdict"] == "below":
        return f"**{arm}**{desc} is below the baseline by {fmt(-diff)} points (CI of the difference {ci} excludes 0)."
    return f"**{arm}**{desc} is within noise of the baseline (difference {fmt(diff, sign=True)}, CI {ci} includes 0)."


def _correlation_sentence(c: dict[str, Any]) -> str:
    if c["n"] == 0:
        return f"No run has the {c['x']} numbers, so there is no probe-vs-QA correlation."
    if c["n"] < 3:
        return f"Only {c['n']} (arm, seed) point(s) have both {c['x']} and test EM: too few for a correlation."
    text = (
        f"Across n = {c['n']} (arm, seed) points, {c['x']} vs held-out QA EM: "
        f"Pearson r = {fmt(c['pearson'], 2)}, Spearman ρ = {fmt(c['spearman'], 2)}."
    )
    between, within = c.get("between_arms"), c.get("within_arms")
    if between and within and between["n"] >= 3:
        text += (
            f" Between arms (the {between['n']} arm means): r = {fmt(between['pearson'], 2)}; "
            f"within arms (each run's deviation from its arm's mean, pooled): "
            f"r = {fmt(within['pearson'], 2)}."
        )
    return text


def _machine_text(machine: Any) -> str:
    if isinstance(machine, dict):
        return ", ".join(f"{k}: {v}" for k, v in machine.items())
    return str(machine)


def per_attribute_table(agg: dict[str, Any]) -> str:
    """Held-out EM per attribute, one row per arm with a complete run; "" without attributes."""
    attrs: list[str] = []
    for e in agg["arms"].values():
        attrs += [a for a in e["per_attribute"] if a not in attrs]
    if not attrs:
        return ""
    head = "| arm | " + " | ".join(a.replace("_", " ") for a in attrs) + " |"
    lines = [head, "|---" * (len(attrs) + 1) + "|"]
    for arm, e in agg["arms"].items():
        if e["n_seeds"]:
            cells = [fmt(e["per_attribute"].get(a, {}).get("test_em")) for a in attrs]
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plots_section(
    plots: dict[str, Path], captions: dict[str, str], root: Path, note: str
) -> list[str]:
    """ "## Plots": each plot made, captioned, linked relative to `root` (where report.md is)."""
    md = ["## Plots", ""] + ([note] if note else [])
    for key, caption in captions.items():
        if key in plots:
            md += [caption, "", f"![{key}]({plots[key].relative_to(root).as_posix()})", ""]
    return md


# ---------------------------------------------------------------- report.md, section by section


def _header(agg: dict[str, Any], exp_dir: Path) -> list[str]:
    """Title, what ran and where, and the pre-registered verdicts."""
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
    if agg.get("prereg"):
        md += ["", render_prereg(agg["prereg"])]
    return md


def _per_arm_section(agg: dict[str, Any]) -> list[str]:
    """The headline table and how to read its columns."""
    pct = int(agg["confidence"] * 100)
    return [
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
    ]


def _comparison_section(agg: dict[str, Any]) -> list[str]:
    """The rule, then one sentence per arm."""
    pct = int(agg["confidence"] * 100)
    return [
        "",
        "## Compared with the baseline",
        "",
        f"Rule: an arm beats (or is below) the baseline only when the {pct}% interval of the "
        "difference excludes 0.",
        "",
        *(f"- {verdict_sentence(arm, e, agg)}" for arm, e in agg["arms"].items()),
    ]


def _probe_section(agg: dict[str, Any]) -> list[str]:
    """The paper's probe vs held-out EM, then the other probes that have enough points."""
    md = ["", "## Probe vs held-out QA", "", _correlation_sentence(agg["correlation"])]
    for c in agg["correlations_other"].values():
        if c["n"] >= 3:
            md.append(
                f"- {c['x']}: Pearson r = {fmt(c['pearson'], 2)}, Spearman ρ = {fmt(c['spearman'], 2)}, n = {c['n']}."
            )
    return md


def _group_section(
    name: str, g: dict[str, Any], plots: dict[str, Path], exp_dir: Path
) -> list[str]:
    """One group: its arms' value of the varied param and held-out EM, and its plot."""
    md = ["", f"## Group: {name} (varies `{g['param']}`)", ""]
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
    return md


def _incomplete_section(agg: dict[str, Any]) -> list[str]:
    md = ["## Incomplete runs", ""]
    if agg["incomplete"]:
        md += [f"- `{r['path']}`: {r['status']}" for r in agg["incomplete"]]
    else:
        md.append("None: every run has its results.json.")
    return md


def render_markdown(
    agg: dict[str, Any],
    plots: dict[str, Path],
    exp_dir: Path,
    plots_note: str = "",
    sections: list[str] = (),
) -> str:
    """report.md: tables, one honest sentence per arm, correlation, plots, incomplete runs."""
    md = _header(agg, exp_dir) + _per_arm_section(agg) + _comparison_section(agg)
    table = per_attribute_table(agg)
    if table:
        md += ["", "## Held-out QA EM per attribute (%, mean over seeds)", "", table]
    md += _probe_section(agg)
    for name, g in agg["groups"].items():
        md += _group_section(name, g, plots, exp_dir)
    for section in sections:
        md += ["", section]
    md += ["", *plots_section(plots, PLOT_CAPTIONS, exp_dir, plots_note)]
    md += _incomplete_section(agg)
    return "\n".join(md).rstrip() + "\n"
