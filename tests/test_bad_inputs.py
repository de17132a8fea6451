"""The bad-input catalog: every kind of bad file, config or directory a user can hand
knowlearn, run through the CLI in-process. Each must end with exit code 2 and one line
`knowlearn: error: ...` (no traceback) that names the file, the line (JSONL) and the
field where they apply, must leave every file that was there before untouched, and must
write nothing (so the corrected command is never refused by a half-made run directory).

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

import knowlearn
from knowlearn.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"
PACKAGE = Path(knowlearn.__file__).resolve().parent

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
LATIN1 = "Malm\xf6".encode("latin-1")  # not UTF-8
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
        from knowlearn.pipeline.rundir import prepare_out_dir

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
    from knowlearn.pipeline.rundir import run_dir_lock

    lock = run_dir_lock(tmp / "run")
    lock.__enter__()
    _HELD.append(lock)
    return train(tmp)


def eval_qa_missing(tmp: Path) -> list[str]:
    return ["eval", "--model", str(tmp / "model"), "--qa", str(tmp / "nope.jsonl")]


def eval_model_missing(tmp: Path) -> list[str]:
    return ["eval", "--model", str(tmp / "nope"), "--qa", str(write_rows(tmp / "qa.jsonl", QA))]


def tiny_model(
    tmp: Path,
    *,
    architecture: str = "llama",
    vocab: int | None = None,
    tokenizer: bool = True,
    specials: tuple[str, ...] = (),
) -> Path:
    """A tiny model directory (random weights) with, unless `tokenizer` is false, a
    tokenizer trained on the test documents; `vocab` shrinks the model's vocabulary below it."""
    from knowlearn.config import ModelConfig
    from knowlearn.models.tiny import build_tiny_model, train_tokenizer

    tok = train_tokenizer([d["text"] for d in DOCS] + [q["question"] for q in QA], 300)
    if specials:
        tok.add_special_tokens({"additional_special_tokens": list(specials)})
    shape = ModelConfig(
        architecture=architecture, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32
    )
    model = build_tiny_model(shape, tok, seed=0)
    if vocab is not None:
        model.resize_token_embeddings(vocab)
    path = tmp / "model"
    model.save_pretrained(path)
    if tokenizer:
        tok.save_pretrained(path)
    return path


def truncated_weights(tmp: Path) -> list[str]:
    path = tiny_model(tmp)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return train(tmp, f"model.path={path}")


def unfinished_run(tmp: Path) -> Path:
    """A run directory whose config is written but which has not finished."""
    from knowlearn.config import load_config
    from knowlearn.pipeline.rundir import prepare_out_dir

    return prepare_out_dir(load_config(None, [f"out={tmp / 'run'}", *TINY]))


def experiment_in_use(tmp: Path) -> list[str]:
    """Another `knowlearn run` holds the experiment's lock, its arm log already written."""
    from knowlearn.pipeline.rundir import run_dir_lock

    argv = experiment("")(tmp)
    log = tmp / "exp" / "arms" / "baseline" / "seed0.log"
    log.parent.mkdir(parents=True)
    log.write_text("step 12/40\n")
    lock = run_dir_lock(tmp / "exp")
    lock.__enter__()
    _HELD.append(lock)
    return argv


def experiment_dir(tmp: Path) -> Path:
    """An experiment directory (experiment.json, arms/)."""
    (tmp / "exp" / "arms").mkdir(parents=True)
    (tmp / "exp" / "experiment.json").write_text("{}\n")
    return tmp / "exp"


def foreign_folder(tmp: Path) -> list[str]:
    """`out` is a folder of the user's own files (a data/qa.jsonl), not a run directory."""
    (tmp / "run" / "data").mkdir(parents=True)
    write_rows(tmp / "run" / "data" / "qa.jsonl", QA)
    return train(tmp)


def byte_offsets(tmp: Path) -> list[str]:
    """A fact span counted in UTF-8 bytes, as a byte-oriented tool writes it."""
    text = "Bj\u00f6rn \u00c5berg was born in Malm\u00f6."
    start = len(text[: text.index("Malm")].encode())
    bad = doc(entity="Bj\u00f6rn \u00c5berg", text=text)
    bad["facts"] = [
        {"attribute": "birth_city", "value": "Malm\u00f6", "start": start, "end": start + 6}
    ]
    return user_data(docs=[DOCS[0], bad], qa=[QA[0], qa(entity="Bj\u00f6rn \u00c5berg")])(tmp)


def utf16_offsets(tmp: Path) -> list[str]:
    """A fact span counted in UTF-16 code units (JavaScript's string indices)."""
    text = "\U0001f3bb Bo Lindqvist was born in Oslo."
    start = len(text[: text.index("Oslo")].encode("utf-16-le")) // 2
    bad = doc(
        text=text,
        facts=[{"attribute": "birth_city", "value": "Oslo", "start": start, "end": start + 4}],
    )
    return user_data(docs=[DOCS[0], bad])(tmp)


def encoded_docs(encode: Callable[[bytes], bytes]) -> Build:
    def build(tmp: Path) -> list[str]:
        argv = user_data()(tmp)
        path = tmp / "docs.jsonl"
        path.write_bytes(encode(path.read_bytes()))
        return argv

    return build


def qa_with_endoftext(tmp: Path) -> list[str]:
    model = tiny_model(tmp, specials=("<|endoftext|>",))
    argv = user_data(qa=[QA[0], qa(answer="Oslo<|endoftext|>")])(tmp)
    return [*argv, f"model.path={model}"]


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


EVIDENCE = [
    {
        "evidence_text": "Ada Reyes was born in Lisbon.",
        "title": "Ada Reyes",
        "qa_pairs": [{"question": "Where was Ada Reyes born?", "answer": "Lisbon"}],
    }
]
PIT_DOC = {"text": "", "output": "<Ada Reyes - Wikipedia> Ada Reyes was born in Lisbon."}
PIT_QA = {"text": "Question: Where was Ada Reyes born?\nAnswer:", "output": "Lisbon."}


