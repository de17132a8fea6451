from dataclasses import replace

import torch

from knowlearn.config import ModelConfig, load_config
from knowlearn.data import bios, bios_templates
from knowlearn.data.prompts import document_text_for_model
from knowlearn.data.records import Document, Fact
from knowlearn.eval.probe import probe_documents, probe_sentences_for, run_probe
from knowlearn.models.load import load_model
from knowlearn.models.tiny import build_tiny_model, train_tokenizer
from knowlearn.train.batches import collate, document_examples

UNSEEN = {"birth_date": "December 24, 1911", "birth_city": "Zanzibar", "major": "Astronomy"}


def _swap_values(doc: Document, values: dict[str, str]) -> Document:
    """`doc` with each fact value replaced by `values[attribute]`, spans moved along."""
    text, facts, shift = doc.text, [], 0
    for f in doc.facts:
        new = values[f.attribute]
        start = f.start + shift
        text = text[:start] + new + text[start + len(f.value) :]
        facts.append(Fact(f.attribute, new, start, start + len(new)))
        shift += len(new) - len(f.value)
    return replace(doc, text=text, facts=tuple(facts))


def test_probe_on_a_hand_made_case(trained_dir, tokenizer, docs):
    """A model that memorized six documents predicts their facts in those contexts (100%),
    and cannot predict values it never saw (0%)."""
    model = load_model(trained_dir)
    swapped = [_swap_values(d, UNSEEN) for d in docs]
    for d in swapped:
        d.check()
    result = run_probe(model, tokenizer, {"seen": docs, "swapped": swapped})
    assert result["seen"]["all"] == {"n": 18, "acc": 100.0}
    assert result["swapped"]["all"] == {"n": 18, "acc": 0.0}


def _probe(overrides: list[str]) -> tuple[dict[str, list[Document]], list, set[str]]:
    cfg = load_config(None, ["data.people=10", *overrides])
    d = cfg.data
    people = bios.sample_people(10, 0)
    docs = bios.render_documents(people, 0, renderings=d.renderings, permute=d.permute)
    qa = bios.make_qa(people, 0)
    return probe_documents(cfg, docs, qa), docs, {q.entity for q in qa if q.split == "test"}


def test_probe_documents_are_new_contexts_for_the_held_out_people():
    probe, docs, test_people = _probe([])
    train_texts = {d.text for d in docs}
    for kind in ("templates", "formats"):
        assert {d.entity for d in probe[kind]} == test_people
        assert not train_texts & {d.text for d in probe[kind]}, kind
        for d in probe[kind]:
            d.check()
    for d in probe["formats"]:
        original = next(o for o in docs if o.entity == d.entity)
        assert {(f.attribute, f.value) for f in d.facts} == {
            (f.attribute, f.value) for f in original.facts
        }
    heldout = {t for ts in bios_templates.sentence_templates("heldout").values() for t in ts}
    assert heldout and not heldout & {
        t for ts in bios_templates.sentence_templates("train").values() for t in ts
    }


def test_templates_probe_is_one_named_sentence_per_heldout_template():
    """Exactly the held-out templates, each alone, with the full name: nothing else in the
    context can give the answer away."""
    probe, _, test_people = _probe([])
    people = {p.name: p for p in bios.sample_people(10, 0) if p.name in test_people}
    heldout = bios_templates.sentence_templates("heldout")
    assert len(probe["templates"]) == len(people) * sum(map(len, heldout.values()))
    used: dict[tuple[str, str], set[str]] = {}
    for d in probe["templates"]:
        person = people[d.entity]
        [fact] = d.facts
        assert d.text[fact.start : fact.end] == fact.value == person.values()[fact.attribute]
        assert d.id.startswith(f"{person.id}-{fact.attribute}-h")
        [template] = [
            t
            for t in heldout[fact.attribute]
            if t.replace("{Subject}", person.name)
            .replace("{Possessive}", person.name + "'s")
            .replace("{subject}", person.name)
            .replace("{" + fact.attribute + "}", fact.value)
            .replace("{possessive}", "her" if person.gender == "female" else "his")
            == d.text
        ]
        used.setdefault((d.entity, fact.attribute), set()).add(template)
    assert all(used[e, a] == set(heldout[a]) for e in people for a in bios.ATTRIBUTES)


def test_templates_probe_is_the_same_for_every_arm():
    base, _, test_people = _probe([])
    for overrides in (["data.permute=true"], ["data.renderings=3"], ["seed=5"]):
        assert _probe(overrides)[0]["templates"] == base["templates"], overrides
    people = bios.sample_people(10, 0)
    assert probe_sentences_for(test_people, people) == base["templates"]
    assert probe_sentences_for(set(), people) == []


def test_run_probe_end_to_end_on_memorized_probe_sentences():
    """A tiny model trained on the probe sentences themselves scores 100%; untrained, 0%."""
    people = bios.sample_people(4, 0)
    docs = probe_sentences_for({p.name for p in people[:2]}, people)
    tok = train_tokenizer([document_text_for_model(d.text) for d in docs] * 3, vocab_size=300)
    shape = ModelConfig(
        hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128, max_position_embeddings=64
    )
    model = build_tiny_model(shape, tok, seed=0)
    assert run_probe(model, tok, {"t": docs})["t"]["all"] == {"n": 24, "acc": 0.0}
    batch = collate(document_examples(tok, docs, 64)[0], tok.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(200):
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()
    assert run_probe(model, tok, {"t": docs}, batch_size=5)["t"]["all"] == {"n": 24, "acc": 100.0}
