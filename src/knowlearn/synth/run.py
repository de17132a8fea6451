"""`knowlearn synth`: read and check everything, then generate what is missing chunk by
chunk (saving each document as it is done), then write the outputs and the summary.

Chunks are fixed before anything is generated: documents sorted by prompt length (little
padding), cut into groups of batch_size. A chunk with any document missing is generated
whole, so every document is always generated beside the same others, and a resumed run
computes exactly what an uninterrupted one would (same batches, same padding).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from knowlearn.data.records import Document, parse_document, read_unique
from knowlearn.errors import KnowlearnError
from knowlearn.faults import kill_point
from knowlearn.models.load import check_model, load_model, load_tokenizer, model_config
from knowlearn.pipeline.checks import special_tokens
from knowlearn.pipeline.rundir import run_dir_lock
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
    lines: list[int] = []

    def parse(obj: dict[str, Any], file: str, line: int) -> Document:
        lines.append(line)
        return parse_document(obj, file, line, reserved)

    return read_unique(path, parse), lines


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


def _check_writer(cfg: SynthConfig) -> PreTrainedTokenizerBase:
    """The model's config and weights checked (none loaded), and its tokenizer; errors name
    the config key, as `knowlearn train`'s do."""
    m = cfg.model
    try:
        check_model(m.path)
    except KnowlearnError as e:
        raise KnowlearnError(e.reason, file=e.file, field="model.path") from None
    try:
        return load_tokenizer(m.tokenizer or m.path, trust_remote_code=m.trust_remote_code)
    except KnowlearnError as e:
        name = "model.tokenizer" if m.tokenizer else "model.path"
        raise KnowlearnError(e.reason, file=e.file, field=name) from None


def _dtype(name: str) -> torch.dtype:
    if name == "auto":
        cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return getattr(torch, name)


def _use_chat_template(cfg: SynthConfig, tok: PreTrainedTokenizerBase) -> bool:
    has_chat = bool(getattr(tok, "chat_template", None))
    if cfg.chat_template and not has_chat:
        raise KnowlearnError(
            "the tokenizer has no chat template: set chat_template=false (plain prompts)",
            field="chat_template",
        )
    return has_chat if cfg.chat_template is None else cfg.chat_template


def _longest(prompts: tuple[list[int] | None, list[list[int]]]) -> int:
    qa, para = prompts
    return max(len(p) for p in ([qa] if qa else []) + para)


def build_prompts(
    cfg: SynthConfig,
    tok: PreTrainedTokenizerBase,
    docs: list[Document],
    lines: list[int],
    chat: bool,
) -> Prompts:
    """Every prompt's token ids; a document whose prompt and answer would not fit in the
    model's positions is refused here, before anything is generated."""
    prompts: Prompts = {}
    limit = model_config(cfg.model.path).get("max_position_embeddings")
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
        prompts[d.id] = (qa, para)
        longest = _longest(prompts[d.id])
        if isinstance(limit, int) and longest + cfg.max_new_tokens > limit:
            raise KnowlearnError(
                f"the prompt is {longest:,} tokens, and with max_new_tokens={cfg.max_new_tokens} "
                f"that is over the model's {limit:,} positions: split the document, or lower "
                "max_new_tokens",
                file=cfg.documents,
                line=line,
                field="text",
            )
    return prompts


def _check_out(out: Path) -> None:
    """`out` must be a folder, or not yet exist under one (refused before anything is written)."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == out else f"is under the file {p}"
                raise KnowlearnError(f"{what}, not a folder: choose another `out`", file=out)
            return


def run_synth(cfg: SynthConfig, progress: bool = True) -> dict[str, Any]:
    """Write QA, paraphrases and documents with their found facts into cfg.out (resumable)."""
    # Everything that can be wrong with the input, before a byte is written.
    tok = _check_writer(cfg)
    docs, lines = read_documents_with_lines(cfg.documents, special_tokens(tok))
    _check_ids(cfg, docs, lines)
    chat = _use_chat_template(cfg, tok)
    prompts = build_prompts(cfg, tok, docs, lines, chat)
    out = Path(cfg.out)
    _check_out(out)

    with run_dir_lock(out):  # a second synth into `out` is refused while this one runs
        dtype = _dtype(cfg.dtype)
        dtype_name = str(dtype).removeprefix("torch.")
        keys = {d.id: generation_key(cfg, chat, dtype_name, d) for d in docs}
        records = {d.id: load_record(out, d.id, keys[d.id]) for d in docs}
        missing = sum(r is None for r in records.values())
        if missing:
            _generate_missing(cfg, tok, docs, prompts, keys, records, dtype, progress)
        reserved = sorted(set(special_tokens(tok)) | set(TINY_SPECIALS))
        outputs = assemble(cfg, docs, records, reserved)  # type: ignore[arg-type]
        paths = write_outputs(out, outputs)
    return {
        **outputs.summary,
        "run": {"generated": missing, "reused": len(docs) - missing},
        "files": {k: os.fspath(v) for k, v in paths.items()},
    }


def _generate_missing(
    cfg: SynthConfig,
    tok: PreTrainedTokenizerBase,
    docs: list[Document],
    prompts: Prompts,
    keys: dict[str, str],
    records: dict[str, dict | None],
    dtype: torch.dtype,
    progress: bool,
) -> None:
    """Generate every chunk with a document not yet saved, saving each document as it is
    done (`records` is filled in)."""
    order = sorted(range(len(docs)), key=lambda i: (_longest(prompts[docs[i].id]), i))
    chunks = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    todo = [c for c in chunks if any(records[docs[i].id] is None for i in c)]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(cfg.model.path, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code)
    model.to(device)
    out = Path(cfg.out)
    done = len(docs) - sum(len(c) for c in todo)
    with tqdm(total=len(docs), initial=done, desc="synth", unit="doc", disable=not progress) as bar:
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
