"""Source files wherever fsspec reaches them: a local path, or a URL (``s3://bucket/benchmark/...``,
``gs://...``, ``memory://...``) as a :class:`upath.UPath` with the pathlib API the converters use.

Formats read in Python (json, npz, pcd, png headers) stream through fsspec; ffmpeg needs a local
file, so :func:`local_copy` downloads a remote video or image for the duration of its decoding.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import SourceError

SourcePath = Any
"""A :class:`pathlib.Path` or, for remote sources, a :class:`upath.UPath`."""


def as_path(where: str | os.PathLike | SourcePath, storage_options: dict | None = None) -> SourcePath:
    """``where`` as a path object: local paths (and ``file://`` URLs) as :class:`~pathlib.Path` with ``~``
    expanded, other URLs as :class:`upath.UPath` (fsspec's usual configuration and credentials, or
    ``storage_options``); a path object is returned as it is."""
    if isinstance(where, Path) or hasattr(where, "fs"):
        return where
    text = os.fspath(where).removeprefix("file://")
    if "://" not in text:
        return Path(text).expanduser()
    try:
        from upath import UPath

        return UPath(text, **(storage_options or {}))
    except ImportError as e:
        raise SourceError(f"{text}: reading a remote benchmark folder needs {e.name}: "
                          "pip install 'nersemble-cube[remote]'") from None


def is_remote(path: SourcePath) -> bool:
    return not isinstance(path, Path)


@contextlib.contextmanager
def local_copy(path: SourcePath) -> Iterator[Path]:
    """``path`` itself if local, else a temporary local copy, deleted on exit."""
    if not is_remote(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="nersemble-cube-src-") as tmp:
        local = Path(tmp) / path.name
        try:
            path.fs.get_file(path.path, str(local))
        except (OSError, FileNotFoundError) as e:
            raise SourceError(f"{path}: cannot be downloaded ({e})") from None
        yield local
