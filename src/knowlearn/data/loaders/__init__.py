"""Loaders from the layouts people actually have into knowlearn's records.

Four layouts, one module each (see each loader's docstring for its exact form):

- `pit`: `load_pit` / `load_pit_split`, the PIT / Self-Tuning instance JSON
  (`{"type": "text_only", "instances": [{"text": ..., "output": ...}]}`);
- `wiki2023`: `load_wiki2023`, the Wiki2023+ JSONL layout (one article per line, QA JSONL
  per split);
- `evidence`: `load_evidence`, a list of `{"evidence_text": ..., "qa_pairs": [...]}`
  records;
- `folder`: `load_folder`, a folder of .txt/.md files and a QA JSONL, for an engineer's
  own documents.

Every JSONL file a layout reads may instead be one JSON array of the same records.

Every loader returns `(documents, qa, report)` (`report`), and `write_loaded` (`write`)
turns them into the project's `documents.jsonl` / `qa.jsonl`, so any layout runs with
`knowlearn train data.documents=... data.qa=...`.

Facts. Answers written by an LLM are often not verbatim in their document, so a loader
never fails a run for it: it *reports* how many are (verbatim, only ignoring case, not at
all). Where an answer does occur in a document of its QA pair (an entity may have
several), that occurrence becomes a `Fact` span, a character offset into the text, in
every such document: spans are what make a document's knowledge tokens measurable
(memorization, the probe). See `locate_answer` (`spans`) for what "occurs" means,
`assemble` (`common`) for how pairs become facts, `Linker` (`linker`) for pairs whose
layout names no document, and `LoadReport` for the counts.

Errors. Input the loader cannot read (malformed JSON, a missing or mistyped field, an
empty or non-UTF-8 file, an unknown PIT `type`, a QA pair naming a file that is not in
the folder) raises `KnowlearnError` naming the file, the line (JSONL, and JSON syntax
errors) and the field (for PIT JSON, the instance, as in `instances[7].output`).
"""

from knowlearn.data.loaders.common import DEFAULT_ATTRIBUTE
from knowlearn.data.loaders.evidence import load_evidence
from knowlearn.data.loaders.folder import load_folder
from knowlearn.data.loaders.pit import load_pit, load_pit_split
from knowlearn.data.loaders.report import Loaded, LoadReport
from knowlearn.data.loaders.spans import locate_answer
from knowlearn.data.loaders.wiki2023 import load_wiki2023
from knowlearn.data.loaders.write import write_loaded

__all__ = [
    "DEFAULT_ATTRIBUTE",
    "LoadReport",
    "Loaded",
    "load_evidence",
    "load_folder",
    "load_pit",
    "load_pit_split",
    "load_wiki2023",
    "locate_answer",
    "write_loaded",
]
