"""The names of the storage presets, without imports: the command line lists them without loading zarr."""

from __future__ import annotations

from typing import Literal

CodecName = Literal["zstd", "lz4", "none", "jpegxl", "h264", "hevc", "copy"]
CODECS: tuple[str, ...] = ("zstd", "lz4", "none", "jpegxl", "h264", "hevc", "copy")
LOSSLESS: tuple[str, ...] = ("zstd", "lz4", "none")
VIDEO: tuple[str, ...] = ("h264", "hevc", "copy")
"""Presets whose chunks hold several frames of a camera as one closed GOP (``copy``: the source's own packets,
bit-equal to decoding the mp4)."""
VIDEO_FRAMES_PER_CHUNK = 16
"""Frames per chunk (one GOP) of the h264 / hevc presets unless asked otherwise: docs/performance.md."""
