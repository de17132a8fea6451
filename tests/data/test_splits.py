from knowlearn.data import bios
from knowlearn.data.splits import VALIDATION, hold_out_validation


def _qa(n: int = 40):
    return bios.make_qa(bios.sample_people(n, 0), 0)


def test_validation_people_come_from_train_people_only_and_whole():
    qa = _qa()
    out = hold_out_validation(qa, 0.25, seed=3)
    train = {q.entity for q in qa if q.split == "train"}
    val = {q.entity for q in out if q.split == VALIDATION}
    assert len(val) == round(0.25 * len(train)) and val <= train
    # Every pair of a validation person moved; test pairs untouched.
    assert all(q.split == VALIDATION for q in out if q.entity in val)
    assert [q.split for q in out if q.split == "test"] == [q.split for q in qa if q.split == "test"]


def test_choice_depends_on_seed_not_order_and_zero_is_identity():
    qa = _qa()
    a = {q.entity for q in hold_out_validation(qa, 0.25, 1) if q.split == VALIDATION}
    b = {q.entity for q in hold_out_validation(qa[::-1], 0.25, 1) if q.split == VALIDATION}
    c = {q.entity for q in hold_out_validation(qa, 0.25, 2) if q.split == VALIDATION}
    assert a == b and a != c
    assert hold_out_validation(qa, 0.0, 1) == qa


def test_at_least_one_train_person_stays_in_training():
    qa = _qa(4)
    out = hold_out_validation(qa, 0.99, 0)
    assert any(q.split == "train" for q in out)
