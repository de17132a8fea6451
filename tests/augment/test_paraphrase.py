import json

import pytest

from knowlearn.augment.paraphrase import read_paraphrases
from knowlearn.errors import KnowlearnError


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_paraphrases_get_fact_spans_and_lossy_ones_are_dropped_with_their_line(tmp_path, docs):
    d = docs[0]  # "Ada Reyes was born on May 12, 1987. ..."
    rows = [
        {
            "id": "p1",
            "source": d.id,
            "text": "Lisbon is where Ada Reyes grew up; she read Physics; her birthday is May 12, 1987.",
        },
        {
            "id": "p2",
            "source": d.id,
            "text": "Ada Reyes was born in 1987 and studied Physics in Lisbon.",
        },
    ]
    para = read_paraphrases(_write(tmp_path / "p.jsonl", rows), docs)
    assert [p.id for p in para.documents] == ["p1"]
    kept = para.documents[0]
    kept.check()
    assert {f.attribute: f.value for f in kept.facts} == {f.attribute: f.value for f in d.facts}
    assert kept.entity == d.entity
    assert (
        len(para.dropped) == 1
        and "p.jsonl:2" in para.dropped[0]
        and "birth_date" in para.dropped[0]
    )


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"id": "d0", "source": "d0", "text": "x"}, "id"),
        ({"id": "p1", "source": "d0"}, "text"),
        ({"id": "p1", "source": "d0", "text": "x", "facts": []}, "facts"),
    ],
)
def test_bad_paraphrase_rows(tmp_path, docs, row, field):
    with pytest.raises(KnowlearnError) as e:
        read_paraphrases(_write(tmp_path / "p.jsonl", [row]), docs)
    assert (e.value.line, e.value.field) == (1, field)
