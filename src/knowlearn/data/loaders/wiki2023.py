"""The Wiki2023+ layout: an article JSONL and one QA JSONL per split.

Documents are `{"title": str, "genre": str, "text": [sentences] or str}` lines, QA
`{"question": str, "answer": str, "title" or "entity": str}` lines, as the Wiki2023+
benchmark ships them (either file may be one JSON array instead). QA name their article
by title, so linking is a lookup; a title without an article is counted, not an error,
because benchmark QA files routinely outlive articles dropped from the documents file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from knowlearn.data.loaders.common import (
    DEFAULT_ATTRIBUTE,
    PathLike,
    RawQA,
    assemble,
    check_split,
    norm_name,
    sanitize,
)
from knowlearn.data.loaders.report import Loaded
from knowlearn.data.records import Document, get_field
from knowlearn.errors import KnowlearnError
from knowlearn.io import read_jsonl


def _wiki_id(title: str, nth: int, line: int, taken: set[str]) -> str:
    """The id of the `nth` document titled `title`: the sanitized title, `-{nth}` after it
    from the second on, or `wiki-{line}` where that is empty or taken."""
    doc_id = sanitize(title)
    if doc_id and nth > 1:
        doc_id += f"-{nth}"
    if not doc_id or doc_id in taken:
        doc_id = f"wiki-{line}"
    while doc_id in taken:  # only if a title is literally "wiki-<n>"
        doc_id += "_"
    return doc_id


def _parse_doc(obj: dict[str, Any], file: str, line: int) -> tuple[int, str, str]:
    """One article: (line, title, text), the sentences joined with single spaces."""
    title = get_field(obj, "title", str, file, line, nonempty=True).strip()
    get_field(obj, "genre", str, file, line, required=False)
    body = get_field(obj, "text", (list, str), file, line)
    if isinstance(body, str):
        body = [body]
    for j, sentence in enumerate(body):
        if not isinstance(sentence, str):
            raise KnowlearnError(
                f"expected str, got {type(sentence).__name__}",
                file=file,
                line=line,
                field=f"text[{j}]",
            )
    text = " ".join(s.strip() for s in body if s.strip())
    if not text:
        raise KnowlearnError("empty text", file=file, line=line, field="text")
    return line, title, text


def _parse_qa(obj: dict[str, Any], file: str, line: int) -> tuple[str, str, str | None, str | None]:
    """One QA line: (question, answer, the article's title or None, attribute or None)."""
    question = get_field(obj, "question", str, file, line, nonempty=True).strip()
    answer = get_field(obj, "answer", str, file, line, nonempty=True).strip()
    name = get_field(obj, "title", str, file, line, required=False)
    if not (name and name.strip()):
        name = get_field(obj, "entity", str, file, line, required=False)
    attribute = get_field(obj, "attribute", str, file, line, required=False)
    return question, answer, (name.strip() or None) if name else None, attribute


def _read_documents(docs_path: PathLike) -> tuple[list[Document], list[str]]:
    """The articles, with unique ids, and their titles."""
    docs: list[Document] = []
    titles: list[str] = []
    ids: set[str] = set()
    for line, title, text in read_jsonl(docs_path, _parse_doc, allow_array=True):
        doc_id = _wiki_id(title, titles.count(title) + 1, line, ids)
        ids.add(doc_id)
        docs.append(Document(doc_id, title, text))
        titles.append(title)
    return docs, titles


def _read_qa(qa_paths: Mapping[str, PathLike], titles: list[str]) -> tuple[list[RawQA], list[str]]:
    """The QA pairs of every split, linked to the articles they name, and the names that
    match no article (exact title, else ignoring case and whitespace)."""
    exact: dict[str, list[int]] = {}  # title -> its documents
    loose: dict[str, str] = {}  # title ignoring case and spaces -> the first such title
    for i, t in enumerate(titles):
        exact.setdefault(t, []).append(i)
        loose.setdefault(norm_name(t), t)
    raw: list[RawQA] = []
    missing: list[str] = []
    for split, path in qa_paths.items():
        rows = read_jsonl(path, _parse_qa, allow_array=True)
        for n, (question, answer, name, attribute) in enumerate(rows):
            linked: list[int] | None = None
            if name is not None:
                linked = exact.get(name) or exact.get(loose.get(norm_name(name), ""), [])
                if not linked:
                    missing.append(name)
            attr = DEFAULT_ATTRIBUTE if attribute is None else attribute
            raw.append(RawQA(f"wiki-qa-{split}-{n}", question, answer, split, attr, linked))
    return raw, missing


def load_wiki2023(docs_path: PathLike, qa_paths: Mapping[str, PathLike]) -> Loaded:
    """The Wiki2023+ JSONL layout: one article per line, and one QA JSONL per split.

    Documents: `{"title": str, "genre": str (optional), "text": [sentences] or str}`;
    other fields are ignored. The text is the sentences, stripped, joined with single
    spaces; the entity is the title; the id is the title with runs of other characters
    than letters, digits, `_ . - /` made `_` (with `-2`, `-3`, ... for the second and
    later documents of one title), or `wiki-{line}` where that is empty or taken. Several
    documents may share a title (sections, or versions, of one article): a QA pair naming
    it belongs to all of them, and its answer becomes a fact in each that contains it.
    Either file may also be one JSON array of such records instead of JSONL.

    QA (`qa_paths`, e.g. `{"train": path, "test": path}`; the split is the file):
    `{"question": str, "answer": str, "title" or "entity": str, "attribute": str}`,
    the last two optional, other fields ignored. Ids: `wiki-qa-{split}-{n}`. A pair
    whose named article is not among the documents (exact title, else ignoring case and
    whitespace) is counted (`without_document`, `missing_documents`), not an error; a
    pair naming none is linked as in `load_pit`.
    """
    for split in qa_paths:
        check_split(split, "qa_paths")
    docs, titles = _read_documents(docs_path)
    raw, missing = _read_qa(qa_paths, titles)
    return assemble("wiki2023", docs, titles, raw, missing)
