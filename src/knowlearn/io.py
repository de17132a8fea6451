"""Atomic file writes and JSONL reading with file:line errors.

Every file knowlearn writes goes to a temporary file in the same folder and is renamed
into place, so a kill or a full disk mid-write leaves the previous file intact.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from knowlearn.errors import KnowlearnError

T = TypeVar("T")
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temp file beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def json_safe(x: Any) -> Any:
    """NaN and infinities -> null: JSON has no such numbers, and strict readers (jq, JS,
    Go) refuse Python's `NaN`."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    return x


def dumps(obj: Any, **kwargs: Any) -> str:
    """json.dumps that always writes strict JSON (see json_safe)."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_open(path) as f:
        for row in rows:
            f.write(dumps(row, ensure_ascii=False) + "\n")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object_pairs_hook: a key given twice is an error, not "the last one wins"."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _binary_kind(data: bytes) -> str | None:
    """What a file that cannot be JSONL text is, from its first bytes (or None)."""
    head = data[:4096]
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file (decompress it first: gunzip)"
    if head.startswith((b"PK\x03\x04", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")):
        return "a compressed archive (unpack it first)"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head.count(b"\x00") > len(head) // 4:
        return "UTF-16 or another wide encoding (save it as UTF-8)"
    return None


MAX_LINE_CHARS = 10_000_000  # one record; a longer line is not a JSONL record (a whole dump?)


def _decode_record(
    decode: Callable[[], Any], path: Path, line: int, hint: str = "", *, whole_file: bool = False
) -> Any:
    """One JSON value from `decode()`, its failures as errors naming file and line
    (`whole_file`: `decode` reads the whole text, so a syntax error's own line is the file's)."""
    try:
        return decode()
    except _DuplicateKey as e:
        raise KnowlearnError(
            "given twice in one record (JSON keeps only the last; say it once)",
            file=path,
            line=line,
            field=e.key,
        ) from None
    except json.JSONDecodeError as e:
        raise KnowlearnError(
            f"malformed JSON: {e.msg} (column {e.colno}){hint}",
            file=path,
            line=e.lineno if whole_file else line,
        ) from None
    except RecursionError:
        raise KnowlearnError("malformed JSON: nested too deeply", file=path, line=line) from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise KnowlearnError(
            f"malformed JSON: {str(e).split(';')[0]}", file=path, line=line
        ) from None


def _read_json_text(path: Path) -> str:
    """The text of a JSON or JSONL file, or an error saying what else the file is."""
    if path.is_dir():
        raise KnowlearnError("is a directory, not a JSONL file", file=path)
    if not path.is_file():
        raise KnowlearnError("file does not exist", file=path)
    data = path.read_bytes()
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM (Windows editors write one)
    kind = _binary_kind(data)
    if kind:
        raise KnowlearnError(f"not JSONL text: {kind}", file=path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise KnowlearnError(f"not valid UTF-8 (byte {e.start})", file=path, line=line) from None


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _array_records(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    """(line where it starts, value) of each element of a JSON array file, so that an
    error in the 900th record of a pretty-printed file names its line, as in JSONL."""
    decoder = json.JSONDecoder(object_pairs_hook=_unique_keys)
    line, counted = 1, 0

    def line_at(pos: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, pos)
        counted = pos
        return line

    pos = _JSON_SPACE.match(text, text.index("[") + 1).end()
    if text.startswith("]", pos):
        pos = _JSON_SPACE.match(text, pos + 1).end()
    else:
        while True:
            at = line_at(pos)
            value, end = _decode_record(
                lambda p=pos: decoder.raw_decode(text, p), path, at, whole_file=True
            )
            yield at, value
            pos = _JSON_SPACE.match(text, end).end()
            if text.startswith(",", pos):
                pos = _JSON_SPACE.match(text, pos + 1).end()
                continue
            if not text.startswith("]", pos):
                raise KnowlearnError(
                    "malformed JSON: expected ',' or ']' after a record of the array",
                    file=path,
                    line=line_at(pos),
                )
            pos = _JSON_SPACE.match(text, pos + 1).end()
            break
    if pos < len(text):
        raise KnowlearnError(
            "malformed JSON: text after the closing ']' of the array", file=path, line=line_at(pos)
        )


def _jsonl_records(text: str, path: Path, hint: str) -> Iterator[tuple[int, Any]]:
    """(line, value) of each non-blank line. Lines end at "\n" only (U+2028 and friends
    are valid inside JSON strings)."""
    for i, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_CHARS:
            raise KnowlearnError(
                f"line is {len(raw):,} characters long, over the limit of {MAX_LINE_CHARS:,} per record",
                file=path,
                line=i,
            )
        why = hint
        if not why and raw.strip() == "{":
            why = " (one JSON object over several lines? JSONL needs one object per line)"
        elif not why and not raw.lstrip().startswith(("{", "[", '"')):
            why = (
                " (plain text, not JSONL? `knowlearn import --layout folder` converts a "
                "folder of .txt/.md files)"
            )
        yield (
            i,
            _decode_record(
                lambda r=raw: json.loads(r, object_pairs_hook=_unique_keys), path, i, why
            ),
        )


def read_jsonl(
    path: str | Path,
    parse: Callable[[dict[str, Any], str, int], T],
    *,
    allow_array: bool = False,
) -> list[T]:
    """Read one record per line; `parse(obj, file, line)` validates it.

    Blank lines are skipped; a UTF-8 BOM and CRLF line ends are accepted. Errors name the
    file and the 1-based line number. With `allow_array`, a file that is one JSON array
    of records (`[{...}, {...}]`, pretty-printed or not) is read as such, each record's
    line being where it starts; without, such a file is refused with what to do.
    """
    path = Path(path)
    text = _read_json_text(path)
    array = text.lstrip().startswith("[")
    if array and allow_array:
        records = _array_records(text, path)
        hint = ""
    else:
        # A JSON array or a pretty-printed object is the most common not-quite-JSONL file.
        hint = (
            " (the file is one JSON array, not JSONL: write one object per line, e.g. jq -c '.[]')"
            if array
            else ""
        )
        records = _jsonl_records(text, path, hint)
    out: list[T] = []
    for i, obj in records:
        if not isinstance(obj, dict):
            raise KnowlearnError(
                f"expected a JSON object, got {type(obj).__name__}{hint}", file=path, line=i
            )
        out.append(parse(obj, str(path), i))
    if not out:
        why = (
            "an empty JSON array"
            if array and allow_array
            else "the file is empty or only blank lines"
        )
        raise KnowlearnError(f"no records ({why})", file=path)
    return out
