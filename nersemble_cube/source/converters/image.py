"""SVFR input images (``rgb.png``) -> ``(y, x, channel)`` uint8 RGB, decoded by the same ffmpeg as the videos."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from ...errors import SourceError
from ..files import as_path, local_copy
from .video import ffmpeg_exe, iter_frames, probe


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the png's IHDR chunk, without decoding; :class:`SourceError` if it is no png."""
    path = as_path(path)
    with path.open("rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise SourceError(f"{path}: not a png file; download it again")
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def read_png(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``path`` to ``(y, x, 3)`` uint8 RGB; with ``size=(height, width)`` a png of another
    size is a :class:`SourceError` naming the file."""
    path = as_path(path)
    with local_copy(path) as local:
        info = probe(local)
        if size is not None and (info.height, info.width) != tuple(size):
            raise SourceError(f"{path}: image is {info.width}x{info.height}, expected {size[1]}x{size[0]}; "
                              "download it again")
        return next(iter_frames(info))[0]


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write a ``(y, x, 3)`` uint8 RGB image as an 8-bit RGB png (lossless)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = image.shape[:2]
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-",
           "-frames:v", "1", "-pix_fmt", "rgb24", "-y", str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(image, dtype=np.uint8).tobytes(), check=True)
