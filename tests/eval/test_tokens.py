"""The token consistency report: entity names read as the question's tokens, or not."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from knowlearn.data import bios
from knowlearn.data.prompts import document_text_for_model, qa_prompt
from knowlearn.data.records import Document
from knowlearn.eval.tokens import MAX_EXAMPLES, entity_token_mismatch
from knowlearn.models.tiny import train_tokenizer

NAME = "Aiko Beckett Wagner"


@pytest.fixture(scope="module")
def bios_docs() -> list[Document]:
    people = bios.sample_people(8, 0)
    return bios.render_documents(people, 0, renderings=2) + bios.render_documents(
        people, 1, fullname=False
    )


@pytest.fixture(scope="module")
def byte_tok(bios_docs):
    """Byte-level BPE as the pipeline trains it, on the documents as the model reads them."""
    people = bios.sample_people(8, 0)
    corpus = [document_text_for_model(d.text) for d in bios_docs]
    corpus += [f"{qa_prompt(q.question)} {q.answer}" for q in bios.make_qa(people, 0)]
    return train_tokenizer(corpus * 3, vocab_size=500)


def metaspace_tok(corpus: list[str]) -> PreTrainedTokenizerFast:
    """SentencePiece-like BPE (split on spaces only), so "**Aiko" can become one token."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def test_plain_documents_after_the_leading_space_fix_all_match(bios_docs, byte_tok):
    result = entity_token_mismatch(byte_tok, bios_docs)
    assert result["occurrences"] == sum(d.text.count(d.entity) for d in bios_docs)
    assert any(not d.text.startswith(d.entity) for d in bios_docs)
    assert any(d.text.startswith(d.entity) for d in bios_docs)  # the case the prefix fixes
    assert result["mismatched"] == 0 and result["share"] == 0.0 and result["examples"] == []


def test_a_bracketed_name_is_counted(byte_tok):
    docs = [
        Document("a", NAME, f"[{NAME}] was born in Baltimore. {NAME} studied Law."),
        Document("b", NAME, f"{NAME} was born in Baltimore."),
    ]
    result = entity_token_mismatch(byte_tok, docs)
    assert (result["occurrences"], result["mismatched"]) == (3, 1)
    assert result["share"] == pytest.approx(100 / 3)
    [(left, tokens)] = result["examples"]
    assert left == repr("[") and not tokens[0].startswith("Ġ")  # "A", "iko": not " Aiko"


def test_a_token_straddling_the_name_is_counted():
    plain = f"{NAME} was born in Baltimore."
    marked = f"**{NAME}** was born in Baltimore."
    tok = metaspace_tok([plain, marked] * 50)
    assert "▁**Aiko" in tok.get_vocab() or "**Aiko" in tok.get_vocab()
    docs = [Document("a", NAME, plain), Document("b", NAME, marked)]
    result = entity_token_mismatch(tok, docs)
    assert (result["occurrences"], result["mismatched"]) == (2, 1)
    [(left, tokens)] = result["examples"]
    assert left == repr("**") and "Aiko" in tokens[0] and "**" in tokens[0]


def test_entity_filter_and_examples_are_capped_and_distinct(byte_tok):
    names = [p.name for p in bios.sample_people(8, 0)]
    docs = [Document(f"d{i}", n, f"({n}) and ({n}).") for i, n in enumerate(names)]
    result = entity_token_mismatch(byte_tok, docs)
    assert (result["occurrences"], result["mismatched"], result["share"]) == (16, 16, 100.0)
    assert len(result["examples"]) == MAX_EXAMPLES
    assert len(set(map(repr, result["examples"]))) == MAX_EXAMPLES
    only = entity_token_mismatch(byte_tok, docs, entity_names={names[0]})
    assert (only["occurrences"], only["mismatched"]) == (2, 2)
    assert entity_token_mismatch(byte_tok, []) == {
        "occurrences": 0,
        "mismatched": 0,
        "share": 0.0,
        "examples": [],
    }


def test_without_the_leading_space_names_opening_a_document_mismatch(
    bios_docs, byte_tok, monkeypatch
):
    """The report sees the bug the prefix fixes: read bare, an opening name is other tokens."""
    import knowlearn.eval.tokens as tokens

    monkeypatch.setattr(tokens, "DOC_PREFIX", "")
    monkeypatch.setattr(tokens, "document_text_for_model", lambda text: text)
    result = entity_token_mismatch(byte_tok, bios_docs)
    assert result["mismatched"] == sum(d.text.startswith(d.entity) for d in bios_docs) > 0
    assert all(left == repr("") for left, _ in result["examples"])


def test_a_space_token_of_its_own_before_the_name_still_matches(byte_tok):
    """Where the tokenizer splits " Qx" into a space token and "Qx", that space belongs to
    the name (as in the question): no mismatch."""
    name = "Qxzv Wqj"
    assert (
        byte_tok.convert_ids_to_tokens(byte_tok(" " + name, add_special_tokens=False)["input_ids"])[
            0
        ]
        == "Ġ"
    )
    docs = [Document("q", name, f"{name} was born in Lisbon. Ask {name}.")]
    assert entity_token_mismatch(byte_tok, docs)["mismatched"] == 0
    odd = [Document("q", name, f"Ask ({name}).")]
    assert entity_token_mismatch(byte_tok, odd)["mismatched"] == 1


def test_every_transform_keeps_the_name_tokens_with_spaces_before_sentences(bios_docs, byte_tok):
    """Over biographies formatted by every transform alone, the name reads as the question's
    tokens everywhere once sentences after markup or a line break get a space; without it,
    line breaks and wrappers change them."""
    import random

    from knowlearn.augment.transforms import TRANSFORMS, augment_document

    def formatted(spaced):
        out = []
        for name in TRANSFORMS:
            for d in bios_docs:
                out += augment_document(d, random.Random(name), [name], 1, False, 1, spaced=spaced)
        return out

    assert entity_token_mismatch(byte_tok, formatted(spaced=True))["mismatched"] == 0
    assert entity_token_mismatch(byte_tok, formatted(spaced=False))["share"] > 10
