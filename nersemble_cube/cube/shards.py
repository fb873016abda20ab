"""Writing whole shards of an array in the calling thread, without zarr-python's asyncio pipeline.

zarr-python encodes every chunk through its event loop: one thread per process merges each chunk into
the shard, copies the chunks into the shard buffer and hands the codecs to a thread pool, so a
conversion's worker threads mostly wait on it (see docs/performance.md). :class:`ShardWriter` runs the
array's own codec objects (their synchronous ``_encode_sync``) in the thread that calls it, joins the
chunks and the shard index (zarr v3 sharding: ``(offset, nbytes)`` uint64 pairs per chunk in Morton
order, encoded with the index codecs, at the end of the shard) once, and stores the shard with a
single write. The bytes are those zarr-python writes for the same data (``tests/test_shards.py``
compares them); an array whose codecs lack a synchronous encoder is written through zarr as before.
"""

from __future__ import annotations

import itertools

import numpy as np
import zarr
from zarr.codecs.sharding import ShardingCodec, ShardingCodecIndexLocation
from zarr.core.array_spec import ArraySpec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.dtype import UInt64
from zarr.core.indexing import morton_order_iter
from zarr.core.sync import sync

_EMPTY = np.uint64(2**64 - 1)
"""Offset and length of a chunk a shard does not hold."""


def _spec(shape: tuple[int, ...], dtype, fill_value, config) -> ArraySpec:
    return ArraySpec(shape=shape, dtype=dtype, fill_value=fill_value, config=config,
                     prototype=default_buffer_prototype())


def _encode(codecs: tuple, value: np.ndarray, spec: ArraySpec) -> bytes:
    """``value`` (an array of ``spec.shape``) through a zarr codec chain, synchronously."""
    data = default_buffer_prototype().nd_buffer.from_numpy_array(value)
    for codec in codecs:
        data = codec._encode_sync(data, spec)
        spec = codec.resolve_metadata(spec)
    return data.to_bytes()


class ShardWriter:
    """Writes regions of ``array`` that cover whole shards (or end at the array's end)."""

    def __init__(self, array: zarr.Array):
        meta = array.metadata
        self.array = array
        self.sharding = meta.codecs[0] if len(meta.codecs) == 1 and isinstance(meta.codecs[0], ShardingCodec) else None
        self.codecs = tuple(self.sharding.codecs if self.sharding else meta.codecs)
        self.outer = tuple(meta.chunk_grid.chunk_shape)  # the shard (or, unsharded, the chunk) shape
        self.chunk = tuple(self.sharding.chunk_shape) if self.sharding else self.outer
        self.fill_value = meta.fill_value
        self.spec = _spec(self.chunk, meta.data_type, meta.fill_value, array._async_array.config)
        codecs = self.codecs + (tuple(self.sharding.index_codecs) if self.sharding else ())
        self.direct = all(hasattr(c, "_encode_sync") for c in codecs) and (
            self.sharding is None or self.sharding.index_location == ShardingCodecIndexLocation.end)
        """False: some codec has no synchronous encoder; :meth:`write` then goes through zarr."""

    def write(self, start: tuple[int, ...], data: np.ndarray) -> None:
        """Store ``data`` at ``array[start[0]:start[0] + data.shape[0], ...]``. ``start`` lies on the shard
        grid and ``data`` covers whole shards, except that it may end at the array's end."""
        region = tuple(slice(s, s + n) for s, n in zip(start, data.shape))
        if not self.direct:
            self.array[region] = data
            return
        shape = self.array.shape
        for r, size, n in zip(region, self.outer, shape):
            if r.start % size or (r.stop != n and r.stop % size):
                raise ValueError(f"region {region} is not whole shards of {self.outer} (or to the array's end)")
        grid = [range(r.start // o, -(-r.stop // o)) for r, o in zip(region, self.outer)]
        for shard in itertools.product(*grid):
            corner = tuple(i * o for i, o in zip(shard, self.outer))
            block = data[tuple(slice(c - s, c - s + o) for c, s, o in zip(corner, start, self.outer))]
            value = self._shard(block) if self.sharding else self._chunk(block)
            key = "/".join(filter(None, (self.array.path, self.array.metadata.encode_chunk_key(shard))))
            sync(self.array.store.set(key, default_buffer_prototype().buffer.from_bytes(value)))

    def _chunk(self, block: np.ndarray) -> bytes:
        """One chunk's bytes; a chunk cut by the array's end is padded with the fill value, as zarr does."""
        if block.shape != self.chunk:
            full = np.full(self.chunk, self.fill_value, dtype=block.dtype)
            full[tuple(slice(0, n) for n in block.shape)] = block
            block = full
        return _encode(self.codecs, block, self.spec)

    def _shard(self, block: np.ndarray) -> bytes:
        """A shard's bytes: its chunks in Morton order, then the index. Chunks past the array's end are absent."""
        per_shard = tuple(o // c for o, c in zip(self.outer, self.chunk))
        index = np.full(per_shard + (2,), _EMPTY, dtype="<u8")
        parts, offset = [], 0
        for coords in morton_order_iter(per_shard):
            corner = tuple(i * c for i, c in zip(coords, self.chunk))
            if any(x >= n for x, n in zip(corner, block.shape)):
                continue
            part = self._chunk(block[tuple(slice(x, x + c) for x, c in zip(corner, self.chunk))])
            index[coords] = (offset, len(part))
            parts.append(part)
            offset += len(part)
        spec = _spec(per_shard + (2,), UInt64(endianness="little"), _EMPTY,
                     self.spec.config)
        parts.append(_encode(tuple(self.sharding.index_codecs), index, spec))
        return b"".join(parts)
