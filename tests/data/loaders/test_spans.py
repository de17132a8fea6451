"""Where an answer occurs in a text (loaders/spans.py)."""

from __future__ import annotations

import pytest

from knowlearn.data.loaders import locate_answer


@pytest.mark.parametrize(
    ("text", "answer", "expected"),
    [
        ("Born in 1976 in Oslo.", "1976.", (8, 12, True)),  # an LLM's final period dropped
        ("Born in the U.S. in 1976.", "U.S.", (12, 16, True)),  # an abbreviation keeps it
        ("a Norwegian glaciologist.", "Glaciologist.", (12, 24, False)),  # the text's spelling
        ("He won the Nobel Prize.", "No.", None),  # never inside a word
        ("Scored 20011 points, then 2001.", "2001", (26, 30, True)),  # next whole-word occurrence
        ("Set in İstanbul.", "istanbul", (7, 15, False)),  # the text's own characters
        ("Nothing here.", "Oslo", None),
    ],
)
def test_locate_answer(text, answer, expected):
    got = locate_answer(text, answer)
    assert (tuple(got) if got else None) == expected
