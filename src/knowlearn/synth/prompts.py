"""The prompts the writing model reads: templates checked when the config loads, and the
token ids of each prompt (through the tokenizer's chat template for instruct models).

The QA output format is strict and simple, one line per question and one per answer:

    Q: When was Ada Reyes born?
    A: May 12, 1987

anything else is dropped with a counted reason (knowlearn.synth.checks).
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from knowlearn.errors import KnowlearnError

DEFAULT_QA_PROMPT = """\
Read the document about {title} and write {n} questions about facts it states, each with \
a short answer (a name, date, number or a few words) copied exactly from the document. \
Every question must name {title}. Write nothing else: each question on a line starting \
with "Q: ", its answer on the next line starting with "A: ".

Document:
{text}
"""

DEFAULT_PARAPHRASE_PROMPT = """\
Rewrite the document about {title} in your own words (paraphrase number {k}). Keep every \
name, date, number and other fact exactly as written, and leave none out. Write only the \
rewritten document.

Document:
{text}
"""


def check_template(template: str, field: str, allowed: Sequence[str]) -> None:
    """Refuse a template that would fail or mislead at generation time: a placeholder not
    in `allowed`, a format spec, or no {text} (the model would never see the document)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise KnowlearnError(
            f"malformed template ({e}); write a literal brace as {{{{ or }}}}", field=field
        ) from None
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            raise KnowlearnError(
                f"unknown placeholder {{{name}}} (allowed: "
                f"{', '.join('{' + a + '}' for a in allowed)}; a literal brace is {{{{ or }}}})",
                field=field,
            )
        if spec or conversion:
            raise KnowlearnError(
                f"placeholder {{{name}}} has a format spec or conversion: write it plain",
                field=field,
            )
        names.add(name)
    if "text" not in names:
        raise KnowlearnError(
            "has no {text} placeholder: the model would never see the document", field=field
        )


def render(template: str, *, title: str, text: str, n: int = 0, k: int = 0) -> str:
    return template.format(title=title, text=text, n=n, k=k)


def prompt_token_ids(
    tokenizer: PreTrainedTokenizerBase, prompt: str, chat_template: bool
) -> list[int]:
    """The prompt as token ids: a user turn of the chat template (instruct models answer
    well only in their own format), else the plain text with the tokenizer's BOS."""
    if chat_template:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]
