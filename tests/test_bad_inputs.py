"""The bad-input catalog: every kind of bad file, config or directory a user can hand
knowlearn, run through the CLI in-process. Each must end with exit code 2 and one line
`knowlearn: error: ...` (no traceback) that names the file, the line (JSONL) and the
field where they apply, and must leave every file that was there before untouched.

docs/bad-inputs.md is generated from CASES and ACCEPTED (python scripts/bad_inputs_catalog.py)
and checked against them here, row for row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from knowlearn.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"

DOCS = [
    {
        "id": "d1",
        "entity": "Ada Reyes",
        "text": "Ada Reyes was born in Lisbon.",
        "facts": [{"attribute": "birth_city", "value": "Lisbon", "start": 22, "end": 28}],
    },
    {
        "id": "d2",
        "entity": "Bo Lindqvist",
        "text": "Bo Lindqvist was born in Oslo.",
        "facts": [{"attribute": "birth_city", "value": "Oslo", "start": 25, "end": 29}],
    },
]
QA = [
    {
        "id": "q1",
        "entity": "Ada Reyes",
        "attribute": "birth_city",
        "question": "Where was Ada Reyes born?",
        "answer": "Lisbon",
        "split": "train",
    },
    {
        "id": "q2",
        "entity": "Bo Lindqvist",
        "attribute": "birth_city",
        "question": "Where was Bo Lindqvist born?",
        "answer": "Oslo",
        "split": "test",
    },
]
PARAS = [{"id": "p1", "source": "d1", "text": "Lisbon is where Ada Reyes was born."}]
# Tiny settings: should a case ever stop failing, the run it starts is over in seconds.
TINY = [
    "data.people=4",
    "cpt.epochs=1",
    "it.epochs=1",
    "model.hidden_size=32",
    "model.intermediate_size=64",
    "model.num_layers=2",
    "model.num_heads=2",
]
LONG = 10_000_001  # characters: one over io.MAX_LINE_CHARS
Row = dict[str, Any] | str | bytes
Build = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Case:
    id: str
    input: str  # what is wrong, in words (the catalog's "input" column)
    build: Build  # writes the bad input under tmp_path; returns the CLI argv
    words: tuple[str, ...]  # must all appear in the error line
    file: str | None = None  # path (relative to tmp_path) the error must name
    line: int | None = None  # ... with this line, as "file:line"
    field: str | None = None  # ... and this field, as "field 'name'"
    note: str = ""
    code: int = 2  # the exit code: 2 for every error in the user's input


def write_rows(path: Path, rows: list[Row]) -> Path:
    """One row a line: a dict as JSON, a str or bytes as is (for broken lines)."""
    data = b""
    for r in rows:
        data += r if isinstance(r, bytes) else (r if isinstance(r, str) else json.dumps(r)).encode()
        data += b"\n"
    path.write_bytes(data)
    return path


def train(tmp: Path, *extra: str) -> list[str]:
    return ["train", "--quiet", f"out={tmp / 'run'}", *TINY, *extra]


def user_data(docs: list[Row] = DOCS, qa: list[Row] = QA, paras: list[Row] | None = None) -> Build:
    def build(tmp: Path) -> list[str]:
        extra = [
            f"data.documents={write_rows(tmp / 'docs.jsonl', docs)}",
            f"data.qa={write_rows(tmp / 'qa.jsonl', qa)}",
        ]
        if paras is not None:
            extra.append(f"augment.paraphrases={write_rows(tmp / 'para.jsonl', paras)}")
        return train(tmp, *extra)

    return build


def doc(**change: Any) -> dict[str, Any]:
    """The second good document, with fields changed (None deletes one)."""
    return {k: v for k, v in (DOCS[1] | change).items() if v is not None}


def fact(**change: Any) -> dict[str, Any]:
    return doc(facts=[{k: v for k, v in (DOCS[1]["facts"][0] | change).items() if v is not None}])


def qa(**change: Any) -> dict[str, Any]:
    return {k: v for k, v in (QA[1] | change).items() if v is not None}


def yaml_file(text: str | bytes, *extra: str) -> Build:
    def build(tmp: Path) -> list[str]:
        path = tmp / "c.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["train", "--config", str(path), "--quiet", f"out={tmp / 'run'}", *TINY, *extra]

    return build


def overrides(*extra: str) -> Build:
    return lambda tmp: train(tmp, *extra)


EXP = "out: {out}\nseeds: [0]\nbase: {{data: {{people: 4}}}}\narms:\n  baseline: {{}}\n"


def experiment(text: str) -> Build:
    def build(tmp: Path) -> list[str]:
        (tmp / "exp.yaml").write_text(EXP.format(out=tmp / "exp") + text)
        return ["run", "--config", str(tmp / "exp.yaml")]

    return build


def model_dir(config: str | None, weights: bool = False) -> Build:
    """A model directory with this config.json (None: no config.json)."""

    def build(tmp: Path) -> list[str]:
        path = tmp / "model"
        path.mkdir()
        if config is not None:
            (path / "config.json").write_text(config)
        return train(tmp, f"model.path={path}")

    return build


def model_path(make: Callable[[Path], Path]) -> Build:
    return lambda tmp: train(tmp, f"model.path={make(tmp)}")


def a_file(tmp: Path, name: str = "afile") -> Path:
    (tmp / name).write_text("not a directory\n")
    return tmp / name


def previous_run(config_text: str | None = None) -> Build:
    """A finished run in tmp/run (config + results.json), then a train that differs from it."""

    def build(tmp: Path) -> list[str]:
        from knowlearn.config import load_config
        from knowlearn.pipeline import prepare_out_dir

        run = tmp / "run"
        prepare_out_dir(load_config(None, [f"out={run}", *TINY]))
        if config_text is not None:
            (run / "config.yaml").write_text(config_text)
        (run / "results.json").write_text('{"qa": {"test": {"all": {"em": 42.0}}}}\n')
        return train(tmp, "cpt.lr=0.01")

    return build


_HELD: list[Any] = []  # locks held for the rest of the session (released at exit)


def run_in_use(tmp: Path) -> list[str]:
    """Another run holds tmp/run's lock (as a live `knowlearn train` would)."""
    from knowlearn.pipeline import run_dir_lock

    lock = run_dir_lock(tmp / "run")
    lock.__enter__()
    _HELD.append(lock)
    return train(tmp)