def import_evidence(records: list[Any], text: str | None = None) -> Build:
    """`knowlearn import --layout evidence` of a pretty-printed JSON array (or `text`)."""

    def build(tmp: Path) -> list[str]:
        path = tmp / "evidence.json"
        path.write_text(json.dumps(records, indent=2) if text is None else text)
        return [
            "import",
            "--layout",
            "evidence",
            "--documents",
            str(path),
            "--out",
            str(tmp / "out"),
        ]

    return build


def import_pit(*options: str) -> Build:
    """`knowlearn import --layout pit` of a file mixing a document and a QA pair."""

    def build(tmp: Path) -> list[str]:
        mix = tmp / "mix.json"
        mix.write_text(json.dumps({"type": "text_only", "instances": [PIT_DOC, PIT_QA]}))
        argv = ["import", "--layout", "pit", "--out", str(tmp / "out")]
        return argv + [x.replace("MIX", str(mix)) for x in options]

    return build


def synth(
    docs: list[Row] = DOCS, *extra: str, model: bool = True, yaml_text: str | None = None
) -> Build:
    """`knowlearn synth` of these documents with a tiny model (random weights: every case
    is refused before it would generate); `model=False` names a model folder not made."""

    def build(tmp: Path) -> list[str]:
        path = tiny_model(tmp) if model else tmp / "model"
        argv = ["synth", "--quiet", "--documents", str(write_rows(tmp / D, docs))]
        argv += ["--model", str(path), "--out", str(tmp / "synth")]
        if yaml_text is not None:
            (tmp / "c.yaml").write_text(yaml_text)
            argv += ["--config", str(tmp / "c.yaml")]
        return [*argv, *extra]

    return build


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
        "cfg-unknown-tracker",
        "override `report_to=tensorbord` (a misspelled tracker)",
        overrides("report_to=tensorbord"),
        ("unknown tracker 'tensorbord'", "known: tensorboard, wandb"),
        None,
        None,
        "report_to",
    ),
    Case(
        "retention-file-missing",
        "`data.retention` names no file",
        lambda tmp: train(tmp, f"data.retention={tmp / 'nope.jsonl'}"),
        ("file does not exist",),
        "nope.jsonl",
        None,
        "data.retention",
    ),
    Case(
        "retention-bad-split",
        "a retention QA pair whose `split` is `dev`",
        lambda tmp: train(
            tmp, f"data.retention={write_rows(tmp / 'keep.jsonl', [qa(split='dev')])}"
        ),
        ("must be one of",),
        "keep.jsonl",
        1,
        "split",
    ),
    Case(
        "reference-not-utf8",
        "a `data.reference` text with a byte that is not UTF-8",
        lambda tmp: train(tmp, "data.reference=" + str(write_rows(tmp / "ref.txt", [LATIN1]))),
        ("not valid UTF-8",),
        "ref.txt",
        None,
        "data.reference",
    ),
    Case(
        "reference-blank",
        "a `data.reference` text that is only blank lines",
        lambda tmp: train(tmp, f"data.reference={write_rows(tmp / 'ref.txt', ['', '  '])}"),
        ("no text to measure perplexity on",),
        "ref.txt",
        None,
        "data.reference",
    ),
    Case(
        "export-bad-task-name",
        "`export-lm-eval --task my-task` (lm-eval needs an identifier)",
        lambda tmp: [
            "export-lm-eval",
            "--qa",
            str(write_rows(tmp / "qa.jsonl", QA)),
            "--out",
            str(tmp / "task"),
            "--task",
            "my-task",
        ],
        ("letters, digits and underscores",),
        None,
        None,
        "--task",
    ),
    Case(
        "export-no-questions",
        "`export-lm-eval` of a split the QA file does not have",
        lambda tmp: [
            "export-lm-eval",
            "--qa",
            str(write_rows(tmp / "qa.jsonl", QA[:1])),
            "--out",
            str(tmp / "task"),
        ],
        ("no question to export",),
        None,
        None,
        "--split",
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
        "cfg-token-budget-below-max-length",
        "override `it.max_tokens=64` (below `it.max_length`, 256)",
        overrides("it.max_tokens=64"),
        ("every example must fit in one forward",),
        None,
        None,
        "it.max_tokens",
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
        "cfg-weights-fp16",
        "override `weights=fp16`",
        overrides("weights=fp16"),
        ("must be fp32 or bf16",),
        None,
        None,
        "weights",
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
    Case(
        "exp-only-unknown-arm",
        "`only: [basline]`",
        experiment("only: [basline]\n"),
        ("names an arm that does not exist: 'basline'",),
        "exp.yaml",
        None,
        "only",
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
    # --- knowlearn synth ---
    Case(
        "synth-unknown-key",
        "override `qa_per_doc=3`",
        synth(DOCS, "qa_per_doc=3", model=False),
        ("unknown config key (did you mean 'qa_per_document'?)",),
        None,
        None,
        "qa_per_doc",
    ),
    Case(
        "synth-no-model",
        "no `--model` (nor `model.path`)",
        lambda tmp: [
            a for a in synth(model=False)(tmp) if a not in ("--model", str(tmp / "model"))
        ],
        ("required: a local model directory",),
        None,
        None,
        "model.path",
    ),
    Case(
        "synth-model-missing",
        "`--model` names no folder",
        synth(model=False),
        ("model path does not exist (weights are never downloaded",),
        "model",
        None,
        "model.path",
    ),
    Case(
        "synth-doc-missing-text",
        "a document without `text`",
        synth([DOCS[0], doc(text=None)]),
        ("missing field",),
        D,
        2,
        "text",
    ),
    Case(
        "synth-doc-duplicate-id",
        "two documents with id `d1`",
        synth([DOCS[0], doc(id="d1")]),
        ("duplicate id 'd1' (first on line 1)",),
        D,
        2,
        "id",
    ),
    Case(
        "synth-paraphrase-id-taken",
        "a document with id `d1-p0`, the id the first paraphrase of `d1` would get",
        synth([DOCS[0], doc(id="d1-p0")]),
        ("would get the id d1-p0, which is another document's",),
        D,
        1,
        "id",
        "`knowlearn train` would refuse the paraphrase file",
    ),
    Case(
        "synth-prompt-unknown-placeholder",
        "`qa_prompt` with `{name}` in the YAML",
        synth(yaml_text="qa_prompt: 'About {name}: {text}'\n", model=False),
        ("unknown placeholder {name} (allowed: {title}, {text}, {n}",),
        "c.yaml",
        None,
        "qa_prompt",
    ),
    Case(
        "synth-prompt-no-text",
        "override `paraphrase_prompt` without `{text}`",
        synth(DOCS, "paraphrase_prompt=Rewrite it.", model=False),
        ("has no {text} placeholder: the model would never see the document",),
        None,
        None,
        "paraphrase_prompt",
    ),
    Case(
        "synth-greedy-repeats",
        "`temperature=0` with 3 paraphrases and no `{k}` in the prompt",
        synth(DOCS, "temperature=0", "paraphrase_prompt=Rewrite: {text}", model=False),
        ("greedy decoding (temperature=0) writes the same paraphrase 3 times",),
        None,
        None,
        "temperature",
    ),
    Case(
        "synth-document-too-long",
        "a document whose prompt and `max_new_tokens` exceed the model's positions",
        synth([doc(text="Bo Lindqvist was born in Oslo. " * 60, facts=[])]),
        ("over the model's 512 positions: split the document, or lower max_new_tokens",),
        D,
        1,
        "text",
    ),
    Case(
        "synth-no-chat-template",
        "`chat_template=true` with a tokenizer that has none",
        synth(DOCS, "chat_template=true"),
        ("the tokenizer has no chat template",),
        None,
        None,
        "chat_template",
    ),
    Case(
        "synth-out-is-file",
        "`--out` is a regular file",
        lambda tmp: [*synth()(tmp), "max_new_tokens=64", "--out", str(a_file(tmp))],
        ("is a file, not a folder",),
        "afile",
    ),
    # --- issue 15: inputs that ran silently, crashed, or blocked the corrected rerun ---
    Case(
        "model-no-tokenizer-files",
        "a Qwen2 model folder without tokenizer files",
        lambda tmp: train(
            tmp, f"model.path={tiny_model(tmp, architecture='qwen2', tokenizer=False)}"
        ),
        ("no tokenizer files here",),
        "model",
        None,
        "model.path",
        "transformers built an empty tokenizer: training ran on end-of-text tokens only (loss NaN)",
    ),
    Case(
        "cfg-epochs-vs-exposures",
        "`knowlearn run` of an experiment that sets `cpt.exposures`, with override `cpt.epochs=3`",
        lambda tmp: [
            *_replace(
                tmp, "base: {data: {people: 4}}", "base: {data: {people: 4}, cpt: {exposures: 8}}"
            ),
            "cpt.epochs=3",
        ],
        ("conflicts with cpt.exposures=8", "every arm"),
        "exp.yaml",
        None,
        "cpt.epochs",
        "was: arms that set their own epochs kept them, so arms trained unequally",
    ),
    Case(
        "out-foreign-folder",
        "`out` is a folder with a `data/qa.jsonl` of the user's, not a knowlearn run",
        foreign_folder,
        ("is not a knowlearn run directory",),
        "run",
        note="was: trained on that qa.jsonl while config.yaml said synthetic people",
    ),
    Case(
        "cfg-duplicate-section",
        "the same section twice in a YAML (`cpt:` ... `cpt:`)",
        yaml_file("cpt:\n  lr: 0.01\nit:\n  lr: 0.01\ncpt:\n  epochs: 2\n"),
        ("given twice", "first on line 1"),
        "c.yaml",
        5,
        "cpt",
        "was: the second silently replaced the first",
    ),
    Case(
        "cfg-it-max-length-cuts-answers",
        "override `it.max_length=8`: shorter than every question",
        overrides("it.max_length=8"),
        ("cut every answer off",),
        None,
        None,
        "it.max_length",
        "was: IT trained on no answer token (loss NaN)",
    ),
    Case(
        "cfg-epochs-zero-steps",
        "override `cpt.epochs=1e-9`",
        overrides("cpt.epochs=1e-9"),
        ("round to 0 steps",),
        None,
        None,
        "cpt.epochs",
        "was: CPT trained 0 steps and was marked done; `cpt.epochs=0` still skips on purpose",
    ),
    Case(
        "cfg-exposures-negative",
        "override `it.exposures=-1`",
        overrides("it.exposures=-1"),
        ("must be > 0",),
        None,
        None,
        "it.exposures",
        "was: named `it.epochs`, the field it derives, not the one typed",
    ),
    Case(
        "doc-special-token",
        "`</s>` (the tokenizer's end-of-text token) inside a document",
        user_data(docs=[DOCS[0], doc(text=DOCS[1]["text"] + "</s> More.")]),
        ("special token of the tokenizer",),
        D,
        2,
        "text",
        "was: read as end-of-text, mid-document",
    ),
    Case(
        "qa-special-token",
        "`<|endoftext|>` inside an answer (a model whose tokenizer has it)",
        qa_with_endoftext,
        ("'<|endoftext|>', a special token",),
        Q,
        2,
        "answer",
        "was: read as the special token, so IT taught the model to stop there",
    ),
    Case(
        "qa-duplicate-key",
        "a QA record with `answer` twice",
        user_data(qa=[QA[0], json.dumps(qa())[:-1] + ', "answer": "Bergen"}']),
        ("given twice in one record",),
        Q,
        2,
        "answer",
        "was: the last one silently won",
    ),
    Case(
        "doc-zero-width-text",
        "a document whose `text` is only zero-width spaces (U+200B)",
        user_data(docs=[DOCS[0], doc(text="\u200b\u200b\u200b", facts=[])]),
        ("empty text (only invisible characters)",),
        D,
        2,
        "text",
        "was accepted (str.strip() keeps U+200B)",
    ),
    Case(
        "qa-empty-id",
        'a QA pair with `id` ""',
        user_data(qa=[QA[0], qa(id="")]),
        ("empty string",),
        Q,
        2,
        "id",
        "was accepted",
    ),
    Case(
        "model-vocab-smaller",
        "a model whose vocabulary (16) is smaller than its tokenizer's",
        lambda tmp: train(tmp, f"model.path={tiny_model(tmp, vocab=16)}"),
        ("but the model's vocabulary (vocab_size) holds 16",),
        "model/config.json",
        None,
        "model.path",
        "was an IndexError traceback in the first training step",
    ),
    Case(
        "model-truncated-weights",
        "a `model.safetensors` cut to half its size (an interrupted copy)",
        truncated_weights,
        ("truncated",),
        "model/model.safetensors",
        None,
        "model.path",
        "was a SafetensorError traceback; checked from the header, nothing loaded",
    ),
    Case(
        "model-positions-short",
        "override `model.max_position_embeddings=16`, shorter than the documents",
        overrides("model.max_position_embeddings=16"),
        ("past the model's 16 positions",),
        None,
        None,
        "cpt.max_length",
        "was a traceback on models with learned positions",
    ),
    Case(
        "lora-target-nothing",
        "LoRA `target_modules` that name no module (`[qkv_proj]`)",
        overrides("model.lora.r=4", "model.lora.target_modules=[qkv_proj]"),
        ("'qkv_proj' names no module of this model", "q_proj"),
        None,
        None,
        "model.lora.target_modules",
        "was a ValueError traceback from peft after data and model were written",
    ),
    Case(
        "eval-batch-size-zero",
        "`eval --batch-size 0`",
        lambda tmp: [*eval_model_missing(tmp), "--batch-size", "0"],
        ("must be >= 1, got 0",),
        None,
        None,
        "--batch-size",
        "was a traceback after the model loaded",
    ),
    Case(
        "eval-max-new-tokens-zero",
        "`eval --max-new-tokens 0`",
        lambda tmp: [*eval_model_missing(tmp), "--max-new-tokens", "0"],
        ("must be >= 1, got 0",),
        None,
        None,
        "--max-new-tokens",
        "was a traceback",
    ),
    Case(
        "ask-max-new-tokens-negative",
        "`ask --max-new-tokens -1`",
        lambda tmp: ["ask", "--model", str(tmp), "--max-new-tokens", "-1", "Where was Bo born?"],
        ("must be >= 1, got -1",),
        None,
        None,
        "--max-new-tokens",
        "was a traceback",
    ),
    Case(
        "cfg-people-beyond-pools",
        "override `data.people=10000000`, more than the name pools hold",
        overrides("data.people=10000000"),
        ("unique full names",),
        None,
        None,
        "data.people",
        "was refused after config.yaml was written, so the corrected command was refused too",
    ),
    Case(
        "cfg-question-templates",
        "override `data.question_templates=5` (3 templates exist)",
        overrides("data.question_templates=5"),
        ("must be between 1 and",),
        None,
        None,
        "data.question_templates",
        "as above: now nothing is written, and the corrected rerun runs",
    ),
    Case(
        "exp-in-use",
        "a second `knowlearn run` on an experiment folder that a first one is running",
        experiment_in_use,
        ("is in use by another knowlearn run (pid",),
        "exp",
        note="was: it wiped the first run's seed0.log and quoted its success line as its failure",
    ),
    Case(
        "doc-byte-offsets",
        "a fact span given as UTF-8 byte offsets (`Malmö` after `Björn Åberg`)",
        byte_offsets,
        ("spans are character offsets", "UTF-8 byte offsets"),
        D,
        2,
        "facts[0].start",
    ),
    Case(
        "doc-utf16-offsets",
        "a fact span given as UTF-16 offsets (JavaScript), after an emoji",
        utf16_offsets,
        ("spans are character offsets", "UTF-16"),
        D,
        2,
        "facts[0].value",
    ),
    Case(
        "doc-json-array-file",
        "a pretty-printed JSON array of documents instead of JSONL",
        lambda tmp: [
            *user_data()(tmp),
            f"data.documents={_text(tmp / 'docs.json', json.dumps(DOCS, indent=2))}",
        ],
        ("one JSON array, not JSONL",),
        "docs.json",
        1,
    ),
    Case(
        "doc-gzip",
        "a gzip-compressed documents file",
        encoded_docs(_gzip),
        ("a gzip file",),
        D,
    ),
    Case(
        "doc-utf16-file",
        'a documents file saved as UTF-16 (Windows Notepad\'s "Unicode")',
        encoded_docs(lambda b: b.decode().encode("utf-16")),
        ("UTF-16",),
        D,
    ),
    Case(
        "augment-preview-negative",
        "`augment --preview -1`",
        lambda tmp: ["augment", "--preview", "-1", f"out={tmp / 'run'}"],
        ("must be >= 0",),
        None,
        None,
        "--preview",
        "named `copies`, which the user never set",
    ),
    # --- found trying inputs as a hurried user would ---
    Case(
        "train-experiment-config",
        "`train --config paper` (an experiment, not a run)",
        lambda tmp: ["train", "--config", "paper", f"out={tmp / 'run'}"],
        ("is an experiment (arms x seeds), not one run: knowlearn run --config paper",),
        note="was: 'unknown config key' for `seeds`",
    ),
    Case(
        "run-run-config",
        "`run --config` a run YAML (`cpt:` at the top level)",
        lambda tmp: ["run", "--config", str(_text(tmp / "c.yaml", "cpt: {lr: 0.01}\n"))],
        ("a run setting: put it under `base:`",),
        "c.yaml",
        None,
        "cpt",
    ),
    Case(
        "cfg-empty-value",
        "override `out=` (no value)",
        overrides("out="),
        ("has no value",),
        None,
        None,
        "out",
        "was: 'expected str, got NoneType None'",
    ),
    Case(
        "cfg-config-directory",
        "`--config` names a directory",
        lambda tmp: ["train", "--config", str(tmp), f"out={tmp / 'run'}"],
        ("is a directory, not a YAML config file",),
        ".",
        note="was: 'config file does not exist'",
    ),
    Case(
        "doc-plain-text",
        "a plain .txt file as `data.documents`",
        lambda tmp: [
            *user_data()(tmp),
            f"data.documents={_text(tmp / 'notes.txt', DOCS[0]['text'])}",
        ],
        ("plain text, not JSONL?", "knowlearn import --layout folder"),
        "notes.txt",
        1,
    ),
    Case(
        "doc-files-swapped",
        "`data.documents` and `data.qa` swapped",
        lambda tmp: [
            *user_data()(tmp),
            f"data.documents={tmp / 'qa.jsonl'}",
            f"data.qa={tmp / 'docs.jsonl'}",
        ],
        ("are data.documents and data.qa swapped?",),
        Q,
        1,
        note="was: 'unknown field attribute'",
    ),
    Case(
        "qa-entity-near-miss",
        "a QA entity with a trailing space (`'Bo Lindqvist '`)",
        user_data(qa=[QA[0], qa(entity="Bo Lindqvist ")]),
        ("which has no document (did you mean 'Bo Lindqvist'?)",),
        Q,
        2,
        "entity",
    ),
    Case(
        "qa-split-case",
        "`split` is `Train`",
        user_data(qa=[qa(id="q0", split="Train"), QA[1]]),
        ("(did you mean 'train'?)",),
        Q,
        1,
        "split",
    ),
    Case(
        "lora-alpha-zero",
        "override `model.lora.alpha=0` with `model.lora.r=4`",
        overrides("model.lora.r=4", "model.lora.alpha=0"),
        ("0 trains nothing",),
        None,
        None,
        "model.lora.alpha",
        "was accepted: an adapter scaled by 0 changes nothing",
    ),
    Case(
        "report-unfinished-run",
        "`knowlearn report` on a run directory that has not finished",
        lambda tmp: ["report", str(unfinished_run(tmp))],
        ("the run has not finished", "rerun its `knowlearn train` command"),
        "run",
    ),
    Case(
        "report-missing-dir",
        "`knowlearn report` on a path that does not exist",
        lambda tmp: ["report", str(tmp / "runs" / "nope")],
        ("no such directory",),
        "runs/nope",
    ),
    Case(
        "report-not-a-run",
        "`knowlearn report` on a folder that is neither an experiment nor a run",
        lambda tmp: ["report", str(tmp)],
        ("neither an experiment directory (arms/) nor a run directory (config.yaml)",),
        ".",
    ),
    Case(
        "ask-empty-question",
        "`knowlearn ask` with an empty question",
        lambda tmp: ["ask", "--model", str(tmp), " "],
        ("a question is empty",),
        None,
        None,
        "question",
        "was answered",
    ),
    Case(
        "exp-into-run-dir",
        "`knowlearn run` with `out` a run directory",
        lambda tmp: [
            *experiment("")(tmp),
            f"out={unfinished_run(tmp)}",
        ],
        ("holds a single run (config.yaml), not an experiment",),
        "run",
        note="was: arms/ written inside the run",
    ),
    Case(
        "out-is-experiment",
        "`train out=` an experiment directory",
        lambda tmp: [*train(tmp), f"out={experiment_dir(tmp)}"],
        ("is not a knowlearn run directory",),
        "exp",
    ),
    Case(
        "ask-unfinished-run",
        "`ask --model` a run directory that has not finished",
        lambda tmp: ["ask", "--model", str(unfinished_run(tmp)), "Where was Bo born?"],
        ("has not finished",),
        "run",
        note="was a cut-off tokenizer error",
    ),
    # --- issue 16: knowlearn import ---
    Case(
        "import-array-trailing-comma",
        "an import file that is a JSON array with a comma after its last record",
        import_evidence([], text=json.dumps(EVIDENCE, indent=2)[:-2] + ",\n]"),
        ("malformed JSON: Expecting value",),
        "evidence.json",
        12,
        note="a JSON array is read as records; the error is at the `]` where a record was due",
    ),
    Case(
        "import-evidence-missing-text",
        "an evidence record without `evidence_text`",
        import_evidence([*EVIDENCE, {"title": "Bo", "qa_pairs": []}]),
        ("missing field",),
        "evidence.json",
        12,
        "evidence_text",
    ),
    Case(
        "import-evidence-pair-without-answer",
        "an evidence record's second QA pair without `answer`",
        import_evidence(
            [EVIDENCE[0] | {"qa_pairs": [*EVIDENCE[0]["qa_pairs"], {"question": "Who?"}]}]
        ),
        ("missing field",),
        "evidence.json",
        2,
        "qa_pairs[1].answer",
    ),
    Case(
        "import-pit-mix-as-documents",
        "a PIT file mixing documents and QA given as `--documents`",
        import_pit("--documents", "MIX"),
        ("a QA instance in the documents file", "--mix FILE"),
        "mix.json",
        None,
        "instances[1].text",
        note="was: 'load it with load_pit', from Python only",
    ),
    Case(
        "import-mix-and-documents",
        "`import --layout pit` with both `--mix` and `--documents`",
        import_pit("--mix", "MIX", "--documents", "MIX"),
        ("not both",),
        field="--mix",
    ),
]


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


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
    from knowlearn.pipeline.corpus import prepare_data

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


def _quietly(call: Callable[[], Any]) -> tuple[Any, str, str]:
    """call() with stdout and stderr captured: (its result, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = call()
    return result, out.getvalue(), err.getvalue()


def _strict_json(path: Path) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _lora_merge_false(tmp: Path) -> None:
    pytest.importorskip("peft")
    import os

    from knowlearn.eval.qa import predict
    from knowlearn.models.load import load_model, load_tokenizer

    code, _, err = _quietly(
        lambda: main(train(tmp, "model.lora.r=4", "model.lora.merge=false", "it.epochs=3"))
    )
    assert code == 0, err
    run, it_model = tmp / "run", tmp / "run" / "it" / "model"
    base = json.loads((it_model / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base == str((run / "cpt" / "model").resolve()), (
        "stacks on the CPT model, by absolute path"
    )
    qa = [json.loads(x) for x in (run / "data" / "qa.jsonl").read_text().splitlines()]
    saved = [
        json.loads(x)["prediction"] for x in (run / "predictions.jsonl").read_text().splitlines()
    ]
    here = Path.cwd()
    os.chdir(tmp.parent)  # another folder: the saved model still loads
    try:
        model, tok = load_model(it_model), load_tokenizer(it_model)
    finally:
        os.chdir(here)
    from knowlearn.data.records import QAPair

    again = predict(model, tok, [QAPair(**q) for q in qa])
    assert [p.text for p in again] == saved, "the model scored is the model saved"


def _no_test_split(tmp: Path) -> None:
    rows = [QA[0], qa(split="train")]
    code, out, err = _quietly(lambda: main(user_data(qa=rows)(tmp)))
    assert code == 0, err
    assert "no QA pair has split 'test'" in err
    assert "NaN" not in out
    assert _strict_json(tmp / "run" / "results.json")["qa"].get("test") is None


def _identical_copies(tmp: Path) -> None:
    from knowlearn.config import load_config
    from knowlearn.pipeline.checks import check_inputs

    # No document names its entity, so a heading (the only transform allowed) changes nothing.
    docs = [d | {"text": "She" + d["text"][d["text"].index(" was") :]} for d in DOCS]
    for d in docs:
        shift = len(d["text"]) - len(DOCS[docs.index(d)]["text"])
        d["facts"] = [
            f | {"start": f["start"] + shift, "end": f["end"] + shift} for f in d["facts"]
        ]
    argv = user_data(docs=docs)(tmp)
    cfg = load_config(
        None,
        [a for a in argv if "=" in a]
        + ["augment.cpt.copies=2", "augment.cpt.transforms=[heading]"],
    )
    _, _, err = _quietly(lambda: check_inputs(cfg))
    assert "4 of 4 formatted copies are identical to their document" in err


def _report_empty_results(tmp: Path) -> None:
    pytest.importorskip("matplotlib")
    from knowlearn.report import write_report

    run = tmp / "exp" / "arms" / "baseline" / "seed0"
    run.mkdir(parents=True)
    (run / "results.json").write_text("{}\n")
    md = write_report(tmp / "exp").read_text()
    assert "None: every run has its results.json" not in md
    assert "`arms/baseline/seed0`: results.json holds no QA results" in md


def _nfd_entity(tmp: Path) -> None:
    import unicodedata

    from knowlearn.data.records import read_documents, read_qa

    name = "Jos\u00e9 \u00c1lvarez"
    nfd = unicodedata.normalize("NFD", name)
    text = f"{nfd} was born in Le\u0301on."  # NFD text: the span counts its characters
    start = text.index("Le")
    write_rows(
        tmp / "d.jsonl",
        [
            {
                "id": "d1",
                "entity": name,
                "text": text,
                "facts": [
                    {
                        "attribute": "birth_city",
                        "value": "Le\u0301on",
                        "start": start,
                        "end": start + 5,
                    }
                ],
            }
        ],
    )
    write_rows(tmp / "q.jsonl", [qa(id="q1", entity=nfd, question=f"Where was {nfd} born?")])
    [d] = read_documents(tmp / "d.jsonl")
    [q] = read_qa(tmp / "q.jsonl", entities={d.entity})
    assert q.entity == d.entity == name and name in q.question and name in d.text
    assert d.text[d.facts[0].start : d.facts[0].end] == d.facts[0].value == "L\u00e9on"


def _corrected_rerun(tmp: Path) -> None:
    code, _, err = _quietly(lambda: main(train(tmp, "data.question_templates=5")))
    assert code == 2 and not (tmp / "run" / "config.yaml").exists(), err
    code, _, err = _quietly(lambda: main(train(tmp, "data.question_templates=2")))
    assert code == 0, err


def _wall_time_resume(tmp: Path) -> None:
    from knowlearn.config import load_config
    from knowlearn.io import write_json
    from knowlearn.pipeline.run import run
    from knowlearn.pipeline.rundir import prepare_out_dir

    cfg = load_config(None, [f"out={tmp / 'run'}", *TINY])
    prepare_out_dir(cfg)  # an earlier invocation: 100 s, then Ctrl-C
    write_json(tmp / "run" / "wall_time.json", {"seconds": 100.0, "invocations": 1})
    seconds = _quietly(lambda: run(cfg, progress=False))[0]["seconds"]
    assert seconds["total"] > 100 and seconds["invocations"] == 2


def _paths(tmp: Path) -> None:
    import os

    from knowlearn.config import load_config

    home = os.path.expanduser("~")
    cfg = load_config(None, ["model.path=~/m", "out=~/runs/x"])
    assert cfg.model.path == f"{home}/m" and cfg.out == f"{home}/runs/x"
    cfg = load_config(None, ["data.documents=docs #1.jsonl", "data.qa=qa.jsonl"])
    assert cfg.data.documents == "docs #1.jsonl", "a # in key=value is text"
    (tmp / "cfg").mkdir()
    (tmp / "cfg" / "c.yaml").write_text("out: ~/y\ndata: {documents: d.jsonl, qa: ../q.jsonl}\n")
    cfg = load_config(tmp / "cfg" / "c.yaml")
    assert cfg.out == f"{home}/y"
    assert (cfg.data.documents, cfg.data.qa) == (str(tmp / "cfg" / "d.jsonl"), str(tmp / "q.jsonl"))


def _generate_data_prefix(tmp: Path) -> None:
    code, _, err = _quietly(lambda: main(["generate", "--out", str(tmp), "data.people=4"]))
    assert code == 0, err
    assert len((tmp / "people.jsonl").read_text().splitlines()) == 4


def _typo_before_torch(tmp: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys; from knowlearn.cli import main; code = main(['train', 'cpt.lrr=1']); "
        "assert code == 2 and 'torch' not in sys.modules, sorted(sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "did you mean 'cpt.lr'?" in done.stderr


def _preset_by_name(tmp: Path) -> None:
    import os

    from knowlearn.cli import build_parser, final_model
    from knowlearn.experiment.design import load_experiment

    here = Path.cwd()
    os.chdir(tmp)
    try:
        assert "format" in load_experiment("paper").arms
    finally:
        os.chdir(here)
    args, _ = build_parser().parse_known_args(["train", "--out", "runs/x"])
    assert args.out == "runs/x"
    run = tmp / "run"
    for p in ("it/model", "cpt/model"):
        (run / p).mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")
    (run / "results.json").write_text("{}\n")
    assert final_model(run) == run / "it" / "model", "eval takes a run folder, as ask does"


def _short_run_plots(tmp: Path) -> None:
    pytest.importorskip("matplotlib")
    from knowlearn.report import plots

    figures: list[Any] = []
    saved = plots._save
    plots._save = lambda fig, path: figures.append(fig) or Path(path)
    try:
        plots.training_curves({"a": {"cpt": [(9, 2.0)], "it": [(4, 1.0)]}}, tmp / "t.png")
        plots.probe_vs_qa([("a", 0, 50.0, 0.0), ("b", 0, 50.0, 0.0)], tmp / "p.png")
    finally:
        plots._save = saved
    curves, scatter = figures
    assert all(line.get_marker() == "o" for ax in curves.axes for line in ax.get_lines())
    a, b = scatter.axes[0].collections[:2]
    assert a.get_paths()[0] != b.get_paths()[0] and a.get_sizes()[0] > b.get_sizes()[0]


def _abbreviations(tmp: Path) -> None:
    from knowlearn.data.sentences import split_sentences

    text = "Kai Ito joined Acme Inc. in 1990. He lived at No. 5, born ca. 1960 (b. 1961, d. 2020)."
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "Kai Ito joined Acme Inc. in 1990.",
        "He lived at No. 5, born ca. 1960 (b. 1961, d. 2020).",
    ]


def _exposures_every_arm(tmp: Path) -> None:
    from knowlearn.experiment.design import arm_cfg, load_experiment

    exp = load_experiment("demo", ["cpt.exposures=15", f"out={tmp}"])
    for arm in exp.arms:
        cfg = arm_cfg(exp, arm, 0)
        units, _ = cfg.exposure_units()["cpt"]
        assert cfg.cpt.epochs * units == 15, arm


def _empty_yaml_section(tmp: Path) -> None:
    from knowlearn.config import RunConfig, load_config

    (tmp / "c.yaml").write_text("cpt:\n  # lr: 0.01\n")
    assert load_config(tmp / "c.yaml").cpt == RunConfig().cpt
    assert load_config(tmp / "c.yaml", ["cpt.lr=0.01"]).cpt.lr == 0.01


def _warned(tmp: Path) -> None:
    from knowlearn.config import load_config
    from knowlearn.pipeline.checks import check_inputs

    rows = [QA[0], QA[0] | {"id": "q3", "answer": "Porto"}, QA[1]]
    cfg = load_config(None, [*user_data(qa=rows)(tmp)[3:], "data.validation_fraction=0.3"])
    _, _, err = _quietly(lambda: check_inputs(cfg))
    assert "data.validation_fraction=0.3 holds out nobody" in err
    assert "1 training question(s) have two or more different answers" in err


def _model_path_adapter(tmp: Path) -> None:
    peft = pytest.importorskip("peft")
    from knowlearn.config import load_config
    from knowlearn.models.load import load_model
    from knowlearn.pipeline.checks import check_inputs

    base = tiny_model(tmp)
    model = peft.get_peft_model(load_model(base), peft.LoraConfig(r=2, target_modules=["q_proj"]))
    model.peft_config["default"].base_model_name_or_path = str(base)
    model.save_pretrained(tmp / "adapter")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp / "adapter" / name).write_bytes((base / name).read_bytes())
    cfg = load_config(None, [*TINY, f"out={tmp / 'run'}", f"model.path={tmp / 'adapter'}"])
    _quietly(lambda: check_inputs(cfg))  # no traceback: the adapter's base answers for it


def _import_json_arrays(tmp: Path) -> None:
    from knowlearn.data.records import read_documents

    (tmp / "docs").mkdir()
    (tmp / "docs" / "ada.md").write_text("# Ada Reyes\n\nAda Reyes was born in Lisbon.")
    (tmp / "qa.json").write_text(json.dumps([QA[0] | {"id": "q1"}], indent=2))
    argv = [
        "import",
        "--layout",
        "folder",
        "--folder",
        str(tmp / "docs"),
        "--qa",
        str(tmp / "qa.json"),
    ]
    code, out, _ = _quietly(lambda: main([*argv, "--out", str(tmp / "out")]))
    assert code == 0
    assert "answers located verbatim: 1 (100.0%)" in out
    [doc] = read_documents(tmp / "out" / "documents.jsonl")
    assert [(f.attribute, f.value) for f in doc.facts] == [("birth_city", "Lisbon")]


def _wiki_title_twice(tmp: Path) -> None:
    from knowlearn.data.records import read_documents

    article = {"title": "Ada Reyes", "text": ["Ada Reyes was born in Lisbon."]}
    write_rows(tmp / "wiki.jsonl", [article, article | {"text": "Born in Lisbon, Ada Reyes."}])
    write_rows(tmp / "qa.jsonl", [{"question": "Where?", "answer": "Lisbon", "title": "Ada Reyes"}])
    argv = ["import", "--layout", "wiki2023", "--documents", str(tmp / "wiki.jsonl")]
    argv += ["--qa-test", str(tmp / "qa.jsonl"), "--out", str(tmp / "out")]
    code, out, _ = _quietly(lambda: main(argv))
    assert code == 0
    assert "facts: 2 on 2 of 2 documents; answers attached to several documents: 1" in out
    assert [d.id for d in read_documents(tmp / "out" / "documents.jsonl")] == [
        "Ada_Reyes",
        "Ada_Reyes-2",
    ]


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
    # --- issue 15: inputs that now behave as they should ---
    Accepted(
        "lora-merge-false",
        "`model.lora.merge=false`",
        _lora_merge_false,
        "the IT adapter names the CPT model as its base, by absolute path: it loads from any "
        "folder and answers as scored; was: base + IT adapter, without CPT",
    ),
    Accepted(
        "exposures-every-arm",
        "`knowlearn demo cpt.exposures=15`",
        _exposures_every_arm,
        "the shipped experiments set `cpt.exposures`: every arm's epochs follow it "
        "(exposures / (renderings x texts per rendering)); an epochs override is refused",
    ),
    Accepted(
        "qa-no-test-split",
        "a QA file with no `test` split",
        _no_test_split,
        "trains, warns that nothing held out is scored; results.json is strict JSON (null, "
        "never NaN), as is every JSON file knowlearn writes",
    ),
    Accepted(
        "identical-copies",
        "formats that change nothing (only `heading`, documents that never name their entity)",
        _identical_copies,
        "counted and warned: copies identical to their document are repeats, not formats",
    ),
    Accepted(
        "report-empty-results",
        "a report over a run whose results.json is `{}`",
        _report_empty_results,
        "listed under incomplete runs; was: 'Incomplete runs: None'",
    ),
    Accepted(
        "nfd-entity",
        "an entity name in NFD (decomposed accents) in QA, NFC in documents",
        _nfd_entity,
        "every text is NFC-normalized on read, fact spans with it; was: 'which has no document'",
    ),
    Accepted(
        "corrected-rerun",
        "the corrected command after a refused one (`data.question_templates=5`, then `=2`)",
        _corrected_rerun,
        "every input is checked before the run directory is written, so nothing blocks the rerun",
    ),
    Accepted(
        "wall-time-resume",
        "a run stopped (Ctrl-C) and resumed",
        _wall_time_resume,
        "`seconds.total` adds up every invocation (OUT/wall_time.json); was: the last one only",
    ),
    Accepted(
        "paths",
        "`~` in a path, a `#` in a key=value value, relative paths in a YAML elsewhere",
        _paths,
        "`~` is expanded; key=value values are taken literally; a YAML's relative input paths "
        "are found beside it (a shipped preset's: in the current folder)",
    ),
    Accepted(
        "generate-data-prefix",
        "`knowlearn generate ... data.people=20` (as train spells it)",
        _generate_data_prefix,
        "the same as `people=20`; was: 'did you mean data.people?'",
    ),
    Accepted(
        "typo-before-torch",
        "a config typo (`cpt.lrr=1`)",
        _typo_before_torch,
        "reported before torch and transformers are imported; was: after about 6 s",
    ),
    Accepted(
        "preset-by-name",
        "`--config paper` from any folder; `train --out DIR`; `eval --model RUN_DIR`",
        _preset_by_name,
        "a shipped preset by name; `--out` as `out=`; eval takes a run folder as ask does",
    ),
    Accepted(
        "short-run-plots",
        "plots of runs with a few logged steps, and arms on the same probe/QA point",
        _short_run_plots,
        "curves of few points are drawn with markers (and short stages log every step); "
        "each arm its own marker, smaller on top: no arm hidden",
    ),
    Accepted(
        "empty-yaml-section",
        "a YAML section whose keys are all commented out (`cpt:` alone)",
        _empty_yaml_section,
        "the section's defaults; was: a `cpt.lr=` override into it failed",
    ),
    Accepted(
        "warnings",
        "`data.validation_fraction` that holds out nobody; a question with two answers",
        _warned,
        "both run, and say so: IT's epoch is then not selected; IT teaches both answers",
    ),
    Accepted(
        "model-path-adapter",
        "`model.path` a LoRA adapter directory (no config.json)",
        _model_path_adapter,
        "checked against its base model's config",
    ),
    Accepted(
        "abbreviations",
        "`Inc.`, `Co.`, `No.`, `ca.`, `b.`, `d.` inside a sentence",
        _abbreviations,
        "not sentence ends (one abbreviation list for the splitter and the loaders); and a "
        "transform that adds digits between sentences now breaks the invariant, as letters did",
    ),
    # --- issue 16: knowlearn import ---
    Accepted(
        "import-json-array",
        "a JSON array of records (pretty-printed) where `knowlearn import` reads JSONL",
        _import_json_arrays,
        "read as records, errors at each record's line; was 'malformed JSON: Expecting value' "
        "(`knowlearn train` still wants JSONL and says so)",
    ),
    Accepted(
        "import-title-twice",
        "two Wiki2023 articles with one title (or two files with one entity)",
        _wiki_title_twice,
        "both kept (ids `Title`, `Title-2`); a QA pair naming the title gets a fact in each "
        "document that has the answer; was 'duplicate title'",
    ),
]


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def catalog_message(err: str, tmp: Path) -> str:
    """The error line as the catalog shows it: without the prefix, tmp paths as $TMP, the
    installed package's folder as $KNOWLEARN (the same catalog for every checkout), process
    ids as $PID."""

    line = err.strip().removeprefix("knowlearn: error: ").replace(str(tmp), "$TMP")
    line = line.replace(str(PACKAGE), "$KNOWLEARN")  # wherever the checkout is
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
    assert len(CASES) >= 100


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
    new = sorted(set(after) - set(before))
    assert not new, f"refused before anything is written, so the corrected rerun runs: {new}"
    # The catalog shows this very message.
    row = case_row(case, catalog_message(err, tmp_path))
    assert row in DOC.read_text(encoding="utf-8"), (
        f"docs/bad-inputs.md is stale: regenerate with python scripts/bad_inputs_catalog.py\n{row}"
    )


@pytest.mark.parametrize("accepted", ACCEPTED, ids=lambda a: a.id)
def test_accepted_input(accepted: Accepted, tmp_path: Path) -> None:
    accepted.check(tmp_path)
