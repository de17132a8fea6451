"""Are entity names the same tokens in the documents as in the questions?

A question says "... of Aiko Beckett Wagner?", so the model is asked about the tokens of
" Aiko Beckett Wagner". If a document spells the same name with other tokens ("Aiko" at
the start of a text, "[Aiko" or "**Aiko" merged by a formatting transform, "Wagner's" as one
piece), a model trained from scratch learned the fact about tokens it is never asked about.
This report measures how often that happens, on the documents as the model reads them
(document_text_for_model).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from knowlearn.data.prompts import DOC_PREFIX, document_text_for_model
from knowlearn.data.records import Document

MAX_EXAMPLES = 5
_CONTEXT = 12  # characters of left context shown per example
_CHUNK = 512  # documents tokenized at once


def _occurrences(text: str, name: str) -> list[int]:
    """Start of every non-overlapping occurrence of `name` in `text`."""
    out, k = [], text.find(name)
    while k >= 0 and name:
        out.append(k)
        k = text.find(name, k + len(name))
    return out


def _span_ids(
    ids: Sequence[int], offsets: Sequence[tuple[int, int]], start: int, end: int
) -> list[int]:
    """The tokens overlapping [start, end), including one that straddles either edge."""
    return [t for t, (s, e) in zip(ids, offsets, strict=True) if e > s and s < end and e > start]


def _encoded(
    tokenizer: PreTrainedTokenizerBase, docs: Sequence[Document]
) -> Iterator[tuple[Document, str, list[int], list[tuple[int, int]]]]:
    """(document, text as the model reads it, ids, offsets into that text)."""
    for c in range(0, len(docs), _CHUNK):
        batch = docs[c : c + _CHUNK]
        texts = [document_text_for_model(d.text) for d in batch]
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        yield from zip(batch, texts, enc["input_ids"], enc["offset_mapping"], strict=True)


def _occurrence_ids(
    text: str, ids: Sequence[int], offsets: Sequence[tuple[int, int]], name: str
) -> Iterator[tuple[int, list[int]]]:
    """(start, tokens) per occurrence of `name` in `text`. The space before the name, if
    any, is part of the span: the question's " name" owns it (a tokenizer may give it a
    token of its own)."""
    for start in _occurrences(text, name):
        lo = start - 1 if start and text[start - 1] == " " else start
        yield start, _span_ids(ids, offsets, lo, start + len(name))


def entity_token_mismatch(
    tokenizer: PreTrainedTokenizerBase,
    docs: Sequence[Document],
    entity_names: Collection[str] | None = None,
) -> dict[str, Any]:
    """Share (%) of occurrences of each document's entity name (Document.entity) in its text
    as the model reads it (document_text_for_model) whose tokens differ from the question's
    tokens of " " + name.

    An occurrence's tokens are those overlapping the name's characters; they match only if
    they are exactly the question's ids (so a token straddling an edge, "**Aiko", differs).
    `entity_names` restricts the count to documents about those entities (e.g. the QA-test
    people); None counts every document. Returns occurrences, mismatched, share (0.0 when
    there are no occurrences) and up to MAX_EXAMPLES distinct (left context, tokens) pairs.
    """
    chosen = [d for d in docs if d.entity and (entity_names is None or d.entity in entity_names)]
    expected: dict[str, list[int]] = {}
    n = k = 0
    examples: list[tuple[str, list[str]]] = []
    for d, text, ids, offsets in _encoded(tokenizer, chosen):
        if d.entity not in expected:
            expected[d.entity] = tokenizer(" " + d.entity, add_special_tokens=False)["input_ids"]
        for start, got in _occurrence_ids(text, ids, offsets, d.entity):
            n += 1
            if got == expected[d.entity]:
                continue
            k += 1
            left = repr(text[max(len(DOC_PREFIX), start - _CONTEXT) : start])
            example = (left, tokenizer.convert_ids_to_tokens(got))
            if len(examples) < MAX_EXAMPLES and example not in examples:
                examples.append(example)
    return {
        "occurrences": n,
        "mismatched": k,
        "share": 100 * k / n if n else 0.0,
        "examples": examples,
    }
