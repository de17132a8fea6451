from knowlearn.augment.apply import format_documents, format_questions
from knowlearn.config import FormatConfig


def test_offline_copies_are_fixed_and_online_copies_change_between_epochs(docs):
    offline = FormatConfig(copies=3)
    e0, e1 = (
        format_documents(docs, offline, seed=0, epoch=0),
        format_documents(docs, offline, seed=0, epoch=1),
    )
    assert len(e0) == 4 * len(docs) and e0 == e1
    assert e0 == format_documents(docs, offline, seed=0, epoch=0)  # deterministic
    assert format_documents(docs, offline, seed=1) != e0

    online = FormatConfig(copies=3, online=True)
    o0, o1 = (
        format_documents(docs, online, seed=0, epoch=0),
        format_documents(docs, online, seed=0, epoch=1),
    )
    assert len(o0) == len(o1) == len(e0)
    assert [d.id for d in o0] == [d.id for d in o1]
    changed = sum(a.text != b.text for a, b in zip(o0, o1, strict=True))
    assert changed >= len(docs), "fresh formats every epoch"


def test_every_copy_keeps_every_fact_at_its_span(docs):
    copies = format_documents(docs, FormatConfig(copies=5, include_original=False), seed=0)
    differ = 0
    for d in copies:
        d.check()
        original = next(o for o in docs if d.id.startswith(o.id + "-f"))
        assert [(f.attribute, f.value) for f in d.facts] == [
            (f.attribute, f.value) for f in original.facts
        ]
        differ += d.text != original.text
    # A chain can be a no-op on some text (sep_space on single-spaced text), but rarely.
    assert differ >= 0.8 * len(copies)


def test_question_formats_never_touch_the_answer(qa):
    out = format_questions(qa, FormatConfig(copies=2, online=True), seed=0, epoch=3)
    assert len(out) == 3 * len(qa)
    by_id = {q.id: q for q in qa}
    for q in out:
        original = by_id[q.id.split("-f")[0]]
        assert (q.answer, q.entity, q.attribute, q.split) == (
            original.answer,
            original.entity,
            original.attribute,
            original.split,
        )
        # The words of the question survive in order (markup may surround them).
        words = original.question.split()
        pos = 0
        for w in words:
            pos = q.question.find(w, pos)
            assert pos >= 0, (q.question, w)
            pos += len(w)


def test_no_copies_means_no_change(docs, qa):
    assert format_documents(docs, FormatConfig(), seed=0) == docs
    assert format_questions(qa, FormatConfig(), seed=0) == qa


def test_duplicate_copies_are_the_original_text_with_the_same_count_as_formatted(docs):
    dup = format_documents(docs, FormatConfig(copies=4, duplicate=True), seed=0)
    fmt = format_documents(docs, FormatConfig(copies=4), seed=0)
    assert len(dup) == len(fmt) == 5 * len(docs)
    assert [d.id for d in dup] == [d.id for d in fmt]
    by_id = {o.id: o for o in docs}
    for d in dup:
        orig = by_id[d.id] if d.id in by_id else by_id[d.id.rsplit("-f", 1)[0]]
        assert (d.text, d.facts, d.entity) == (orig.text, orig.facts, orig.entity)
    assert any(d.text != o.text for d, o in zip(fmt, dup, strict=True))
