"""The full dataset's metadata tables (``metadata_participants.csv``, ``metadata_sequences.csv``) -> attrs.

Each table is kept whole, as strings, column by column, whatever columns it has: ``{"columns": [...],
"rows": [[...], ...]}``. In ``metadata_sequences.csv`` (the toolkit's ``NeRSembleMetadata``) a participant
has a sequence where its cell is ``x`` or ``m``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import SourceError
from .files import as_path


def read_table(path: str | Path) -> dict[str, list]:
    """One CSV table as ``{"columns": [...], "rows": [[...], ...]}`` (strings); :class:`SourceError` if unreadable."""
    path = as_path(path)
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SourceError(f"{path}: not a readable CSV table ({e}); download it again") from None
    if not rows:
        raise SourceError(f"{path}: empty table; download it again")
    return {"columns": rows[0], "rows": [r for r in rows[1:] if r]}


def read_metadata(tables: dict[str, Path]) -> dict[str, dict[str, list]]:
    """Every table of ``tables`` (file name -> path), by file name."""
    return {name: read_table(path) for name, path in tables.items()}

