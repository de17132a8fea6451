from dataclasses import replace

from knowlearn.config import load_config
from knowlearn.data import bios
from knowlearn.data.records import Document, Fact
from knowlearn.eval.probe import probe_documents, run_probe
from knowlearn.models.load import load_model

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


def test_probe_documents_are_new_contexts_for_the_held_out_people(tmp_path):
    cfg = load_config(None, ["data.people=10"])
    people = bios.sample_people(10, 0)
    docs = bios.render_documents(people, 0)
    qa = bios.make_qa(people, 0)
    probe = probe_documents(cfg, docs, qa)
    test_people = {q.entity for q in qa if q.split == "test"}
    train_texts = {d.text for d in docs}
    for kind in ("templates", "formats"):
        assert {d.entity for d in probe[kind]} == test_people
        assert not train_texts & {d.text for d in probe[kind]}, kind
        for d in probe[kind]:
            d.check()
            original = next(o for o in docs if o.entity == d.entity)
            assert {(f.attribute, f.value) for f in d.facts} == {
                (f.attribute, f.value) for f in original.facts
            }
    heldout = {t for ts in bios.sentence_templates("heldout").values() for t in ts}
    assert heldout and not heldout & {
        t for ts in bios.sentence_templates("train").values() for t in ts
    }
