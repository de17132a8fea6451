"""`knowlearn synth` options: one dataclass, read like every other config (YAML and
`key=value`, unknown keys refused with a suggestion), checked before any model loads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowlearn.config import find_config, from_dict, load_yaml, merge, parse_override
from knowlearn.errors import KnowlearnError
from knowlearn.synth.prompts import (
    DEFAULT_PARAPHRASE_PROMPT,
    DEFAULT_QA_PROMPT,
    check_template,
)

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class WriterModel:
    """The writing model, spelt as `knowlearn train` spells its model (`model.path`, ...)."""

    path: str | None = None  # a local Hugging Face causal LM directory (never downloaded)
    tokenizer: str | None = None  # tokenizer directory (default: the model's)
    trust_remote_code: bool = False  # only ever by an explicit opt-in


@dataclass
class SynthConfig:
    """What to generate from which documents with which local model, and how to check it."""

    documents: str | None = None  # the documents JSONL (required)
    out: str = "synth"  # output folder: qa.jsonl, paraphrases.jsonl, documents_with_facts.jsonl
    model: WriterModel = field(default_factory=WriterModel)
    dtype: str = "auto"  # auto: bfloat16 on a GPU that has it, else float32
    chat_template: bool | None = (
        None  # wrap prompts in the tokenizer's chat template (None: if it has one)
    )
    qa_per_document: int = 5  # questions asked for per document ({n} in qa_prompt); extras dropped
    paraphrases_per_document: int = 3  # 0 = no paraphrases
    qa_prompt: str = DEFAULT_QA_PROMPT  # placeholders: {title} {text} {n}
    paraphrase_prompt: str = DEFAULT_PARAPHRASE_PROMPT  # placeholders: {title} {text} {k}
    max_new_tokens: int = 384
    batch_size: int = 8  # sequences per generate() call
    seed: int = 0  # sampling seeds (per document) and the train/test split
    temperature: float = 0.7  # 0 = greedy
    max_answer_words: int = 12  # longer answers are dropped ("short answers")
    keep_unlocated: bool = False  # keep QA whose answer is not in its document (no fact span)
    require_entity: bool = True  # drop questions that do not name the document's entity
    test_fraction: float = 0.5  # entities whose QA is held out (split "test")
    near_duplicate: float = 0.9  # token Jaccard at or above which paraphrases count as one

    def validate(self) -> None:
        """Range and template checks that types alone cannot express."""
        checks = [
            (
                "documents",
                self.documents is not None,
                "required: the documents JSONL to write from",
            ),
            ("model.path", self.model.path is not None, "required: a local model directory"),
            ("qa_per_document", self.qa_per_document >= 0, "must be >= 0"),
            ("paraphrases_per_document", self.paraphrases_per_document >= 0, "must be >= 0"),
            (
                "qa_per_document",
                self.qa_per_document + self.paraphrases_per_document > 0,
                "qa_per_document and paraphrases_per_document are both 0: nothing to write",
            ),
            ("max_new_tokens", self.max_new_tokens >= 1, "must be >= 1"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("temperature", self.temperature >= 0, "must be >= 0 (0 = greedy)"),
            ("max_answer_words", self.max_answer_words >= 1, "must be >= 1"),
            ("test_fraction", 0 <= self.test_fraction < 1, "must be in [0, 1)"),
            ("near_duplicate", 0 < self.near_duplicate <= 1, "must be in (0, 1]"),
            ("dtype", self.dtype in DTYPES, f"must be one of {', '.join(DTYPES)}"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise KnowlearnError(why, field=name)
        check_template(self.qa_prompt, "qa_prompt", allowed=("title", "text", "n"))
        check_template(self.paraphrase_prompt, "paraphrase_prompt", allowed=("title", "text", "k"))
        if (
            self.temperature == 0
            and self.paraphrases_per_document > 1
            and "{k}" not in self.paraphrase_prompt
        ):
            raise KnowlearnError(
                f"greedy decoding (temperature=0) writes the same paraphrase "
                f"{self.paraphrases_per_document} times: set temperature > 0, or put {{k}} "
                "(the paraphrase's number) in paraphrase_prompt",
                field="temperature",
            )


# Taken as typed in `key=value`, not read as YAML: `paraphrase_prompt=Rewrite: {text}` is
# a prompt, not a mapping.
LITERAL_FIELDS = ("qa_prompt", "paraphrase_prompt")
PATH_FIELDS = (("documents",), ("out",), ("model", "path"), ("model", "tokenizer"))


def _get(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        data = data.get(k) if isinstance(data, dict) else None
    return data


def load_synth_config(
    path: str | Path | None, overrides: list[str] = (), values: dict[str, Any] | None = None
) -> SynthConfig:
    """Defaults <- YAML <- `key=value` <- `values` (command-line options by dotted key, taken
    as given), validated. Relative paths in a YAML file are read beside that file (as
    `knowlearn train` does), and `~` is expanded."""
    data: dict[str, Any] = {}
    if path:
        data = load_yaml(path)
        base = find_config(path).resolve().parent
        for keys in PATH_FIELDS:
            given = _get(data, keys)
            if isinstance(given, str) and given:
                value = Path(given).expanduser()
                merge(data, list(keys), str(value if value.is_absolute() else base / value))
    overridden = set()
    for text in overrides:
        keys, value = parse_override(text)
        if ".".join(keys) in LITERAL_FIELDS:
            value = text.split("=", 1)[1]
        merge(data, keys, value)
        overridden.add(".".join(keys))
    for key, value in (values or {}).items():
        if value is not None:
            merge(data, key.split("."), value)
            overridden.add(key)
    try:
        cfg = from_dict(SynthConfig, data)
        for keys in PATH_FIELDS:
            owner = cfg.model if keys[0] == "model" else cfg
            value = getattr(owner, keys[-1])
            if isinstance(value, str):
                setattr(owner, keys[-1], os.path.expanduser(value))
        cfg.validate()
    except KnowlearnError as e:
        if path and e.file is None and e.field not in overridden:
            raise KnowlearnError(e.reason, file=find_config(path), field=e.field) from None
        raise
    return cfg
