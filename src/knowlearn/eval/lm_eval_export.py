"""Export a QA set as an lm-evaluation-harness task, to cross-check knowlearn's EM there.

The task asks what knowlearn asks and scores as knowlearn scores: the same prompt
(`qa_prompt`, precomputed into each JSONL row, so no template can drift from it), greedy
decoding of up to `max_new_tokens` tokens that stops at <eos>, and exact match after
knowlearn's own SQuAD normalization (its source is copied into the task's utils.py, so the
task runs where knowlearn is not installed). Run it with the BOS token knowlearn's
tokenization adds (`add_bos_token=True`):

    lm_eval --model hf --model_args pretrained=MODEL,add_bos_token=True \\
        --include_path DIR --tasks NAME --batch_size 16
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Sequence
from pathlib import Path

from knowlearn.data.prompts import qa_prompt
from knowlearn.data.records import QAPair
from knowlearn.errors import KnowlearnError
from knowlearn.eval import metrics
from knowlearn.io import write_jsonl, write_text

TASK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_task_name(name: str) -> None:
    """lm-eval finds a task by name and imports utils by module path: an identifier is safe."""
    if not TASK_NAME.fullmatch(name):
        raise KnowlearnError(
            f"must be letters, digits and underscores, not starting with a digit, got {name!r}",
            field="--task",
        )


def task_rows(qa: Sequence[QAPair]) -> list[dict[str, str]]:
    """One lm-eval document per question: the prompt exactly as knowlearn builds it."""
    return [
        {
            "id": q.id,
            "entity": q.entity,
            "attribute": q.attribute,
            "split": q.split,
            "question": q.question,
            "answer": q.answer,
            "prompt": qa_prompt(q.question),
        }
        for q in qa
    ]


def task_yaml(name: str, data_file: Path, max_new_tokens: int) -> str:
    """The task config. Strings are JSON-quoted (valid YAML); `!function` needs the text form."""
    q = json.dumps
    return f"""# knowlearn QA as an lm-evaluation-harness task (written by `knowlearn export-lm-eval`).
# Greedy, stop at <eos> (lm-eval adds it to `until`), exact match after SQuAD normalization.
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {q(str(data_file.resolve()))}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  do_sample: false
  max_gen_toks: {max_new_tokens}
process_results: !function utils.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def utils_source() -> str:
    """utils.py of the task: knowlearn's normalization and exact match, copied verbatim."""
    return "\n\n".join(
        [
            '"""Scoring of the exported knowlearn task: knowlearn.eval.metrics, copied."""\n\n'
            "import re\nimport string\n\n"
            f"_ARTICLES = re.compile({metrics._ARTICLES.pattern!r})\n"
            '_PUNCT = str.maketrans("", "", string.punctuation)',
            inspect.getsource(metrics.normalize).rstrip(),
            inspect.getsource(metrics.exact_match).rstrip(),
            "def process_results(doc, results):\n"
            '    """knowlearn strips the decoded greedy answer, then compares normalized."""\n'
            '    return {"exact_match": exact_match(results[0].strip(), doc["answer"])}',
        ]
    )


def export_lm_eval(
    qa: Sequence[QAPair], out: Path, *, name: str, max_new_tokens: int
) -> dict[str, Path]:
    """Write NAME.yaml, NAME.jsonl and utils.py into `out`; return their paths."""
    check_task_name(name)
    if not qa:
        raise KnowlearnError("no question to export (is --split right?)", field="--split")
    paths = {"yaml": out / f"{name}.yaml", "data": out / f"{name}.jsonl", "utils": out / "utils.py"}
    write_jsonl(paths["data"], task_rows(qa))
    write_text(paths["utils"], utils_source() + "\n")
    write_text(paths["yaml"], task_yaml(name, paths["data"], max_new_tokens))
    return paths


def lm_eval_command(model: str, out: Path, name: str) -> str:
    """The lm_eval command line that runs the exported task on `model` as knowlearn would."""
    return (
        f"lm_eval --model hf --model_args pretrained={model},add_bos_token=True "
        f"--include_path {out} --tasks {name} --batch_size 16"
    )
