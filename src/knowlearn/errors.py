"""The project's one error type: every user-facing problem names where it is."""

from __future__ import annotations

from pathlib import Path


class KnowlearnError(Exception):
    """A problem with the user's input, config or environment.

    The CLI prints it as one line (no traceback) and exits non-zero, so the message must
    say what is wrong and where: file, line (for JSONL) and field, whichever apply.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file + (f":{self.line}" if self.line is not None else "")
        if self.field is not None:
            where = f"{where} field '{self.field}'" if where else f"field '{self.field}'"
        return f"{where}: {self.reason}" if where else self.reason


class RenamedKeyWarning(FutureWarning):
    """A config key given under its former name: it still works; the CLI says so in one line."""
