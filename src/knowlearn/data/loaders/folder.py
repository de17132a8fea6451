"""The folder layout: a folder of .txt/.md files and, optionally, a QA JSONL.

For an engineer's own documents (notes, a wiki export, a docs site): one document per
file, named by a first-line markdown heading "# Name" or by the file name, and QA lines
that may name a file (`document`) or an entity. Unlike the benchmark layouts, every name
a QA line uses must exist, and unknown fields are errors: a typo in one's own data
should stop the import rather than silently unlink a pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowlearn.data.loaders.common import (
    DEFAULT_ATTRIBUTE,
    PathLike,
    RawQA,
    assemble,
    read_text,
    sanitize,
)
from knowlearn.data.loaders.report import Loaded
from knowlearn.data.records import SPLITS, Document, get_field, reject_unknown
from knowlearn.errors import KnowlearnError
from knowlearn.io import read_jsonl

TEXT_SUFFIXES = (".txt", ".md")
_HEADING_RE = re.compile(r"#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_FOLDER_QA_FIELDS = ("id", "question", "answer", "entity", "document", "split", "attribute")


def _text_files(folder: Path) -> list[Path]:
    """.txt/.md files under `folder`, sorted by relative path; hidden files and folders
    (a name starting with ".", such as .git or an editor's drafts) are skipped."""
    files = [
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in TEXT_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


@dataclass
class _FolderDocs:
    """The folder's documents, their titles for the linker, and the names a QA line may
    use for them (`link`)."""

    folder: Path
    docs: list[Document] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    paths: dict[str, set[int]] = field(default_factory=dict)  # id, relative path +- suffix
    stems: dict[str, set[int]] = field(default_factory=dict)
    by_entity: dict[str, list[int]] = field(default_factory=dict)
    id_file: dict[str, Path] = field(default_factory=dict)  # id -> the file that has it

    def add(self, path: Path) -> None:
        """Read one file as the next document; two files with one id are an error naming
        both."""
        text = read_text(path).replace("\r\n", "\n").replace("\r", "\n").strip()
        if not text:
            raise KnowlearnError("empty document", file=path)
        rel = path.relative_to(self.folder)
        heading = _HEADING_RE.fullmatch(text.splitlines()[0].strip())
        entity = heading.group(1).strip() if heading else path.stem
        doc_id = sanitize(rel.with_suffix("").as_posix())
        if doc_id in self.id_file:
            raise KnowlearnError(
                f"document id {doc_id!r} is also that of {self.id_file[doc_id]}; rename one "
                "of them",
                file=path,
            )
        self.id_file[doc_id] = path
        i = len(self.docs)
        self.docs.append(Document(doc_id, entity, text))
        self.titles.append(entity if heading else re.sub(r"[-_]+", " ", entity))
        for name in (doc_id, rel.as_posix(), rel.with_suffix("").as_posix()):
            self.paths.setdefault(name, set()).add(i)
        self.stems.setdefault(path.stem, set()).add(i)

    def link(
        self, document: str | None, entity: str | None, file: str, line: int
    ) -> list[int] | None:
        """The documents a QA line names by `document` (which wins) or `entity`; None
        where it names neither (the linker chooses)."""
        if document is not None:
            return self._by_document(document, entity, file, line)
        if entity is not None:
            return self._by_entity(entity, file, line)
        return None

    def _by_document(self, document: str, entity: str | None, file: str, line: int) -> list[int]:
        key = document.strip().replace("\\", "/").removeprefix("./")
        hits = self.paths.get(key) or self.stems.get(key, set())
        if not hits:
            raise KnowlearnError(
                f"no document {document!r} in {self.folder} (give a relative path or a file "
                "name without extension)",
                file=file,
                line=line,
                field="document",
            )
        if len(hits) > 1:
            which = ", ".join(sorted(self.docs[i].id for i in hits))
            raise KnowlearnError(
                f"{document!r} names {len(hits)} documents ({which}); give the relative path",
                file=file,
                line=line,
                field="document",
            )
        linked = sorted(hits)
        doc = self.docs[linked[0]]
        if entity is not None and entity.strip() != doc.entity:
            raise KnowlearnError(
                f"entity {entity!r} is not that of document {doc.id!r} ({doc.entity!r})",
                file=file,
                line=line,
                field="entity",
            )
        return linked

    def _by_entity(self, entity: str, file: str, line: int) -> list[int]:
        linked = self.by_entity.get(entity.strip())
        if not linked:
            raise KnowlearnError(
                f"no document has entity {entity!r} (a file's '# Heading' first line, "
                "else its name without extension)",
                file=file,
                line=line,
                field="entity",
            )
        return linked


def _read_documents(folder: Path) -> _FolderDocs:
    """Phase 1: every text file of the folder as a document, in sorted path order."""
    if not folder.is_dir():
        raise KnowlearnError("folder does not exist", file=folder)
    files = _text_files(folder)
    if not files:
        raise KnowlearnError("no .txt or .md files in this folder", file=folder)
    found = _FolderDocs(folder)
    for path in files:
        found.add(path)
    for i, d in enumerate(found.docs):
        found.by_entity.setdefault(d.entity, []).append(i)
    return found


def _read_qa(qa_path: PathLike, found: _FolderDocs) -> list[RawQA]:
    """Phase 2: the QA lines, each linked to the documents it names (if any)."""
    raw: list[RawQA] = []
    seen: dict[str, int] = {}  # id -> its line

    def parse(obj: dict[str, Any], file: str, line: int) -> None:
        reject_unknown(obj, _FOLDER_QA_FIELDS, file, line)
        qa_id = get_field(obj, "id", str, file, line, required=False, nonempty=True)
        qa_id = qa_id.strip() if qa_id is not None else f"qa-{line}"
        if qa_id in seen:
            raise KnowlearnError(
                f"duplicate id {qa_id!r} (first on line {seen[qa_id]})",
                file=file,
                line=line,
                field="id",
            )
        seen[qa_id] = line
        question = get_field(obj, "question", str, file, line, nonempty=True).strip()
        answer = get_field(obj, "answer", str, file, line, nonempty=True).strip()
        split = get_field(obj, "split", str, file, line, required=False) or "test"
        if split not in SPLITS:
            raise KnowlearnError(
                f"must be one of {SPLITS}, got {split!r}", file=file, line=line, field="split"
            )
        attribute = get_field(obj, "attribute", str, file, line, required=False)
        document = get_field(obj, "document", str, file, line, required=False, nonempty=True)
        entity = get_field(obj, "entity", str, file, line, required=False, nonempty=True)
        linked = found.link(document, entity, file, line)
        attr = DEFAULT_ATTRIBUTE if attribute is None else attribute
        raw.append(RawQA(qa_id, question, answer, split, attr, linked))

    read_jsonl(qa_path, parse, allow_array=True)
    return raw


def load_folder(folder: PathLike, qa_path: PathLike | None = None) -> Loaded:
    """A folder of .txt/.md files (searched recursively) and, optionally, a QA JSONL (or
    JSON array). Without QA the documents come out without facts, ready for `knowlearn synth`
    to write questions about them.

    Documents: one per file, in sorted relative-path order; hidden files are skipped.
    The text is the file's, stripped, with Unix line ends. The entity is the file's first
    line when that is a markdown heading "# Name", else the file name without extension
    (the stem); the id is the relative path without extension, with runs of characters
    other than letters, digits, `_ . - /` made `_` (two files with one id are an error).

    QA: `{"question": str, "answer": str, "entity": str, "document": str, "split":
    "train" | "test" (default "test"), "id": str (default "qa-{line}"), "attribute": str
    (default "fact")}`; only question and answer are required, other fields are an error
    (a misspelt "entity" must not silently unlink a pair). `document` is a file's
    relative path (with or without extension) or, failing that, its stem; `entity` an
    entity as above, which several files may share (renderings of one person): the
    pair's answer becomes a fact in each of them that contains it.
    Naming a document or entity that does not exist, or a stem that two files share, is
    an error; a pair naming neither is linked as in `load_pit` (titles: the headings,
    or the stems with "-" and "_" read as spaces).
    """
    found = _read_documents(Path(folder))
    raw = _read_qa(qa_path, found) if qa_path is not None else []
    return assemble("folder", found.docs, found.titles, raw)
