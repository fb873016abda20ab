"""Named, typed storage settings: compression presets and the chunk layout of frame arrays.

A store records the :class:`StorageSpec` it was written with (``attrs["storage"]``), so it says
how it was made. Every preset is lossless.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from zarr.codecs import BloscCodec, ZstdCodec

CompressorName = Literal["zstd", "lz4", "none"]
COMPRESSORS: tuple[str, ...] = ("zstd", "lz4", "none")


@dataclass(frozen=True)
class StorageSpec:
    """How frame arrays are stored.

    ``compressor``: ``"zstd"`` (zstd level ``level``, the default: smallest), ``"lz4"`` (blosc-lz4,
    fastest to decode) or ``"none"``. ``frames_per_chunk``: frames of one camera per chunk along
    ``time`` (1 = one frame per chunk, the fastest random access).
    """

    compressor: CompressorName = "zstd"
    level: int = 3
    frames_per_chunk: int = 1

    def __post_init__(self) -> None:
        if self.compressor not in COMPRESSORS:
            raise ValueError(f"unknown compressor {self.compressor!r}; choose from {', '.join(COMPRESSORS)}")
        if self.frames_per_chunk < 1:
            raise ValueError(f"frames_per_chunk must be >= 1, got {self.frames_per_chunk}")

    def compressors(self) -> tuple:
        """The zarr v3 compressor codecs of this spec (empty for ``"none"``)."""
        if self.compressor == "zstd":
            return (ZstdCodec(level=self.level),)
        if self.compressor == "lz4":
            return (BloscCodec(cname="lz4", clevel=self.level, shuffle="noshuffle"),)
        return ()

    def to_attrs(self) -> dict:
        """JSON-able record stored in the store's root attrs."""
        return asdict(self)
