"""Decide one experiment's pre-registered gates and claims on several experiment
directories pooled (the same design on other populations), and print the verdicts table.

    python scripts/pool_experiments.py runs/fair-secondary runs/fair

The design (arms, gates, claims, alpha) is the last directory's; each directory's runs are
read as `knowlearn report` reads them, and no seed may appear in two of them.
"""

import sys

from knowlearn.errors import KnowlearnError
from knowlearn.report.pool import pooled_verdicts


def main(argv: list[str]) -> int:
    if not argv or any(a.startswith("-") for a in argv):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        _, text = pooled_verdicts(argv)
    except KnowlearnError as e:
        print(f"pool_experiments: error: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
