"""Formatting-based augmentation: more training samples from new formats, never new words.

Transforms re-lay a document's sentences (separators, wrapping, list markup, headings)
and move the fact spans with them; every result is checked to keep each fact and word.
"""

from knowlearn.augment.invariant import AugmentationError, check_preserved
from knowlearn.augment.transforms import (
    EXCLUSIVE_GROUPS,
    FAMILIES,
    RANDOMIZED,
    TRANSFORMS,
    Layout,
    Transform,
    augment_document,
    augment_question,
    compose,
    conflicts,
    sample_chain,
)
from knowlearn.data.sentences import split_sentences

__all__ = [
    "EXCLUSIVE_GROUPS",
    "FAMILIES",
    "RANDOMIZED",
    "TRANSFORMS",
    "AugmentationError",
    "Layout",
    "Transform",
    "augment_document",
    "augment_question",
    "check_preserved",
    "compose",
    "conflicts",
    "sample_chain",
    "split_sentences",
]
