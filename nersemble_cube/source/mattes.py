"""Alpha mattes made elsewhere, as image folders: VHAP's ``alpha_maps/`` (``preprocess_video.py``: one JPEG per
camera and extracted frame, ``cam_{serial}_{index:06d}.jpg``) or any folder of PNG/JPEG files named that way.

The full dataset ships no mattes; VHAP computes them with BackgroundMattingV2 from the background stills, on
frames it extracted with ffmpeg's ``fps`` filter (25 fps by default), numbered from 0. Which source frame a
file holds is therefore :func:`~.converters.video.fps_filter_frames` of its index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from .converters.image import jpeg_size, png_size
from .files import SourcePath, as_path

MATTE_FILE = re.compile(r"^cam_(\d+)_(\d+)\.(jpg|jpeg|png)$")
"""VHAP's names: ``{video stem}_{index:06d}.jpg`` with the video ``cam_{serial}.mp4``."""


@dataclass(frozen=True)
class MatteFolder:
    """The matte files of a folder: ``files[serial][index]`` (sorted), all of one ``size`` (height, width)."""

    folder: Path
    files: dict[str, dict[int, Path]]
    size: tuple[int, int]


def discover_mattes(folder: str | Path | SourcePath) -> MatteFolder:
    """Find ``cam_{serial}_{index}.jpg|png`` files in ``folder``; :class:`SourceError` if there are none, or
    their sizes differ (checked from the headers, nothing decoded)."""
    folder = as_path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such folder of mattes (VHAP writes them to <sequence>/alpha_maps)")
    files: dict[str, dict[int, Path]] = {}
    for path in folder.iterdir():
        m = MATTE_FILE.match(path.name)
        if m and path.is_file():
            files.setdefault(m.group(1), {})[int(m.group(2))] = path
    if not files:
        raise SourceError(f"{folder}: no mattes named cam_<serial>_<index>.jpg or .png")
    files = {s: dict(sorted(f.items())) for s, f in sorted(files.items())}
    sizes = {}
    for serial, by_index in files.items():
        for path in by_index.values():
            sizes.setdefault(png_size(path) if path.suffix == ".png" else jpeg_size(path), path)
    if len(sizes) > 1:
        shown = ", ".join(f"{h}x{w} ({p.name})" for (h, w), p in sizes.items())
        raise SourceError(f"{folder}: the mattes differ in size (height x width: {shown})")
    return MatteFolder(folder, files, next(iter(sizes)))

