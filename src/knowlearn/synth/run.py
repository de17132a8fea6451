"""`knowlearn synth`: read and check everything, then generate what is missing chunk by
chunk (saving each document as it is done), then write the outputs and the summary.

Chunks are fixed before anything is generated: documents sorted by prompt length (little
padding), cut into groups of batch_size. A chunk with any document missing is generated
whole, so every document is always generated beside the same others, and a resumed run
computes exactly what an uninterrupted one would (same batches, same padding).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from knowlearn.data.records import Document, parse_document
from knowlearn.errors import KnowlearnError
from knowlearn.faults import kill_point
from knowlearn.io import read_jsonl
from knowlearn.models.load import check_model, load_model, load_tokenizer, model_config
from knowlearn.pipeline import special_tokens
from knowlearn.synth.config import SynthConfig
from knowlearn.synth.generate import generate_batch, sequence_seed
from knowlearn.synth.prompts import prompt_token_ids, render
from knowlearn.synth.store import (
    assemble,
    generation_key,
    load_record,
    save_record,
    write_outputs,
)

# The tiny default's special tokens: a generated text holding one could not be trained on
# by `knowlearn train` with the tiny model, whatever tokenizer wrote it.
TINY_SPECIALS = ("<pad>", "<s>", "</s>")
# Per document: the QA prompt's token ids (None: no QA asked) and each paraphrase prompt's.
Prompts = dict[str, tuple[list[int] | None, list[list[int]]]]
# Per document: the QA output (text, stopped) and each paraphrase's.
Generations = tuple[tuple[str, bool] | None, list[tuple[str, bool]]]


def read_documents_with_lines(
    path: str | Path, reserved: Collection[str]
) -> tuple[list[Document], list[int]]:
    """Documents as `knowlearn train` reads them, and the line of each (for errors)."""
    seen: dict[str, int] = {}
    lines: list[int] = []

    def parse(obj: dict[str, Any], file: str, line: int) -> Document:
        doc = parse_document(obj, file, line, reserved)
        if doc.id in seen:
            raise KnowlearnError(
                f"duplicate id {doc.id!r} (first on line {seen[doc.id]})",
                file=file,
                line=line,
                field="id",
            )
        seen[doc.id] = line
        lines.append(line)
        return doc

    return read_jsonl(path, parse), lines


def _check_ids(cfg: SynthConfig, docs: list[Document], lines: list[int]) -> None:
    """A paraphrase id must not be a document id (`knowlearn train` refuses the pair)."""
    ids = {d.id for d in docs}
    for d, line in zip(docs, lines, strict=True):
        for k in range(cfg.paraphrases_per_document):
            if f"{d.id}-p{k}" in ids:
                raise KnowlearnError(
                    f"paraphrase {k} of this document would get the id {d.id}-p{k}, which is "
                    "another document's: rename one of them",
                    file=cfg.documents,
                    line=line,
                    field="id",
                )


def _dtype(name: str) -> torch.dtype:
    if name == "auto":
        cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return getattr(torch, name)


def run_synth(cfg: SynthConfig, progress: bool = True) -> dict[str, Any]:
    """Write QA, paraphrases and documents with their found facts into cfg.out (resumable)."""
    # Everything that can be wrong with the input, before a byte is written.
    check_model(cfg.model)
    tok = load_tokenizer(cfg.tokenizer or cfg.model, trust_remote_code=cfg.trust_remote_code)
    docs, lines = read_documents_with_lines(cfg.documents, special_tokens(tok))
    _check_ids(cfg, docs, lines)
    chat = cfg.chat_template
    has_chat = bool(getattr(tok, "chat_template", None))
    if chat is None:
        chat = has_chat
    elif chat and not has_chat:
        raise KnowlearnError(
            "the tokenizer has no chat template: set chat_template=false (plain prompts)",
            field="chat_template",
        )
    prompts: Prompts = {}
    limit = model_config(cfg.model).get("max_position_embeddings")
    for d, line in zip(docs, lines, strict=True):
        qa = None
        if cfg.qa_per_document:
            text = render(cfg.qa_prompt, title=d.entity, text=d.text, n=cfg.qa_per_document)
            qa = prompt_token_ids(tok, text, chat)
        para = [
            prompt_token_ids(
                tok, render(cfg.paraphrase_prompt, title=d.entity, text=d.text, k=k + 1), chat
            )
            for k in range(cfg.paraphrases_per_document)
        ]
        longest = max(len(p) for p in ([qa] if qa else []) + para)
        if isinstance(limit, int) and longest + cfg.max_new_tokens > limit:
            raise KnowlearnError(
                f"the prompt is {longest:,} tokens, and with max_new_tokens={cfg.max_new_tokens} "
                f"that is over the model's {limit:,} positions: split the document, or lower "
                "max_new_tokens",
                file=cfg.documents,
                line=line,
                field="text",
            )
        prompts[d.id] = (qa, para)

    dtype = _dtype(cfg.dtype)
    dtype_name = str(dtype).removeprefix("torch.")
    keys = {d.id: generation_key(cfg, chat, dtype_name, d) for d in docs}
    out = Path(cfg.out)
    records = {d.id: load_record(out, d.id, keys[d.id]) for d in docs}
    missing = [d for d in docs if records[d.id] is None]
    reused = len(docs) - len(missing)

    def length(i: int) -> int:
        qa, para = prompts[docs[i].id]
        return max(len(p) for p in ([qa] if qa else []) + para)

    order = sorted(range(len(docs)), key=lambda i: (length(i), i))
    chunks = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    todo = [c for c in chunks if any(records[docs[i].id] is None for i in c)]
    if todo:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = load_model(cfg.model, dtype=dtype, trust_remote_code=cfg.trust_remote_code)
        model.to(device)
        bar = tqdm(
            total=len(docs),
            initial=len(docs) - sum(len(c) for c in todo),
            desc="synth",
            unit="doc",
            disable=not progress,
            file=sys.stderr,
        )
        for chunk in todo:
            chunk_docs = [docs[i] for i in chunk]
            results = _generate_chunk(cfg, model, tok, chunk_docs, prompts)
            for d in chunk_docs:
                if records[d.id] is None:
                    qa, para = results[d.id]
                    save_record(out, d, keys[d.id], qa, para)
                    records[d.id] = load_record(out, d.id, keys[d.id])
                    kill_point("synth_document")
            bar.update(len(chunk))
        bar.close()
    reserved = sorted(set(special_tokens(tok)) | set(TINY_SPECIALS))
    outputs = assemble(cfg, docs, records, reserved)  # type: ignore[arg-type]
    paths = write_outputs(out, outputs)
    return {
        **outputs.summary,
        "run": {"generated": len(missing), "reused": reused},
        "files": {k: os.fspath(v) for k, v in paths.items()},
    }


def _generate_chunk(
    cfg: SynthConfig,
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    chunk_docs: list[Document],
    prompts: Prompts,
) -> dict[str, Generations]:
    """Each document's (QA output, paraphrase outputs) for one chunk: the QA prompts in
    calls of batch_size rows, then the paraphrase prompts likewise, in a fixed order."""
    rows: list[tuple[str, str, int, list[int]]] = []  # (doc id, kind, k, prompt)
    for d in chunk_docs:
        qa, para = prompts[d.id]
        if qa is not None:
            rows.append((d.id, "qa", 0, qa))
    for d in chunk_docs:
        rows += [(d.id, "paraphrase", k, p) for k, p in enumerate(prompts[d.id][1])]
    texts: dict[tuple[str, str, int], tuple[str, bool]] = {}
    for b in range(0, len(rows), cfg.batch_size):
        batch = rows[b : b + cfg.batch_size]
        gen = generate_batch(
            model,
            tok,
            [r[3] for r in batch],
            [sequence_seed(cfg.seed, r[0], r[1], str(r[2])) for r in batch],
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
        )
        for r, g in zip(batch, gen, strict=True):
            texts[r[:3]] = (g.text, g.stopped)
    return {
        d.id: (
            texts.get((d.id, "qa", 0)),
            [texts[(d.id, "paraphrase", k)] for k in range(cfg.paraphrases_per_document)],
        )
        for d in chunk_docs
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few lines for the terminal (summary.json has all of it)."""

    def drops(counts: dict[str, int]) -> str:
        shown = [f"{r} {n}" for r, n in counts.items() if n]
        return "; dropped: " + ", ".join(shown) if shown else ""

    qa, pa, facts, files = summary["qa"], summary["paraphrases"], summary["facts"], summary["files"]
    loc = qa["answer_located"]
    lost = list(pa["lost_fact_by_document"])
    lines = [
        f"knowlearn synth: {summary['documents']} documents ({summary['run']['generated']} "
        f"generated, {summary['run']['reused']} reused)",
        f"QA: {qa['kept']} kept of {qa['asked']} asked ({qa['split']['train']} train, "
        f"{qa['split']['test']} test; answer found {loc['exact']} verbatim, "
        f"{loc['case_insensitive']} ignoring case, {loc['none']} not){drops(qa['dropped'])}",
        f"paraphrases: {pa['kept']} kept of {pa['asked']} asked{drops(pa['dropped'])}"
        + (
            f" (lost a fact: {', '.join(lost[:5])}{', ...' if len(lost) > 5 else ''})"
            if lost
            else ""
        ),
        f"facts: {facts['given']} given, {facts['found']} found by QA; "
        f"{facts['documents_without_facts']} documents without any",
    ]
    lines += [f"{name}: {path}" for name, path in files.items()]
    if "qa" in files:
        para = f" augment.paraphrases={files['paraphrases']}" if "paraphrases" in files else ""
        lines.append(
            f"train on them: knowlearn train data.documents={files['documents']} "
            f"data.qa={files['qa']}{para}"
        )
    return "\n".join(lines)