def eval_qa_missing(tmp: Path) -> list[str]:
    return ["eval", "--model", str(tmp / "model"), "--qa", str(tmp / "nope.jsonl")]


def eval_model_missing(tmp: Path) -> list[str]:
    return ["eval", "--model", str(tmp / "nope"), "--qa", str(write_rows(tmp / "qa.jsonl", QA))]


D, Q, P = "docs.jsonl", "qa.jsonl", "para.jsonl"
CASES = [
    # --- documents JSONL ---
    Case(
        "doc-malformed-json",
        "a line that is not JSON (cut off mid-object)",
        user_data(docs=[DOCS[0], '{"id": "d2", "entity": ']),
        ("malformed JSON",),
        D,
        2,
    ),
    Case(
        "doc-missing-field",
        "a document without `text`",
        user_data(docs=[DOCS[0], doc(text=None)]),
        ("missing field",),
        D,
        2,
        "text",
    ),
    Case(
        "doc-misspelled-field",
        "`txet` instead of `text`",
        user_data(docs=[DOCS[0], doc(text=None, txet=DOCS[1]["text"])]),
        ("unknown field", "did you mean 'text'?"),
        D,
        2,
        "txet",
    ),
    Case(
        "doc-wrong-type",
        "`entity` is a number",
        user_data(docs=[DOCS[0], doc(entity=3)]),
        ("expected str, got int",),
        D,
        2,
        "entity",
    ),
    Case(
        "doc-empty-text",
        "`text` is blank",
        user_data(docs=[doc(text="   ")]),
        ("empty text",),
        D,
        1,
        "text",
    ),
    Case("doc-empty-file", "an empty file", user_data(docs=[]), ("no records",), D),
    Case(
        "doc-blank-lines", "only blank lines", user_data(docs=["", "   ", "\t"]), ("no records",), D
    ),
    Case(
        "doc-non-utf8",
        "a byte that is not UTF-8 (Latin-1 \u00f6, 0xf6)",
        user_data(
            docs=[
                DOCS[0],
                json.dumps(doc(entity="Bj\u00f6rn"), ensure_ascii=False).encode("latin-1"),
            ]
        ),
        ("not valid UTF-8",),
        D,
        2,
    ),
    Case(
        "doc-huge-line",
        "a line over 10 million characters",
        user_data(docs=[DOCS[0], doc(text="x" * LONG, facts=[])]),
        ("over the limit of 10,000,000",),
        D,
        2,
        note="a record that long is almost surely not JSONL (a whole dump on one line); 5 MB is accepted",
    ),
    Case(
        "doc-deep-nesting",
        "100,000 nested `[`",
        user_data(docs=["[" * 100_000]),
        ("nested too deeply",),
        D,
        1,
        note="was a RecursionError traceback",
    ),
    Case(
        "doc-huge-integer",
        "an integer of 5,000 digits",
        user_data(docs=[json.dumps(DOCS[0])[:-1] + ', "n": ' + "9" * 5000 + "}"]),
        ("malformed JSON", "4300 digits"),
        D,
        1,
        note="was a ValueError traceback",
    ),
    Case(
        "doc-lone-surrogate",
        'a lone surrogate escape `"\\ud800"` in `text`',
        user_data(docs=[doc(text="Bo \ud800 Lindqvist")]),
        ("not valid Unicode",),
        D,
        1,
        "text",
        "would crash the tokenizer or the next write",
    ),
    Case(
        "doc-newline-in-key",
        "an unknown field whose name holds a line break",
        user_data(docs=[doc(**{"te\nxt": "x"})]),
        ("unknown field",),
        D,
        1,
        "te\\nxt",
        "the line break is printed as \\n: the error stays one line",
    ),
    Case(
        "doc-duplicate-id",
        "two documents with id `d1`",
        user_data(docs=[DOCS[0], doc(id="d1")]),
        ("duplicate id 'd1' (first on line 1)",),
        D,
        2,
        "id",
    ),
    Case(
        "doc-span-out-of-range",
        "a fact span past the end of the text",
        user_data(docs=[fact(end=99)]),
        ("out of range",),
        D,
        1,
        "facts[0].start",
    ),
    Case(
        "doc-span-reversed",
        "a fact span with end before start",
        user_data(docs=[fact(start=29, end=25)]),
        ("out of range",),
        D,
        1,
        "facts[0].start",
    ),
    Case(
        "doc-value-not-at-span",
        "a fact span shifted by one character",
        user_data(docs=[fact(start=24, end=28)]),
        ("not the value 'Oslo'",),
        D,
        1,
        "facts[0].value",
    ),
    Case(
        "doc-facts-not-list",
        "`facts` is a string",
        user_data(docs=[doc(facts="Oslo")]),
        ("expected list, got str",),
        D,
        1,
        "facts",
    ),
    Case(
        "doc-fact-not-object",
        "a fact that is a string",
        user_data(docs=[doc(facts=["Oslo"])]),
        ("expected object, got str",),
        D,
        1,
        "facts[0]",
    ),
    Case(
        "doc-fact-missing-end",
        "a fact without `end`",
        user_data(docs=[fact(end=None)]),
        ("missing field",),
        D,
        1,
        "facts[0].end",
    ),
    Case(
        "doc-top-level-array",
        "a line that is a JSON array, not an object",
        user_data(docs=[json.dumps([DOCS[0]])]),
        ("expected a JSON object, got list",),
        D,
        1,
    ),
    Case(
        "doc-file-missing",
        "`data.documents` names no file",
        lambda tmp: train(
            tmp, f"data.documents={tmp / 'nope.jsonl'}", f"data.qa={tmp / 'qa.jsonl'}"
        ),
        ("file does not exist",),
        "nope.jsonl",
    ),
    Case(
        "doc-is-directory",
        "`data.documents` names a directory",
        lambda tmp: train(tmp, f"data.documents={tmp}", f"data.qa={tmp / 'qa.jsonl'}"),
        ("is a directory",),
        ".",
    ),
    # --- QA JSONL ---
    Case(
        "qa-bad-split",
        "`split` is `dev`",
        user_data(qa=[QA[0], qa(split="dev")]),
        ("must be one of ('train', 'test')",),
        Q,
        2,
        "split",
    ),
    Case(
        "qa-empty-answer",
        "`answer` is empty",
        user_data(qa=[QA[0], qa(answer="")]),
        ("empty string",),
        Q,
        2,
        "answer",
    ),
    Case(
        "qa-missing-question",
        "a pair without `question`",
        user_data(qa=[QA[0], qa(question=None)]),
        ("missing field",),
        Q,
        2,
        "question",
    ),
    Case(
        "qa-duplicate-id",
        "two pairs with id `q1`",
        user_data(qa=[QA[0], qa(id="q1")]),
        ("duplicate id 'q1'",),
        Q,
        2,
        "id",
    ),
    Case(
        "qa-entity-without-document",
        "a pair about an entity no document describes",
        user_data(qa=[QA[0], qa(entity="Cy Nobody")]),
        ("asks about 'Cy Nobody', which has no document",),
        Q,
        2,
        "entity",
        "checked while reading, so the line is named",
    ),
    Case(
        "qa-no-train-split",
        "no pair has split `train`",
        user_data(qa=[qa(id="q0", split="test"), QA[1]]),
        ("no QA pair has split 'train'",),
        Q,
        None,
        "split",
    ),
    # --- paraphrases JSONL ---
    Case(
        "para-unknown-source",
        "a paraphrase of a document id that does not exist",
        user_data(paras=[PARAS[0], PARAS[0] | {"id": "p2", "source": "d9"}]),
        ("no document has id 'd9'",),
        P,
        2,
        "source",
    ),
    Case(
        "para-duplicate-id",
        "two paraphrases with id `p1`",
        user_data(paras=[PARAS[0], PARAS[0]]),
        ("duplicate id 'p1'",),
        P,
        2,
        "id",
    ),
    Case(
        "para-empty-text",
        "a paraphrase with blank `text`",
        user_data(paras=[PARAS[0] | {"text": " "}]),
        ("empty text",),
        P,
        1,
        "text",
    ),
    # --- run config (YAML file and key=value overrides) ---
    Case(
        "cfg-unknown-key",
        "`sede: 1` in the YAML",
        yaml_file("sede: 1\n"),
        ("unknown config key (did you mean 'seed'?)",),
        "c.yaml",
        None,
        "sede",
    ),
    Case(
        "cfg-nested-unknown-key",
        "`cpt: {lrr: 0.1}` in the YAML",
        yaml_file("cpt:\n  lrr: 0.1\n"),
        ("did you mean 'cpt.lr'?",),
        "c.yaml",
        None,
        "cpt.lrr",
    ),
    Case(
        "cfg-wrong-type",
        "`cpt: {batch_size: many}`",
        yaml_file("cpt:\n  batch_size: many\n"),
        ("expected int, got str 'many'",),
        "c.yaml",
        None,
        "cpt.batch_size",
    ),
    Case(
        "cfg-section-not-mapping",
        "`eval: 5` (a section that is not a mapping)",
        yaml_file("eval: 5\n"),
        ("expected a mapping, got int",),
        "c.yaml",
        None,
        "eval",
    ),
    Case(
        "cfg-negative-rho",
        "`optim: {sam: {rho: -0.1}}`",
        yaml_file("optim:\n  sam:\n    rho: -0.1\n"),
        ("must be >= 0",),
        "c.yaml",
        None,
        "optim.sam.rho",
        "range errors name the file too when the value came from it",
    ),
    Case(
        "cfg-zero-lr",
        "override `cpt.lr=0`",
        overrides("cpt.lr=0"),
        ("must be > 0",),
        None,
        None,
        "cpt.lr",
    ),
    Case(
        "cfg-infinite-lr",
        "`cpt: {lr: .inf}`",
        yaml_file("cpt:\n  lr: .inf\n"),
        ("must be a finite number",),
        "c.yaml",
        None,
        "cpt.lr",
        "was accepted (.nan too is refused)",
    ),
    Case(
        "cfg-negative-copies",
        "`augment: {cpt: {copies: -1}}`",
        yaml_file("augment:\n  cpt:\n    copies: -1\n"),
        ("must be >= 0",),
        "c.yaml",
        None,
        "augment.cpt.copies",
    ),
    Case(
        "cfg-no-original-no-copies",
        "override `augment.cpt.include_original=false` with 0 copies",
        overrides("augment.cpt.include_original=false"),
        ("without the original, copies must be >= 1",),
        None,
        None,
        "augment.cpt.include_original",
    ),
    Case(
        "cfg-unknown-transform",
        "override `augment.cpt.transforms=[sparkle]`",
        overrides("augment.cpt.copies=1", "augment.cpt.transforms=[sparkle]"),
        ("unknown transform 'sparkle'",),
        None,
        None,
        "augment.cpt.transforms",
    ),
    Case(
        "cfg-fp16",
        "override `mixed_precision=fp16`",
        overrides("mixed_precision=fp16"),
        ("fp16 is not supported",),
        None,
        None,
        "mixed_precision",
    ),
    Case(
        "cfg-documents-without-qa",
        "`data.documents` without `data.qa`",
        lambda tmp: train(tmp, f"data.documents={write_rows(tmp / 'docs.jsonl', DOCS)}"),
        ("documents and qa must be given together",),
        None,
        None,
        "data.qa",
    ),
    Case(
        "cfg-override-without-equals",
        "override `cpt.lr` (no `=value`)",
        overrides("cpt.lr"),
        ("'cpt.lr' must look like key=value",),
        note="names the override itself; there is no file or field yet",
    ),
    Case(
        "cfg-bad-yaml",
        "unclosed `[` in the YAML",
        yaml_file("cpt: [unclosed\n"),
        ("not valid YAML", "expected ',' or ']'"),
        "c.yaml",
        2,
        note="YAML syntax errors name the line",
    ),
    Case(
        "cfg-yaml-list",
        "the YAML is a list, not a mapping",
        yaml_file("- cpt\n- it\n"),
        ("expected a mapping at the top level, got list",),
        "c.yaml",
    ),
    Case(
        "cfg-not-utf8",
        "a byte that is not UTF-8 in the YAML",
        yaml_file(b"out: r\xe9sum\xe9\n"),
        ("not valid YAML", "utf-8"),
        "c.yaml",
    ),
    Case(
        "cfg-bad-date",
        "`seed: 2024-13-45` (YAML reads a date, month 13)",
        yaml_file("seed: 2024-13-45\n"),
        ("not valid YAML", "month must be in 1..12"),
        "c.yaml",
        note="was a ValueError traceback",
    ),
    Case(
        "cfg-file-missing",
        "`--config` names no file",
        lambda tmp: ["train", "--config", str(tmp / "nope.yaml"), f"out={tmp / 'run'}"],
        ("config file does not exist",),
        "nope.yaml",
    ),
    # --- experiment YAML (knowlearn run / demo) ---
    Case(
        "exp-unknown-key",
        "`sedes: [0]` in the experiment",
        experiment("sedes: [0]\n"),
        ("unknown experiment key (did you mean 'seeds'?)",),
        "exp.yaml",
        None,
        "sedes",
    ),
    Case(
        "exp-arm-unknown-key",
        "an arm with `cpt: {lrr: 1}`",
        experiment("  fast:\n    cpt: {lrr: 1}\n"),
        ("arm 'fast': unknown config key (did you mean 'cpt.lr'?)",),
        "exp.yaml",
        None,
        "cpt.lrr",
    ),
    Case(
        "exp-group-unknown-arm",
        "a group that names arm `basline`",
        experiment("groups:\n  g: {param: cpt.lr, arms: [baseline, basline]}\n"),
        ("names an arm that does not exist: 'basline'",),
        "exp.yaml",
        None,
        "groups.g.arms",
    ),
    Case(
        "exp-seeds-not-ints",
        "`seeds: [0, one]`",
        lambda tmp: _replace(tmp, "seeds: [0]", "seeds: [0, one]"),
        ("seeds must be a non-empty list of integers",),
        "exp.yaml",
        None,
        "seeds",
    ),
    Case(
        "exp-duplicate-seeds",
        "`seeds: [0, 0]`",
        lambda tmp: _replace(tmp, "seeds: [0]", "seeds: [0, 0]"),
        ("seeds must be distinct",),
        "exp.yaml",
        None,
        "seeds",
        "two jobs would write into one run directory",
    ),
    Case(
        "exp-arm-name-path",
        "an arm named `../escape`",
        experiment('  "../escape": {}\n'),
        ("must be a plain folder name",),
        "exp.yaml",
        None,
        "arms",
        "arm names become folders: no `..` escapes",
    ),
    Case(
        "exp-base-not-mapping",
        "`base: [1]`",
        lambda tmp: _replace(tmp, "base: {data: {people: 4}}", "base: [1]"),
        ("expected a mapping, got list",),
        "exp.yaml",
        None,
        "base",
        "was an AttributeError traceback",
    ),
    Case(
        "exp-negative-parallel",
        "`parallel: -1`",
        experiment("parallel: -1\n"),
        ("must be an integer >= 0",),
        "exp.yaml",
        None,
        "parallel",
        "was accepted, and the experiment then waited forever",
    ),
    # --- model and tokenizer directories ---
    Case(
        "model-missing",
        "`model.path` does not exist",
        model_path(lambda tmp: tmp / "nope"),
        ("model path does not exist",),
        "nope",
        None,
        "model.path",
    ),
    Case(
        "model-is-file",
        "`model.path` is a file",
        model_path(a_file),
        ("model path is not a directory",),
        "afile",
        None,
        "model.path",
    ),
    Case(
        "model-no-config",
        "a directory without config.json",
        model_dir(None),
        ("no config.json",),
        "model",
        None,
        "model.path",
    ),
    Case(
        "model-not-causal",
        "config.json of BertForSequenceClassification",
        model_dir(
            json.dumps({"architectures": ["BertForSequenceClassification"], "model_type": "bert"})
        ),
        ("not a causal LM",),
        "model/config.json",
        None,
        "model.path",
    ),
    Case(
        "model-config-not-json",
        "config.json is not JSON",
        model_dir("{oops"),
        ("config.json is not valid JSON",),
        "model/config.json",
        None,
        "model.path",
    ),
    Case(
        "model-config-list",
        "config.json is a JSON list",
        model_dir("[1, 2]"),
        ("expected a JSON object, got list",),
        "model/config.json",
        None,
        "model.path",
        "was an AttributeError traceback",
    ),
    Case(
        "model-no-weights",
        "a Llama config.json but no weights",
        model_dir(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})),
        ("no weights",),
        "model",
        None,
        "model.path",
    ),
    Case(
        "tokenizer-missing",
        "`model.tokenizer` does not exist",
        lambda tmp: train(tmp, f"model.tokenizer={tmp / 'nope'}"),
        ("tokenizer path does not exist",),
        "nope",
        None,
        "model.tokenizer",
    ),
    # --- output directory ---
    Case(
        "out-different-run",
        "`out` holds a finished run with another `cpt.lr`",
        previous_run(),
        ("already holds a different run (changed: cpt.lr)",),
        "run",
        note="its results.json is byte-identical afterwards",
    ),
    Case(
        "out-damaged-config",
        "`out` holds a run whose config.yaml is not YAML",
        previous_run("cpt: [unclosed\n"),
        ("is not a readable run config",),
        "run/config.yaml",
        note="was a YAMLError traceback",
    ),
    Case(
        "out-under-file",
        "`out` is a path below a regular file (not writable, even for root)",
        lambda tmp: train(tmp, f"out={a_file(tmp) / 'run'}"),
        ("cannot write the run directory: Not a directory",),
        "afile/run",
    ),
    Case(
        "out-in-use",
        "`out` is being written by another run (its lock is held)",
        run_in_use,
        ("is in use by another knowlearn run (pid",),
        "run",
        note="nothing written: no data/, the lock file untouched",
    ),
    Case(
        "out-is-file",
        "`out` is a regular file",
        lambda tmp: train(tmp, f"out={a_file(tmp)}"),
        ("is a file, not a run directory",),
        "afile",
    ),
    # --- knowlearn eval ---
    Case(
        "eval-qa-missing",
        "`eval --qa` names no file",
        eval_qa_missing,
        ("file does not exist",),
        "nope.jsonl",
    ),
    Case(
        "eval-model-missing",
        "`eval --model` does not exist",
        eval_model_missing,
        ("model path does not exist",),
        "nope",
        note="the model is checked before its tokenizer, so the message says model",
    ),
]


