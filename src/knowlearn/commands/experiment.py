"""Experiments: `knowlearn demo`, `run` and `report`."""

from __future__ import annotations

import argparse
from pathlib import Path

from knowlearn.commands.common import DEMO_CONFIG, quiet_libraries, shipped_config
from knowlearn.errors import KnowlearnError


def cmd_run(args: argparse.Namespace) -> int:
    """An experiment: arms x seeds from a YAML, in parallel, then the table (and report)."""
    return cmd_demo(args)


def cmd_demo(args: argparse.Namespace) -> int:
    """The shipped demo experiment (or --config's), then its table and report."""
    from knowlearn.experiment.arms import format_table, run_experiment
    from knowlearn.experiment.design import load_experiment

    exp = load_experiment(
        args.config or shipped_config(DEMO_CONFIG),
        [f"out={args.out}"] + args.overrides if args.out else args.overrides,
    )
    quiet_libraries()
    arms = f"{len(exp.arms)} arms"
    if exp.only:
        arms = f"{len(exp.only)} of {arms} (only {', '.join(exp.only)})"
    print(f"knowlearn {args.command}: {arms} x {len(exp.seeds)} seed(s) -> {exp.out}", flush=True)
    rows = run_experiment(exp)
    from knowlearn.report import write_report

    report = write_report(exp.out)
    print()
    print(format_table(rows))
    print(
        f"\nreport: {report} (plots in {Path(exp.out) / 'plots'}); runs: {Path(exp.out) / 'arms'}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """report.md of an experiment directory, or of one run's directory."""
    from knowlearn.report import aggregate, collect, main_table, write_report

    if not Path(args.exp_dir).is_dir():
        raise KnowlearnError("no such directory", file=args.exp_dir)
    if not Path(args.exp_dir, "arms").is_dir():
        if Path(args.exp_dir, "config.yaml").is_file():  # one run of `knowlearn train`
            from knowlearn.report.run_report import write_run_report

            path = write_run_report(args.exp_dir)
            print(path.read_text(encoding="utf-8").split("\n## Plots")[0].rstrip())
            print(f"\nreport: {path} (plots/ beside it)")
            return 0
        raise KnowlearnError(
            "neither an experiment directory (arms/) nor a run directory (config.yaml)",
            file=args.exp_dir,
        )
    path = write_report(args.exp_dir)
    print(main_table(aggregate(collect(args.exp_dir))))
    print(f"\nreport: {path} (results.json and plots/ beside it)")
    return 0
