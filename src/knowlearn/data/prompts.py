"""How a document and a QA pair are written for the model: one place that training and
evaluation both read, so what is trained is what is asked.

A document is read as DOC_PREFIX + text, by training and by scoring alike: then a name at
the very start is the same tokens (" Aiko", as in every question) as anywhere else. A
question is prompted as "Question: {q}\nAnswer:", tokenized on its own, and the answer
is " {a}" then <eos>.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

# Prepended to every document before tokenizing (bioS: every sentence starts with a space).
DOC_PREFIX = " "


def qa_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def answer_ids(tokenizer: PreTrainedTokenizerBase, answer: str) -> list[int]:
    """The answer's tokens as the model should generate them: ' {answer}' then <eos>."""
    return tokenizer(" " + answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def prompt_ids(tokenizer: PreTrainedTokenizerBase, question: str) -> list[int]:
    return tokenizer(qa_prompt(question))["input_ids"]


def document_text_for_model(text: str) -> str:
    """The text as the model reads it. Without the space, a name opening a document would be
    `Aiko` while questions and answers say ` Aiko`: to a model trained from scratch, two
    unrelated tokens. Character offsets into it are those of `text` plus len(DOC_PREFIX)."""
    return DOC_PREFIX + text
