"""Stage keys: fields added to a config later keep the keys of stages cached before them."""

import dataclasses

from knowlearn.config import FormatConfig, StageConfig
from knowlearn.experiment.cache import digest


def _without(obj, *names):
    """The dataclass as the plain dict it was before `names` existed."""
    return {k: v for k, v in dataclasses.asdict(obj).items() if k not in names}


def test_a_field_hashed_unless_default_keeps_old_keys_until_it_is_set():
    plain = FormatConfig(copies=4)
    assert digest(plain) == digest(_without(plain, "space_before_sentences"))
    spaced = dataclasses.replace(plain, space_before_sentences=True)
    assert digest(spaced) != digest(plain)


def test_a_field_that_only_sets_others_is_never_hashed():
    stage = StageConfig(epochs=6.0)
    assert digest(stage) == digest(_without(stage, "exposures"))
    assert digest(dataclasses.replace(stage, exposures=30.0)) == digest(stage)
