"""The JPEG-XL codec (libjxl via imagecodecs) for uint8 frame chunks, registered with zarr as
``nersemble_cube.jpegxl``: lossy (or lossless at distance 0) image compression of one frame per chunk.

Reading a store written with it needs ``import nersemble_cube`` (which registers it) and imagecodecs.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer


DECODE_THREADS = min(os.cpu_count() or 1, 8)
"""Threads libjxl decodes one frame with (its groups decode in parallel; docs/performance.md has the curve)."""


@dataclass(frozen=True)
class JpegXlCodec(ArrayBytesCodec):
    """JPEG-XL (libjxl via imagecodecs) for uint8 chunks holding one image: ``(1, ..., y, x[, 3])``.

    ``distance`` is libjxl's Butteraugli distance (0 = mathematically lossless, 1 = visually
    lossless, higher = smaller); ``effort`` 1-9 trades encoding time for size.
    """

    is_fixed_size = False
    distance: float = 1.0
    effort: int = 3

    @classmethod
    def from_dict(cls, data: dict) -> Self:
        _, config = parse_named_configuration(data, "nersemble_cube.jpegxl", require_configuration=False)
        return cls(**(config or {}))

    def to_dict(self) -> dict:
        return {"name": "nersemble_cube.jpegxl", "configuration": {"distance": self.distance, "effort": self.effort}}

    def validate(self, *, shape, dtype, chunk_grid) -> None:  # noqa: ANN001 - zarr's signature
        if np.dtype(dtype.to_native_dtype()) != np.uint8:
            raise ValueError("JpegXlCodec stores uint8 images only")

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError("JPEG-XL sizes depend on the content")

    @staticmethod
    def _image_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
        image = shape[-3:] if shape[-1] in (3, 4) and len(shape) >= 3 else shape[-2:]
        if int(np.prod(shape[: len(shape) - len(image)])) != 1:
            raise ValueError(f"JpegXlCodec needs one image per chunk, got chunk shape {shape}")
        return image

    def _encode(self, array: np.ndarray) -> bytes:
        import imagecodecs  # here, not at import: reading other codecs' cubes does not need it

        image = np.ascontiguousarray(array.reshape(self._image_shape(array.shape)))
        if self.distance == 0:
            return imagecodecs.jpegxl_encode(image, lossless=True, effort=self.effort)
        return imagecodecs.jpegxl_encode(image, distance=self.distance, effort=self.effort)

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer:
        return chunk_spec.prototype.buffer.from_bytes(self._encode(chunk_array.as_numpy_array()))

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        import imagecodecs

        image = imagecodecs.jpegxl_decode(chunk_bytes.to_bytes(), numthreads=DECODE_THREADS)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(image.reshape(chunk_spec.shape))

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)


register_codec("nersemble_cube.jpegxl", JpegXlCodec)
