"""Fuzzing the readers and the config loaders (hypothesis, bounded budget).

Random bytes, and valid records or configs with one thing broken, go into the JSONL
readers, `load_config` and `load_experiment`. The only outcomes allowed are a parsed
result (documents whose fact spans hold their values) or `KnowlearnError`; any other
exception is a bug. KNOWLEARN_FUZZ_EXAMPLES=5000 fuzzes longer than the default 200.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import typing
import unicodedata
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from knowlearn.augment.paraphrase import read_paraphrases
from knowlearn.config import RunConfig, load_config, save_config, to_dict
from knowlearn.data.records import SPLITS, Document, Fact, read_documents, read_qa, write_records
from knowlearn.errors import KnowlearnError
from knowlearn.experiment.design import EXPERIMENT_KEYS, ExperimentConfig, load_experiment

FUZZ = settings(
    max_examples=int(os.environ.get("KNOWLEARN_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,  # nothing written into the tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Characters that break naive readers: surrogates, line and paragraph separators,
# controls (NEL, FS), combining marks, astral symbols.
ODD = ["Zl", "Zp", "Cc", "Mn", "So", "Lu", "Nd"]
TRICKY = st.text(st.characters(categories=["Cs", *ODD]), max_size=4)
TRICKY_VALID = st.text(st.characters(categories=ODD), max_size=4)  # no lone surrogates
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**40),
    st.sampled_from([-(2**63) - 1, 2**64, 10**400]),  # past int64, past float
    st.floats(),  # nan and infinities included
    st.text(max_size=8),
    TRICKY,
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def check_documents(docs: list[Document]) -> None:
    for d in docs:
        d.check()
        assert d.text.strip() and isinstance(d.id, str)


# --- random bytes ----------------------------------------------------------------------

BYTES = st.one_of(
    st.binary(max_size=300),
    st.text(alphabet='{}[]":,.-+eE0123456789 \n\r\tabcdefxyz\\\ufeff\u2028', max_size=300).map(
        lambda t: t.encode("utf-8", "surrogatepass")
    ),
)
SOURCES = [Document("d1", "Ada", "Ada was born in Lisbon.", (Fact("city", "Lisbon", 16, 22),))]


@FUZZ
@given(data=BYTES)
def test_random_bytes_into_the_jsonl_readers(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "x.jsonl", data)
    for read in (read_documents, read_qa, lambda p: read_paraphrases(p, SOURCES).documents):
        try:
            records = read(path)
        except KnowlearnError:
            continue
        if records and isinstance(records[0], Document):
            check_documents(records)


NAMES_FOR_YAML = ["out", "seed", "seeds", "base", "arms", "cpt", "lr", "data", "people", "groups"]
# YAML that parses to odd values: bad dates, huge numbers, tags, anchors, deep nesting.
YAML_LITERALS = [
    "2024-13-45",
    "2024-02-30 25:61:00",
    "1e-3",
    "1_000",
    ".nan",
    "-.inf",
    "0x1F",
    "0o17",
    "9" * 5000,
    "!!binary 'not base64'",
    "!!python/object:os.system x",
    "!!int x",
    "!!float x",
    "&a [*a]",
    "*undefined",
    "[" * 2000,
    "{a: 1, a: 2}",
    "? [a, b]\n: 1",
    "|\n  text",
    "'unclosed",
    "yes",
    "~",
    "[]",
    "{}",
    "- 1",
    "\t1",
]
YAML_TEXT = st.lists(
    st.tuples(
        st.sampled_from(["", "  ", "    "]),
        st.sampled_from([*NAMES_FOR_YAML, "-", "? x"]),
        st.sampled_from(YAML_LITERALS) | st.text(max_size=6),
    ).map(lambda t: f"{t[0]}{t[1]}: {t[2]}"),
    max_size=6,
).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))


@FUZZ
@given(data=BYTES | st.text(max_size=300).map(str.encode) | YAML_TEXT)
def test_random_bytes_into_the_config_loaders(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "c.yaml", data)
    for load in (load_config, load_experiment):
        with contextlib.suppress(KnowlearnError):
            load(path)


# --- near-valid records ----------------------------------------------------------------


@st.composite
def documents(draw: st.DrawFn, i: int) -> dict[str, Any]:
    """A valid document row: text made of filler and fact values, spans exact."""
    text, facts = "", []
    for k in range(draw(st.integers(0, 3))):
        text += draw(st.text(max_size=12))
        value = draw(st.text(min_size=1, max_size=8))
        facts.append(
            {
                "attribute": f"a{k}",
                "value": value,
                "start": len(text),
                "end": len(text) + len(value),
            }
        )
        text += value
    text += draw(st.text(max_size=12)) + "."
    return {
        "id": f"d{i}",
        "entity": draw(st.text(min_size=1, max_size=8)),
        "text": text,
        "facts": facts,
    }


def qa_row(i: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(f"q{i}"),
            "entity": st.sampled_from(["Ada", "Bo"]),
            "attribute": st.text(min_size=1, max_size=6),
            "question": st.text(min_size=1, max_size=20).filter(str.strip),
            "answer": st.text(min_size=1, max_size=10).filter(str.strip),
            "split": st.sampled_from(SPLITS),
        }
    )


def para_row(i: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(f"p{i}"),
            "source": st.just("d1"),
            "text": st.text(max_size=10).map(lambda t: t + " Lisbon " + t),
        }
    )


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into nested dicts and lists."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for k, v in enumerate(obj):
            out += paths(v, (*prefix, k))
    return out


@st.composite
def mutated(draw: st.DrawFn, row: dict[str, Any]) -> dict[str, Any]:
    """The row with one thing broken: a key deleted or renamed, a value of another type,
    a span shifted, or odd unicode inserted into a string."""
    row = json.loads(json.dumps(row))
    path = draw(st.sampled_from(paths(row)))
    *up, last = path
    parent = row
    for k in up:
        parent = parent[k]
    kind = draw(st.sampled_from(["delete", "rename", "retype", "shift", "unicode"]))
    if kind == "delete":
        del parent[last]
    elif kind == "rename" and isinstance(parent, dict):
        parent[draw(st.text(max_size=6) | st.just(last[::-1]))] = parent.pop(last)
    elif kind == "retype":
        parent[last] = draw(JSONISH)
    elif kind == "shift" and isinstance(parent[last], int):
        parent[last] += draw(st.integers(-3, 3))
    elif kind == "unicode" and isinstance(parent[last], str):
        at = draw(st.integers(0, len(parent[last])))
        parent[last] = parent[last][:at] + draw(TRICKY) + parent[last][at:]
    return row


@st.composite
def jsonl(draw: st.DrawFn, make: Any) -> bytes:
    """1-3 valid rows, one of them mutated, as JSONL: ASCII-escaped or raw UTF-8, LF or
    CRLF, with or without a BOM (lone surrogates become bytes that are not UTF-8)."""
    rows = [draw(make(i)) for i in range(draw(st.integers(1, 3)))]
    k = draw(st.integers(0, len(rows) - 1))
    rows[k] = draw(mutated(rows[k]))
    ascii_only = draw(st.booleans())
    end = draw(st.sampled_from(["\n", "\r\n"]))
    text = "".join(json.dumps(r, ensure_ascii=ascii_only) + end for r in rows)
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8", "surrogatepass")


@FUZZ
@given(data=jsonl(documents))
def test_near_valid_documents(tmp_path: Path, data: bytes) -> None:
    try:
        docs = read_documents(write(tmp_path, "d.jsonl", data))
    except KnowlearnError:
        return
    check_documents(docs)
    assert len({d.id for d in docs}) == len(docs)


@FUZZ
@given(data=jsonl(qa_row))
def test_near_valid_qa(tmp_path: Path, data: bytes) -> None:
    try:
        pairs = read_qa(write(tmp_path, "q.jsonl", data), entities={"Ada", "Bo"})
    except KnowlearnError:
        return
    for q in pairs:
        assert q.split in SPLITS and q.question.strip() and q.answer.strip()
        assert q.entity in {"Ada", "Bo"}


@FUZZ
@given(data=jsonl(para_row))
def test_near_valid_paraphrases(tmp_path: Path, data: bytes) -> None:
    try:
        para = read_paraphrases(write(tmp_path, "p.jsonl", data), SOURCES)
    except KnowlearnError:
        return
    check_documents(para.documents)


@st.composite
def valid_documents(draw: st.DrawFn) -> list[Document]:
    rows = [draw(documents(i)) for i in range(draw(st.integers(1, 3)))]
    return [
        Document(
            r["id"],
            r["entity"],
            r["text"] + draw(TRICKY_VALID),
            tuple(Fact(**f) for f in r["facts"]),
        )
        for r in rows
    ]


@FUZZ
@given(docs=valid_documents())
def test_valid_documents_round_trip(tmp_path: Path, docs: list[Document]) -> None:
    """What knowlearn writes, it reads back: any unicode, U+2028 and NEL included (in NFC,
    the form every text is normalized to on read)."""
    assume(all(unicodedata.is_normalized("NFC", d.text + d.entity) for d in docs))
    write_records(tmp_path / "d.jsonl", docs)
    assert read_documents(tmp_path / "d.jsonl") == docs


# --- near-valid configs ----------------------------------------------------------------


def field_names(cls: type = RunConfig) -> list[str]:
    """Every field name of a config dataclass, nested sections included."""
    out = []
    for name, tp in typing.get_type_hints(cls).items():
        out.append(name)
        if dataclasses.is_dataclass(tp):
            out += field_names(tp)
    return out


NAMES = sorted(set(field_names()) | set(field_names(ExperimentConfig)) | {"cpt", "it", "sam", "lr"})
YAMLISH = st.recursive(
    SCALARS | st.dates() | st.sampled_from(["1e-3", ".inf", "no", "[", "~"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def near_valid_config(draw: st.DrawFn) -> dict[str, Any]:
    """The default config as YAML with one leaf replaced by something random."""
    cfg = to_dict(RunConfig())
    path = draw(st.sampled_from(paths(cfg)))
    node = cfg
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = draw(YAMLISH)
    return cfg


def dump(obj: Any) -> bytes:
    return yaml.safe_dump(obj, allow_unicode=True).encode("utf-8", "surrogatepass")


@FUZZ
@given(
    cfg=near_valid_config() | st.dictionaries(st.sampled_from(NAMES), YAMLISH, max_size=4),
    override=st.tuples(
        st.sampled_from([*NAMES, "cpt.lr", "optim.sam.rho", "data.qa"]), st.text(max_size=8)
    ),
)
def test_near_valid_configs(tmp_path: Path, cfg: dict[str, Any], override: tuple[str, str]) -> None:
    path = write(tmp_path, "c.yaml", dump(cfg))
    for overrides in ([], ["=".join(override)]):
        try:
            loaded = load_config(path, overrides)
        except KnowlearnError:
            continue
        assert isinstance(loaded, RunConfig)
        save_config(loaded, tmp_path / "saved.yaml")  # what loads, saves and loads back equal
        assert load_config(tmp_path / "saved.yaml") == loaded


@st.composite
def near_valid_experiment(draw: st.DrawFn) -> dict[str, Any]:
    exp: dict[str, Any] = {
        "out": "runs/fuzz",
        "seeds": [0, 1],
        "base": {"data": {"people": 4}},
        "arms": {"baseline": {}, "sam": {"optim": {"sam": {"rho": 0.05}}}},
        "groups": {"rho": {"param": "optim.sam.rho", "arms": ["baseline", "sam"]}},
        "descriptions": {"baseline": "plain"},
    }
    path = draw(st.sampled_from(paths(exp)))
    node = exp
    for k in path[:-1]:
        node = node[k]
    if draw(st.booleans()) or not isinstance(node, dict):
        node[path[-1]] = draw(YAMLISH)
    else:  # an extra key
        node[draw(st.sampled_from([*EXPERIMENT_KEYS, *NAMES]) | st.text(max_size=5))] = draw(
            YAMLISH
        )
    return exp


@FUZZ
@given(exp=near_valid_experiment())
def test_near_valid_experiments(tmp_path: Path, exp: dict[str, Any]) -> None:
    try:
        loaded = load_experiment(write(tmp_path, "exp.yaml", dump(exp)))
    except KnowlearnError:
        return
    assert isinstance(loaded, ExperimentConfig) and loaded.arms and loaded.seeds
    assert not (tmp_path / "runs").exists(), "loading an experiment does no work"
