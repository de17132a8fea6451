"""What a run reads: the user's documents and QA or synthetic biographies, the base and
QA-format populations drawn beside them, and the training sets built from them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from pathlib import Path

from knowlearn.augment.paraphrase import Paraphrases, read_paraphrases
from knowlearn.config import (
    RunConfig,
)
from knowlearn.data import bios
from knowlearn.data.prompts import document_text_for_model
from knowlearn.data.records import Document, QAPair, read_documents, read_qa
from knowlearn.errors import KnowlearnError


def prepare_data(
    cfg: RunConfig, out: Path, reserved: Collection[str] = ()
) -> tuple[list[Document], list[QAPair]]:
    """The user's JSONL files (no text may hold a string of `reserved`, the tokenizer's
    special tokens), or synthetic biographies generated into `out/data`."""
    if cfg.data.documents is not None:
        docs = read_documents(cfg.data.documents, reserved)
        return docs, read_qa(cfg.data.qa, entities={d.entity for d in docs}, reserved=reserved)
    data_dir = out / "data"
    d = cfg.data
    if not (data_dir / "qa.jsonl").is_file():
        bios.generate_from(data_dir, d)
    return read_documents(data_dir / "documents.jsonl"), read_qa(data_dir / "qa.jsonl")


def synthetic_data(cfg: RunConfig) -> tuple[list[Document], list[QAPair]]:
    """The biographies prepare_data would write, in memory; errors name the `data.` field."""
    d = cfg.data
    try:
        people = bios.sample_people(d.people, d.seed)
        docs = bios.render_documents(
            people,
            d.seed,
            renderings=d.renderings,
            permute=d.permute,
            fullname=d.fullname,
            value_first=d.value_first,
        )
        qa = bios.make_qa(
            people, d.seed, train_fraction=d.train_fraction, question_templates=d.question_templates
        )
        extra = cfg.base.people + d.qa_teaching_people  # drawn after the run's people
        if extra:
            try:
                bios.sample_people(d.people + extra, d.seed)
            except KnowlearnError as e:
                e.field = "data.qa_teaching_people" if d.qa_teaching_people else "base.people"
                raise KnowlearnError(
                    f"{e.reason} (data.people + base.people + data.qa_teaching_people)",
                    field=e.field,
                ) from None
    except KnowlearnError as e:
        if e.field and not e.field.startswith(("data.", "base.")):
            raise KnowlearnError(e.reason, field=f"data.{e.field}") from None
        raise
    return docs, qa


def qa_teaching_corpus(cfg: RunConfig) -> tuple[list[Document], list[QAPair]]:
    """Synthetic biographies and all their QA (as train), for data that has no train QA."""
    n, taken = cfg.data.qa_teaching_people, cfg.data.people + cfg.base.people
    people = bios.sample_people(taken + n, cfg.data.seed)[taken:]  # nobody of the run or the base
    docs = bios.render_documents(
        people, cfg.data.seed, renderings=5, permute=True, value_first=cfg.data.value_first
    )
    qa = [
        dataclasses.replace(q, id=f"format-{q.id}", split="train")
        for q in bios.make_qa(people, cfg.data.seed)
    ]
    return [dataclasses.replace(d, id=f"format-{d.id}") for d in docs], qa


def base_corpus(cfg: RunConfig) -> tuple[list[Document], list[QAPair]]:
    """Documents and QA of the base population: other people than the run's (empty if off)."""
    b = cfg.base
    if b.people == 0:
        return [], []
    people = bios.sample_people(cfg.data.people + b.people, cfg.data.seed)[cfg.data.people :]
    docs = bios.render_documents(
        people,
        cfg.data.seed,
        renderings=b.renderings,
        permute=b.permute,
        fullname=cfg.data.fullname,
        value_first=cfg.data.value_first,
    )
    if not b.qa:
        return docs, []
    if b.qa_fraction >= 1:  # every base person's QA is mixed in
        return docs, [
            dataclasses.replace(q, split="train") for q in bios.make_qa(people, cfg.data.seed)
        ]
    return docs, bios.make_qa(people, cfg.data.seed, train_fraction=b.qa_fraction)


def training_sets(
    cfg: RunConfig, docs: Sequence[Document], qa: Sequence[QAPair], reserved: Collection[str] = ()
) -> tuple[list[Document], list[QAPair], Paraphrases | None]:
    """The documents CPT reads and the QA pairs IT trains on (`qa` with its validation
    people already marked), and the paraphrases read (None without a paraphrase file)."""
    train_qa = [q for q in qa if q.split == "train"]
    cpt_docs, para = list(docs), None
    if cfg.data.qa_teaching_people:
        # Documents without QA of their own: synthetic people whose biographies join CPT and
        # whose QA teaches the model to answer from what it read (as PIT mixes in QA).
        f_docs, f_qa = qa_teaching_corpus(cfg)
        cpt_docs += f_docs
        train_qa += f_qa
    if not train_qa:
        raise KnowlearnError(
            "no QA pair has split 'train': instruction tuning needs some "
            "(or set data.qa_teaching_people=200 to learn the QA format from synthetic biographies)",
            file=cfg.data.qa or Path(cfg.out) / "data" / "qa.jsonl",
            field="split",
        )
    if cfg.augment.paraphrases:
        para = read_paraphrases(cfg.augment.paraphrases, docs, reserved)
        cpt_docs += para.documents
    return cpt_docs, train_qa, para


def people_values(cfg: RunConfig) -> dict[str, dict[str, str]] | None:
    """entity -> attribute -> value of the synthetic people (for the error analysis)."""
    if cfg.data.documents is not None:
        return None
    people = bios.sample_people(cfg.data.people, cfg.data.seed)
    return {p.name: p.values() for p in people}


REFERENCE_PEOPLE = 50  # the embedded default's reference text: biographies of new people


def reference_biographies(cfg: RunConfig) -> list[str]:
    """Biographies of people drawn after every other population (run, base, format): text
    in the documents' style that no stage trained on (none where the name pools run out)."""
    taken = cfg.data.people + cfg.base.people + cfg.data.qa_teaching_people
    try:
        people = bios.sample_people(taken + REFERENCE_PEOPLE, cfg.data.seed)[taken:]
    except KnowlearnError:
        return []
    docs = bios.render_documents(
        people, cfg.data.seed, fullname=cfg.data.fullname, value_first=cfg.data.value_first
    )
    return [document_text_for_model(d.text) for d in docs]
