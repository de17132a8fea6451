"""Where generation is kept and what is written from it.

Generation is the expensive part, so each document's raw outputs are saved as soon as
they exist, one small JSON file per document under OUT/generations/, written atomically
and keyed by a hash of everything that decides them (the document, the model files, the
prompts, the seed, ...). A rerun reuses every record whose key matches and generates the
rest. The output files are then built from the records alone (parsing and checks are
cheap and deterministic), so a run killed at any point and rerun writes the same bytes
as one never killed, and changing only a check (max_answer_words, near_duplicate, ...)
rewrites the outputs without generating anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowlearn.data.loaders import DEFAULT_ATTRIBUTE
from knowlearn.data.records import Document, Fact, QAPair, write_records
from knowlearn.io import atomic_open, write_json, write_jsonl
from knowlearn.models.load import WEIGHT_FILES
from knowlearn.synth.checks import (
    PARAPHRASE_REASONS,
    QA_REASONS,
    Dropped,
    check_paraphrases,
    check_qa,
    with_facts,
)
from knowlearn.synth.config import SynthConfig

GENERATIONS = "generations"
UNPARSED = ("malformed", "unfinished")  # QA drops that were never a whole Q/A pair
OUTPUTS = {
    "qa": "qa.jsonl",
    "paraphrases": "paraphrases.jsonl",
    "documents": "documents_with_facts.jsonl",
    "dropped": "dropped.jsonl",
    "summary": "summary.json",
}


def model_fingerprint(path: str | Path) -> list[Any]:
    """Name, size and mtime of the model's config and weight files: a model retrained or
    replaced in place gives other keys, so its predecessor's records are not reused."""
    p = Path(path)
    names = ("config.json", "adapter_config.json", "adapter_model.safetensors", *WEIGHT_FILES)
    out = []
    for name in names:
        f = p / name
        if f.is_file():
            st = f.stat()
            out.append([name, st.st_size, st.st_mtime_ns])
    return [os.path.abspath(p), out]


