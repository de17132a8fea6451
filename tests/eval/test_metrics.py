import pytest

from knowlearn.eval.metrics import answer_recall, exact_match, normalize, rouge_l


def test_normalize_is_squad_style():
    assert normalize("  The  University of Oslo! ") == "university of oslo"
    assert normalize("May 12, 1987.") == "may 12 1987"


@pytest.mark.parametrize(
    ("pred", "gold", "em", "recall"),
    [
        ("May 12, 1987", "May 12, 1987", 1.0, 1.0),
        ("may 12 1987.", "May 12, 1987", 1.0, 1.0),
        ("born May 12, 1987 in Oslo", "May 12, 1987", 0.0, 1.0),
        ("May 1987", "May 12, 1987", 0.0, 0.0),
        ("Oslotown", "Oslo", 0.0, 0.0),  # recall matches whole words only
        ("", "Oslo", 0.0, 0.0),
    ],
)
def test_exact_match_and_recall(pred, gold, em, recall):
    assert exact_match(pred, gold) == em
    assert answer_recall(pred, gold) == recall


def test_rouge_l_f1():
    assert rouge_l("May 12, 1987", "May 12, 1987") == 1.0
    assert rouge_l("nothing alike", "May 12") == 0.0
    # LCS of "a b c d" and "a c e" is "a c": P = 2/4, R = 2/3, F = 4/7.
    assert rouge_l("x b c d", "x c e") == pytest.approx(4 / 7)
