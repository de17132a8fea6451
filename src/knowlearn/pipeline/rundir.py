"""The run directory: who may write it (a lock), whether it holds this run (the config
check), and the content-addressed stage cache its stages may live in.

A stage's key hashes everything its output depends on (its config, its input model's key,
the data and tokenizer files). Cached stages live in `CACHE/NAME-KEY/`; a run directory
links to the ones it used. A file lock keeps two processes from computing the same stage
at once: the second waits, then finds it done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout

from knowlearn.config import (
    INPUT_PATHS,
    RunConfig,
    flatten,
    renamed_keys,
    save_config,
    to_dict,
)
from knowlearn.errors import KnowlearnError
from knowlearn.io import write_json
from knowlearn.pipeline.shipped import restore_shipped_stage


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
    `_hashed` says, so a field added later keeps the keys of stages cached before it, and a
    renamed field under its former name (metadata "was"), so a rename keeps them too."""

    def plain(x: Any) -> Any:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {
                f.metadata.get("was", f.name): plain(getattr(x, f.name))
                for f in dataclasses.fields(x)
                if _hashed(f, x)
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
    """Hold an exclusive lock on `path` (created if needed) for the block, waiting for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


def link(run_dir: Path, name: str, target: Path) -> None:
    """Make `run_dir/name` a relative symlink to `target` (replacing an old link)."""
    where = run_dir / name
    rel = os.path.relpath(target, run_dir)
    if where.is_symlink():
        if os.readlink(where) == rel:
            return
        where.unlink()
    where.symlink_to(rel, target_is_directory=True)


def _writing_run_dir(out: Path, write: Callable[[], Any]) -> Any:
    """Create `out` (refusing a file in its place), then `write()`; an OSError from either is
    one error naming the run directory."""
    if out.exists() and not out.is_dir():
        raise KnowlearnError("is a file, not a run directory; choose another `out`", file=out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        return write()
    except OSError as e:
        raise KnowlearnError(f"cannot write the run directory: {e.strerror}", file=out) from None


@contextmanager
def run_dir_lock(out: Path) -> Iterator[None]:
    """Hold `out/.lock` while this process writes the run; a second run into `out` fails at once
    (a flock, through filelock: the kernel drops it when the holder dies, even by SIGKILL).
    The holder writes its pid into the lock file, for the second run's message."""
    path = out / ".lock"
    _writing_run_dir(out, path.touch)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:  # before OSError, which it is
        holder = path.read_text(encoding="utf-8").strip() or "?"
        raise KnowlearnError(
            f"is in use by another knowlearn run (pid {holder}); wait for it to end, "
            "or choose another `out`",
            file=out,
        ) from None
    try:
        path.write_text(f"{os.getpid()}\n", encoding="utf-8")
        yield
    finally:
        lock.release()


# What a run directory may hold before its config.yaml: the lock, and `knowlearn augment`'s output.
_BEFORE_CONFIG = {".lock", "augmented"}


def check_out_dir(cfg: RunConfig) -> None:
    """Refuse, reading only, an `out` that is not this run's: a file, a folder of other
    files (which a run would read as its own data), or a run with a different config."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise KnowlearnError("is a file, not a run directory; choose another `out`", file=out)
    if not (out / "config.yaml").is_file() and out.is_dir():
        try:
            foreign = sorted(p.name for p in out.iterdir() if p.name not in _BEFORE_CONFIG)
        except OSError as e:
            raise KnowlearnError(f"cannot read the run directory: {e.strerror}", file=out) from None
        if foreign:
            raise KnowlearnError(
                f"is not a knowlearn run directory (no config.yaml, but it holds {', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); choose an empty or new `out`",
                file=out,
            )
    _check_same_run(cfg, out)


def prepare_out_dir(cfg: RunConfig) -> Path:
    """Create the run directory; refuse one that holds a run with a different config."""
    out = Path(cfg.out)
    check_out_dir(cfg)
    _writing_run_dir(out, lambda: save_config(cfg, out / "config.yaml"))
    return out


# Config keys a rerun may change: they decide what is reported, not what is computed.
NOT_RUN_IDENTITY = {"report_to"}


def _same_value(key: str, new: Any, old: Any) -> bool:
    """Config values equal; input paths are equal when they name the same file (a config
    saved before paths were made absolute names it relative to the current folder)."""
    if new == old:
        return True
    if key in INPUT_PATHS and isinstance(new, str) and isinstance(old, str):
        return os.path.realpath(os.path.expanduser(new)) == os.path.realpath(
            os.path.expanduser(old)
        )
    return False


def _check_same_run(cfg: RunConfig, out: Path) -> None:
    saved = out / "config.yaml"
    if saved.is_file():
        try:
            old = yaml.safe_load(saved.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            old = None
        if not isinstance(old, dict):
            raise KnowlearnError(
                "is not a readable run config (a damaged run?); choose another `out`, or delete the run",
                file=saved,
            )
        renamed = renamed_keys(RunConfig)  # a run saved before a rename is the same run
        new = flatten(to_dict(cfg))
        was = {renamed.get(k, k): v for k, v in flatten(old).items()}
        # A field added after the run was made (absent from its config) at its default
        # changes nothing the run computed: the run is the same, and resumes.
        added = {k: v for k, v in flatten(to_dict(RunConfig())).items() if k not in was}
        diff = sorted(
            k
            for k in new.keys() | was.keys()
            if k not in NOT_RUN_IDENTITY
            and not _same_value(k, new.get(k), was.get(k))
            and not (k in added and new.get(k) == added[k])
        )
        if diff:
            raise KnowlearnError(
                f"already holds a different run (changed: {', '.join(diff)}); choose another `out`, or delete it",
                file=out,
            )


class WallClock:
    """Wall time summed over every invocation of one run (a run stopped by Ctrl-C or a
    kill and resumed took all of them), kept in OUT/wall_time.json."""

    def __init__(self, out: Path, t_start: float) -> None:
        self.path = out / "wall_time.json"
        self.t_start = t_start
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            self.before = float(saved["seconds"])
            self.invocations = int(saved["invocations"]) + 1
        except (OSError, ValueError, KeyError, TypeError):
            self.before, self.invocations = 0.0, 1
        self.finished = (out / "results.json").is_file()  # a rerun that only reads results

    def total(self) -> float:
        return round(self.before + time.perf_counter() - self.t_start, 2)

    def save(self) -> None:
        """Record this invocation so far (at every stage end, and when it ends in an error
        or Ctrl-C: a SIGKILL loses only the time since the last stage ended)."""
        if not self.finished:
            write_json(self.path, {"seconds": self.total(), "invocations": self.invocations})


def cached_stage(
    cfg: RunConfig, out: Path, name: str, key: str, make: Callable[[Path], Path], main: bool = True
) -> Path:
    """Run `make(stage_dir)` in the run dir, or in the shared cache (locked, linked from the run).

    Under many processes only the main one links and locks: the others train beside it.
    """
    if cfg.cache is None:
        return make(out / name)
    cache = Path(cfg.cache)
    if not main:
        return make(cache / f"{name}-{key}")
    link(out, name, cache / f"{name}-{key}")  # first, so progress can be followed through it
    with locked(cache / f"{name}-{key}.lock"):
        restore_shipped_stage(cache / f"{name}-{key}")  # the same key: the same stage, shipped
        return make(cache / f"{name}-{key}")
