"""The paper's probe: can the model predict a fact's tokens in a context it never trained on?

Two kinds of unseen context for the people whose QA is held out:
- templates (the paper's probe, name-only): for every attribute and every held-out sentence
  template (the last ones of each attribute in bios_data/templates.yaml, never used for
  training documents), one sentence on its own that names the person in full and states the
  value. No earlier sentence can give the answer away, and the set does not depend on
  permute, renderings or seeds, so every arm is probed on the same sentences. Synthetic
  biographies only;
- formats: their training documents in a freshly sampled format (a new chain from every
  formatting transform, drawn with a seed no training copy uses).
Accuracy is teacher-forced over the fact tokens (eval/facts.py). The paper finds it
correlates with QA accuracy; the report tests that across arms and seeds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from knowlearn.augment.apply import format_documents
from knowlearn.config import FormatConfig, RunConfig
from knowlearn.data import bios
from knowlearn.data.records import Document, QAPair
from knowlearn.eval.facts import fact_accuracy, fact_token_correct

PROBE_SEED = 1_000_003  # formats drawn with this seed are never drawn for training copies


def probe_sentences_for(
    test_entities: Collection[str],
    people: Sequence[bios.Person],
    *,
    value_first: bool = False,
) -> list[Document]:
    """The name-only probe sentences (bios.probe_sentences) of the people named in
    `test_entities` (the QA-test people: their facts were only ever read, never asked)."""
    return bios.probe_sentences(
        [p for p in people if p.name in test_entities], value_first=value_first
    )


def probe_documents(
    cfg: RunConfig, docs: Sequence[Document], qa: Sequence[QAPair]
) -> dict[str, list[Document]]:
    """Unseen-context documents about the QA-test people, by kind."""
    test_entities = {q.entity for q in qa if q.split == "test"}
    first: dict[str, Document] = {}
    for d in docs:
        if d.entity in test_entities:
            first.setdefault(d.entity, d)  # one document per person
    out = {
        "formats": format_documents(
            list(first.values()), FormatConfig(copies=1, include_original=False), seed=PROBE_SEED
        )
    }
    if cfg.data.documents is None:
        people = bios.sample_people(cfg.data.people, cfg.data.seed)
        out["templates"] = probe_sentences_for(
            test_entities, people, value_first=cfg.data.value_first
        )
    return out


def run_probe(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    probe_docs: dict[str, list[Document]],
    batch_size: int = 64,
) -> dict[str, Any]:
    return {
        kind: fact_accuracy(fact_token_correct(model, tok, ds, batch_size=batch_size))
        for kind, ds in probe_docs.items()
        if ds
    }