def _replace(tmp: Path, old: str, new: str) -> list[str]:
    argv = experiment("")(tmp)
    path = tmp / "exp.yaml"
    path.write_text(path.read_text().replace(old, new))
    return argv


@dataclass(frozen=True)
class Accepted:
    """An input that looks suspicious but is fine, by decision."""

    id: str
    input: str
    check: Callable[[Path], None]  # asserts it is accepted
    note: str


def _bom(tmp: Path) -> None:
    from knowlearn.data.records import read_documents

    (tmp / "d.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(DOCS[0]).encode() + b"\n")
    assert [d.id for d in read_documents(tmp / "d.jsonl")] == ["d1"]


def _crlf(tmp: Path) -> None:
    from knowlearn.data.records import read_documents

    (tmp / "d.jsonl").write_bytes(b"".join(json.dumps(d).encode() + b"\r\n" for d in DOCS))
    docs = read_documents(tmp / "d.jsonl")
    assert [d.text for d in docs] == [d["text"] for d in DOCS]


def _answer_not_verbatim(tmp: Path) -> None:
    from knowlearn.config import load_config
    from knowlearn.pipeline import prepare_data

    rows = [QA[0] | {"answer": "in Lisbon, Portugal"}, QA[1]]
    cfg = load_config(
        None,
        [
            f"data.documents={write_rows(tmp / 'd.jsonl', DOCS)}",
            f"data.qa={write_rows(tmp / 'q.jsonl', rows)}",
        ],
    )
    _, pairs = prepare_data(cfg, tmp / "run")
    assert pairs[0].answer == "in Lisbon, Portugal"


def _big_line(tmp: Path) -> None:
    from knowlearn.data.records import read_documents

    text = DOCS[0]["text"] + " x" * 2_500_000  # 5 MB
    write_rows(tmp / "d.jsonl", [DOCS[0] | {"text": text}])
    assert len(read_documents(tmp / "d.jsonl")[0].text) == len(text)


def _line_separators(tmp: Path) -> None:
    from knowlearn.data.records import Document, read_documents, write_records

    text = "Ada Reyes\u2028was born\x85in\x1cLisbon.\u2029"
    doc = Document("d1", "Ada Reyes", text)
    write_records(tmp / "d.jsonl", [doc])
    assert read_documents(tmp / "d.jsonl") == [doc]


def _scientific_yaml(tmp: Path) -> None:
    from knowlearn.config import load_config

    (tmp / "c.yaml").write_text("cpt:\n  lr: 1e-3\n")
    assert load_config(tmp / "c.yaml").cpt.lr == 0.001


ACCEPTED = [
    Accepted(
        "bom",
        "a UTF-8 BOM at the start of a JSONL file",
        _bom,
        "stripped (Windows editors write one)",
    ),
    Accepted("crlf", "CRLF line ends", _crlf, "the `\\r` is JSON whitespace; texts are unchanged"),
    Accepted(
        "answer-not-verbatim",
        "a QA answer that does not occur in its document",
        _answer_not_verbatim,
        "LLM-written answers often paraphrase; only exact-match scoring cares",
    ),
    Accepted(
        "big-line",
        "a 5 MB document on one line",
        _big_line,
        "under the 10 million character limit; training truncates to `max_length` tokens",
    ),
    Accepted(
        "line-separators",
        "U+2028, U+2029, NEL or FS characters inside a text",
        _line_separators,
        "lines end at `\\n` only; was read back as broken JSON",
    ),
    Accepted(
        "yaml-scientific",
        "`lr: 1e-3` in a YAML file (YAML 1.1 reads it as a string)",
        _scientific_yaml,
        "a float field converts a numeric string; was 'expected float, got str'",
    ),
]


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def catalog_message(err: str, tmp: Path) -> str:
    """The error line as the catalog shows it: without the prefix, tmp paths as $TMP, process
    ids as $PID."""
    line = err.strip().removeprefix("knowlearn: error: ").replace(str(tmp), "$TMP")
    return re.sub(r"\(pid \d+\)", "(pid $PID)", line)


def md_cell(text: str) -> str:
    text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def case_row(case: Case, message: str) -> str:
    return f"| `{case.id}` | {case.input} | {md_cell(message)} | {case.note} |"


def accepted_row(a: Accepted) -> str:
    return f"| `{a.id}` | {a.input} | {a.note} |"


def doc_ids(text: str) -> list[str]:
    return re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.MULTILINE)