def generation_key(cfg: SynthConfig, chat_template: bool, dtype: str, doc: Document) -> str:
    """Hash of what decides a document's generated text (not batch_size, nor the checks)."""
    parts = {
        "model": model_fingerprint(cfg.model.path),
        "tokenizer": os.path.abspath(cfg.model.tokenizer) if cfg.model.tokenizer else None,
        "chat_template": chat_template,
        "dtype": dtype,
        "qa_prompt": cfg.qa_prompt,
        "paraphrase_prompt": cfg.paraphrase_prompt,
        "qa_per_document": cfg.qa_per_document,
        "paraphrases_per_document": cfg.paraphrases_per_document,
        "max_new_tokens": cfg.max_new_tokens,
        "seed": cfg.seed,
        "temperature": cfg.temperature,
        "document": [doc.id, doc.entity, doc.text],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def record_path(out: Path, doc_id: str) -> Path:
    """One file per document, named by a hash of its id (ids may hold any character)."""
    return out / GENERATIONS / (hashlib.sha256(doc_id.encode()).hexdigest()[:24] + ".json")


def load_record(out: Path, doc_id: str, key: str) -> dict[str, Any] | None:
    """The saved outputs of a document, or None if missing, unreadable or from other settings."""
    try:
        rec = json.loads(record_path(out, doc_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("key") != key:
        return None

    def output(x: Any) -> bool:  # [text, stopped]
        return (
            isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and x[1] in (True, False)
        )

    paraphrases = rec.get("paraphrases")
    ok = (rec.get("qa") is None or output(rec["qa"])) and (
        isinstance(paraphrases, list) and all(output(p) for p in paraphrases)
    )
    return rec if ok else None


def save_record(
    out: Path, doc: Document, key: str, qa: tuple[str, bool] | None, paraphrases: list
) -> None:
    rec = {
        "key": key,
        "id": doc.id,
        "qa": list(qa) if qa is not None else None,
        "paraphrases": [list(p) for p in paraphrases],
    }
    with atomic_open(record_path(out, doc.id)) as f:
        f.write(json.dumps(rec, ensure_ascii=False))


def split_of(entities: Sequence[str], test_fraction: float, seed: int) -> dict[str, str]:
    """A deterministic per-entity split: round(test_fraction x entities) held out ("test"),
    chosen by a hash of (seed, entity), so it depends on neither order nor the other files;
    at least one entity stays in "train" (instruction tuning needs some)."""
    names = sorted(set(entities))

    def draw(entity: str) -> str:
        return hashlib.sha256(f"synth-split/{seed}/{entity}".encode()).hexdigest()

    n_test = min(round(test_fraction * len(names)), len(names) - 1)
    test = set(sorted(names, key=draw)[:n_test])
    return {e: "test" if e in test else "train" for e in names}


@dataclass
class Outputs:
    qa: list[QAPair] = field(default_factory=list)
    paraphrases: list[dict[str, str]] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Tally:
    """The counts summary.json reports, gathered while assembling."""

    located: Counter[str] = field(default_factory=Counter)
    lost_by_doc: Counter[str] = field(default_factory=Counter)
    parsed: int = 0
    without_qa: int = 0
    found: int = 0


def assemble(
    cfg: SynthConfig,
    docs: Sequence[Document],
    records: dict[str, dict],
    reserved: Collection[str] = (),
) -> Outputs:
    """Parse and check every document's saved outputs, in document order; `reserved`:
    special tokens no kept text may hold."""
    split = split_of([d.entity for d in docs], cfg.test_fraction, cfg.seed)
    out, tally = Outputs(), _Tally()
    seen: dict[str, set[str]] = {}
    for doc in docs:
        rec = records[doc.id]
        facts = []
        if rec["qa"] is not None:
            facts = _add_qa(cfg, doc, rec["qa"], split[doc.entity], seen, reserved, out, tally)
        full = with_facts(doc, facts)
        tally.found += len(full.facts) - len(doc.facts)
        out.documents.append(full)
        kept_p, dropped_p = check_paraphrases(
            full,
            [tuple(p) for p in rec["paraphrases"]],
            near_duplicate=cfg.near_duplicate,
            reserved=reserved,
        )
        out.dropped += dropped_p
        for d in dropped_p:
            if d.reason == "lost_fact":
                tally.lost_by_doc[doc.id] += 1
        out.paraphrases += [
            {"id": f"{doc.id}-p{k}", "source": doc.id, "text": text} for k, text in kept_p
        ]
    out.summary = _summary(cfg, docs, out, tally)
    return out


def _add_qa(
    cfg: SynthConfig,
    doc: Document,
    saved: tuple[str, bool],
    split: str,
    seen: dict[str, set[str]],
    reserved: Collection[str],
    out: Outputs,
    tally: _Tally,
) -> list[Fact]:
    """One document's written QA checked into `out`; the facts its answers located."""
    text, stopped = saved
    kept, dropped = check_qa(
        doc,
        text,
        stopped,
        wanted=cfg.qa_per_document,
        max_answer_words=cfg.max_answer_words,
        require_entity=cfg.require_entity,
        keep_unlocated=cfg.keep_unlocated,
        seen_questions=seen.setdefault(doc.entity, set()),
        reserved=reserved,
    )
    tally.parsed += len(kept) + sum(d.reason not in UNPARSED for d in dropped)
    out.dropped += dropped
    tally.without_qa += not kept
    facts = []
    for q in kept:
        tally.located["exact" if q.exact else "case_insensitive" if q.fact else "none"] += 1
        out.qa.append(
            QAPair(
                id=f"{doc.id}-q{q.index}",
                entity=doc.entity,
                attribute=q.fact.attribute if q.fact else DEFAULT_ATTRIBUTE,
                question=q.question,
                answer=q.answer,
                split=split,
            )
        )
        if q.fact:
            facts.append(q.fact)
    return facts


def _summary(
    cfg: SynthConfig, docs: Sequence[Document], out: Outputs, tally: _Tally
) -> dict[str, Any]:
    """summary.json: what was asked, parsed, kept and dropped (and why), facts found."""
    qa_drops = Counter(d.reason for d in out.dropped if d.kind == "qa")
    p_drops = Counter(d.reason for d in out.dropped if d.kind == "paraphrase")
    return {
        "documents": len(docs),
        "qa": {
            "asked": len(docs) * cfg.qa_per_document,
            "parsed_pairs": tally.parsed,
            "kept": len(out.qa),
            "dropped": {r: qa_drops[r] for r in QA_REASONS},
            "answer_located": {k: tally.located[k] for k in ("exact", "case_insensitive", "none")},
            "split": {s: sum(q.split == s for q in out.qa) for s in ("train", "test")},
            "documents_without_qa": tally.without_qa if cfg.qa_per_document else len(docs),
        },
        "paraphrases": {
            "asked": len(docs) * cfg.paraphrases_per_document,
            "kept": len(out.paraphrases),
            "dropped": {r: p_drops[r] for r in PARAPHRASE_REASONS},
            "lost_fact_by_document": dict(sorted(tally.lost_by_doc.items())),
        },
        "facts": {
            "given": sum(len(d.facts) for d in docs),
            "found": tally.found,
            "documents_without_facts": sum(not d.facts for d in out.documents),
        },
    }


def write_outputs(out_dir: Path, outputs: Outputs) -> dict[str, Path]:
    """The output files, each atomically; qa.jsonl / paraphrases.jsonl only when non-empty
    (an empty JSONL file is refused by every reader), and a stale one removed."""
    paths = {name: out_dir / file for name, file in OUTPUTS.items()}
    write_records(paths["documents"], outputs.documents)
    for name, rows in (
        ("qa", [q.to_dict() for q in outputs.qa]),
        ("paraphrases", outputs.paraphrases),
    ):
        if rows:
            write_jsonl(paths[name], rows)
        else:
            paths.pop(name).unlink(missing_ok=True)
    write_jsonl(
        paths["dropped"],
        (
            {"kind": d.kind, "reason": d.reason, "document": d.document, "text": d.text}
            | ({"detail": d.detail} if d.detail else {})
            for d in outputs.dropped
        ),
    )
    write_json(paths["summary"], outputs.summary)
    return paths
