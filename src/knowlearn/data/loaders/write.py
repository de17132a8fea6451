"""Write loaded records as the files `knowlearn train` reads.

Every layout ends here, so that any of them runs with `knowlearn train
data.documents=... data.qa=...`: `documents.jsonl`, `qa.jsonl` and, with a report,
`load_report.json`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from knowlearn.data.loaders.common import PathLike
from knowlearn.data.loaders.report import LoadReport
from knowlearn.data.records import Document, QAPair, write_records
from knowlearn.errors import KnowlearnError
from knowlearn.io import write_json


def write_loaded(
    out_dir: PathLike,
    docs: Sequence[Document],
    qa: Sequence[QAPair],
    *,
    report: LoadReport | None = None,
    keep_orphans: bool = False,
) -> dict[str, Path]:
    """Write `documents.jsonl` and `qa.jsonl` (atomically) that `knowlearn train` reads.

    QA pairs whose entity has no document (counted in the report as without a document)
    are left out unless `keep_orphans`: training refuses them. Without any QA pair to
    write, no qa.jsonl is written and an old one is removed, so a stale file from an
    earlier load cannot be trained on. With `report`, also `load_report.json`.
    Returns the written paths by name ("documents", "qa", "report").
    """
    out = Path(out_dir)
    if not docs:
        raise KnowlearnError("no documents to write", file=out)
    entities = {d.entity for d in docs}
    kept = [q for q in qa if keep_orphans or q.entity in entities]
    paths = {"documents": out / "documents.jsonl"}
    writes: list[tuple[Path, Callable[[Path], None]]] = [
        (paths["documents"], lambda p: write_records(p, docs))
    ]
    if kept:
        paths["qa"] = out / "qa.jsonl"
        writes.append((paths["qa"], lambda p: write_records(p, kept)))
    if report is not None:
        paths["report"] = out / "load_report.json"
        writes.append((paths["report"], lambda p: write_json(p, report.to_dict())))
    try:
        for path, write in writes:
            write(path)
        if not kept:
            (out / "qa.jsonl").unlink(missing_ok=True)
    except OSError as e:
        raise KnowlearnError(f"cannot write: {e.strerror}", file=e.filename or out) from None
    return paths