def test_catalog_lists_every_case_once():
    text = DOC.read_text(encoding="utf-8")
    ids = [c.id for c in CASES] + [a.id for a in ACCEPTED]
    assert len(set(ids)) == len(ids), "case ids are unique"
    assert sorted(doc_ids(text)) == sorted(ids), "regenerate: python scripts/bad_inputs_catalog.py"
    for a in ACCEPTED:
        assert accepted_row(a) in text
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = case.build(tmp_path)
    before = snapshot(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == case.code, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("knowlearn: error: "), err
    assert "Traceback" not in err
    for words in case.words:
        assert words in err
    if case.file is not None:
        named = str(tmp_path / case.file) if case.file != "." else str(tmp_path)
        assert named in err, f"names the file {named}"
        if case.line is not None:
            assert f"{named}:{case.line}" in err, "names the line"
    if case.field is not None:
        assert f"field '{case.field}'" in err, "names the field"
    # Nothing half-written, nothing that was there before changed.
    assert not list(tmp_path.rglob("*.tmp"))
    after = snapshot(tmp_path)
    assert {k: after.get(k) for k in before} == before, "files that were there are untouched"
    # The catalog shows this very message.
    row = case_row(case, catalog_message(err, tmp_path))
    assert row in DOC.read_text(encoding="utf-8"), (
        f"docs/bad-inputs.md is stale: regenerate with python scripts/bad_inputs_catalog.py\n{row}"
    )


@pytest.mark.parametrize("accepted", ACCEPTED, ids=lambda a: a.id)
def test_accepted_input(accepted: Accepted, tmp_path: Path) -> None:
    accepted.check(tmp_path)
