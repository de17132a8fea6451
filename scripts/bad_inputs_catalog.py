"""Write docs/bad-inputs.md from the cases of tests/test_bad_inputs.py.

Runs every case through the CLI (in-process, in a scratch folder) and records the error
line it prints; tests/test_bad_inputs.py checks the document against the cases, row for row.

    .venv/bin/python scripts/bad_inputs_catalog.py
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import tempfile
import types
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_cases() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bad_inputs", ROOT / "tests" / "test_bad_inputs.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_inputs"] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    m = load_cases()
    from knowlearn.cli import main as cli

    rows = []
    for case in m.CASES:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            argv = case.build(tmp)
            err = io.StringIO()
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stderr(err),
                contextlib.redirect_stdout(io.StringIO()),
            ):
                warnings.simplefilter("ignore")
                code = cli(argv)
            if code != case.code or len(err.getvalue().splitlines()) != 1:
                print(f"{case.id}: exit {code}, stderr:\n{err.getvalue()}", file=sys.stderr)
                return 1
            rows.append(m.case_row(case, m.catalog_message(err.getvalue(), tmp)))
    named = {k: sum(getattr(c, k) is not None for c in m.CASES) for k in ("file", "line", "field")}
    text = (
        f"""# Bad inputs: what knowlearn says

Every input a user hands knowlearn (documents, QA and paraphrase JSONL, run and experiment
configs, model directories, the run directory) is checked before training starts. A problem
ends the command with exit code 2 and one line on stderr, `knowlearn: error: WHERE: WHAT`,
where WHERE is the file (`file:line` for JSONL) and `field 'name'` wherever they apply.
No traceback; no file that was there before is changed; nothing is written (no run
directory is begun, so the corrected command runs); no temporary file is left behind.

Each row is a case of `tests/test_bad_inputs.py`, which runs it through the CLI and checks
this table against the message it prints (`$TMP` stands for the test's scratch folder,
`$KNOWLEARN` for the installed package's folder).
Regenerate after changing a message: `.venv/bin/python scripts/bad_inputs_catalog.py`.

{len(m.CASES)} cases; the error names the file in {named["file"]}, the line in {named["line"]},
the field in {named["field"]} (the others are command-line overrides, which have no file, or
whole-file problems, which have no line); files corrupted: 0.

| id | input | error message | note |
|---|---|---|---|
"""
        + "\n".join(rows)
        + """

## Accepted on purpose

Inputs that look wrong but are not errors (checked by `test_accepted_input`).

| id | input | note |
|---|---|---|
"""
        + "\n".join(m.accepted_row(a) for a in m.ACCEPTED)
        + "\n"
    )
    path = ROOT / "docs" / "bad-inputs.md"
    path.write_text(text, encoding="utf-8")
    print(f"{path}: {len(rows)} cases, {len(m.ACCEPTED)} accepted inputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
