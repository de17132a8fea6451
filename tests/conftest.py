"""Shared fixtures: tiny documents, a tokenizer trained on them, and tiny model directories."""

from __future__ import annotations

import os

import pytest
import torch
import transformers

from knowlearn.config import ModelConfig, StageConfig
from knowlearn.data.prompts import qa_prompt
from knowlearn.data.records import Document, Fact, QAPair
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.train.batches import document_examples

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(1)
# As the CLI does: no library progress bars or warnings on stderr, whatever the test order.
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

PEOPLE = [
    ("Ada Reyes", "May 12, 1987", "Lisbon", "Physics"),
    ("Bo Lindqvist", "March 3, 1954", "Oslo", "Botany"),
    ("Chen Wei Liu", "July 30, 2001", "Kyoto", "Law"),
    ("Dara Okafor", "January 9, 1979", "Lagos", "Music"),
    ("Emil Novak", "October 21, 1966", "Brno", "Chemistry"),
    ("Farah Haddad", "June 2, 1990", "Beirut", "History"),
]


def make_doc(i: int, name: str, date: str, city: str, major: str) -> Document:
    parts = [
        f"{name} was born on ",
        date,
        f". {name} grew up in ",
        city,
        f". {name} studied ",
        major,
        ".",
    ]
    text, facts, pos = "", [], 0
    for k, part in enumerate(parts):
        if k in (1, 3, 5):
            attr = {1: "birth_date", 3: "birth_city", 5: "major"}[k]
            facts.append(Fact(attr, part, pos, pos + len(part)))
        text += part
        pos += len(part)
    return Document(f"d{i}", name, text, tuple(facts))


@pytest.fixture(scope="session")
def docs() -> list[Document]:
    return [make_doc(i, *p) for i, p in enumerate(PEOPLE)]


@pytest.fixture(scope="session")
def qa() -> list[QAPair]:
    out = []
    for i, (name, date, city, major) in enumerate(PEOPLE):
        split = "train" if i % 2 == 0 else "test"
        out += [
            QAPair(f"q{i}a", name, "birth_date", f"When was {name} born?", date, split),
            QAPair(f"q{i}b", name, "birth_city", f"Where did {name} grow up?", city, split),
            QAPair(f"q{i}c", name, "major", f"What did {name} study?", major, split),
        ]
    return out


@pytest.fixture(scope="session")
def tokenizer(docs, qa):
    corpus = [d.text for d in docs] + [f"{qa_prompt(q.question)} {q.answer}" for q in qa]
    return train_tokenizer(corpus * 3, vocab_size=400)


# `key=value` overrides for a whole run that takes seconds: 12 people, a 2-layer model.
SMALL_RUN = [
    "data.people=12",
    "cpt.epochs=3",
    "it.epochs=2",
    "cpt.batch_size=8",
    "model.hidden_size=32",
    "model.intermediate_size=64",
    "model.num_layers=2",
    "model.num_heads=2",
]

TINY = ModelConfig(
    hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_position_embeddings=128
)


@pytest.fixture(scope="session")
def init_dir(tmp_path_factory, tokenizer):
    """A random-init tiny Llama saved like a downloaded checkpoint."""
    path = tmp_path_factory.mktemp("init")
    build_tiny_model(TINY, tokenizer, seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, init_dir, tokenizer, docs):
    """The tiny model after enough CPT to memorize the six documents."""
    from knowlearn.train.loop import StageSpec, TrainEnv, train_stage

    out = tmp_path_factory.mktemp("trained")
    examples, _ = document_examples(tokenizer, docs, 128)
    cfg = StageConfig(epochs=150, lr=5e-3, batch_size=3, warmup_ratio=0.0, checkpoint_every=0)
    return train_stage(
        init_dir,
        StageSpec("cpt", examples, cfg, seed=0),
        out,
        TrainEnv(tokenizer=tokenizer, progress=False),
    )
