"""Still images -> ``(y, x, channel)`` uint8 RGB: SVFR input images (``rgb.png``), decoded by the same ffmpeg as
the videos, and the full dataset's background stills (``image_{serial}.jpg``), decoded by libjpeg-turbo
(imagecodecs) as OpenCV and Pillow decode them (bit-equal)."""

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


def jpeg_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the JPEG's frame header (SOFn), without decoding; :class:`SourceError` if it
    is no JPEG."""
    path = as_path(path)
    with path.open("rb") as f:
        data = f.read(1 << 16)  # the frame header comes after the tables, well within the first 64 KiB
    i = 2
    while data[:2] == b"\xff\xd8" and i + 9 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big")
        i += 2 + length
    raise SourceError(f"{path}: not a JPEG file; download it again")


def read_jpeg(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``path`` to ``(y, x, 3)`` uint8 RGB with libjpeg-turbo; with ``size=(height, width)`` a JPEG of
    another size is a :class:`SourceError` naming the file."""
    import imagecodecs

    path = as_path(path)
    try:
        image = imagecodecs.jpeg8_decode(path.read_bytes())
    except imagecodecs.Jpeg8Error as e:
        raise SourceError(f"{path}: not a readable JPEG ({e}); download it again") from None
    if image.ndim != 3 or image.shape[2] != 3:
        raise SourceError(f"{path}: not an RGB JPEG (shape {image.shape}); download it again")
    if size is not None and image.shape[:2] != tuple(size):
        raise SourceError(f"{path}: image is {image.shape[0]}x{image.shape[1]} (HxW), expected "
                          f"{size[0]}x{size[1]}; download it again")
    return image


def read_gray(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A single-channel image (a matte: JPEG or PNG) as ``(y, x)`` uint8; a colour file gives its first channel.
    With ``size=(height, width)`` another size is a :class:`SourceError` naming the file."""
    import imagecodecs

    path = as_path(path)
    data = path.read_bytes()
    try:
        image = imagecodecs.png_decode(data) if data[:8] == _PNG_SIGNATURE else imagecodecs.jpeg8_decode(data)
    except (imagecodecs.PngError, imagecodecs.Jpeg8Error) as e:
        raise SourceError(f"{path}: not a readable PNG or JPEG ({e})") from None
    if image.ndim == 3:
        image = image[..., 0]
    if image.dtype != np.uint8:
        raise SourceError(f"{path}: {image.dtype} pixels; mattes are 8-bit")
    if size is not None and image.shape != tuple(size):
        raise SourceError(f"{path}: image is {image.shape[0]}x{image.shape[1]} (HxW), expected {size[0]}x{size[1]}")
    return image


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write a ``(y, x, 3)`` uint8 RGB image as an 8-bit RGB png (lossless)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = image.shape[:2]
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-",
           "-frames:v", "1", "-pix_fmt", "rgb24", "-y", str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(image, dtype=np.uint8).tobytes(), check=True)
