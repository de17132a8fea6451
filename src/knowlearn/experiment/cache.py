"""Content-addressed stage outputs, so arms that share a stage compute it once.

A stage's key hashes everything its output depends on (its config, its input model's key,
the data and tokenizer files). Stages live in `CACHE/NAME-KEY/`; a run directory links to
the ones it used. A file lock keeps two processes from computing the same stage at once:
the second waits, then finds it done.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _hashed(f: dataclasses.Field[Any], obj: Any) -> bool:
    """Whether a dataclass field enters the digest: metadata {"hash": False} never (it only
    sets other fields); {"hash": "unless_default"} only when not at its default; {"hash": f}
    only where f(the dataclass) is true (an option that matters only in some settings)."""
    rule = f.metadata.get("hash", True)
    if rule == "unless_default":
        return getattr(obj, f.name) != f.default
    return bool(rule(obj)) if callable(rule) else bool(rule)


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able object (dataclasses allowed); dataclass fields as
    `_hashed` says, so a field added later keeps the keys of stages cached before it."""

    def plain(x: Any) -> Any:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {
                f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x) if _hashed(f, x)
            }
        if isinstance(x, dict):
            return {str(k): plain(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [plain(v) for v in x]
        if isinstance(x, Path):
            return str(x)
        return x

    return hashlib.sha256(json.dumps(plain(obj), sort_keys=True).encode()).hexdigest()[:16]


def file_digest(path: str | Path | None) -> str | None:
    """Hash of a file's bytes (a folder: of its files' names and bytes); None for None."""
    if path is None:
        return None
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def link(run_dir: Path, name: str, target: Path) -> None:
    """Make `run_dir/name` a relative symlink to `target` (replacing an old link)."""
    where = run_dir / name
    rel = os.path.relpath(target, run_dir)
    if where.is_symlink():
        if os.readlink(where) == rel:
            return
        where.unlink()
    where.symlink_to(rel, target_is_directory=True)
