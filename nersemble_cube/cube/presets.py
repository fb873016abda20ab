"""The names of the storage presets, without imports: the command line lists them without loading zarr."""

from __future__ import annotations

from typing import Literal

CodecName = Literal["zstd", "lz4", "none", "jpegxl"]
CODECS: tuple[str, ...] = ("zstd", "lz4", "none", "jpegxl")
LOSSLESS: tuple[str, ...] = ("zstd", "lz4", "none")
