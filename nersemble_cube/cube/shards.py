"""Writing whole shards, and reading single chunks, in the calling thread, without zarr-python's asyncio
pipeline.

zarr-python encodes every chunk through its event loop: one thread per process merges each chunk into
the shard, copies the chunks into the shard buffer and hands the codecs to a thread pool, so a
conversion's worker threads mostly wait on it (see docs/performance.md). :class:`ShardWriter` runs the
array's own codec objects (their synchronous ``_encode_sync``) in the thread that calls it, computes each
chunk's crc32c apart (zarr's codec appends it with a copy of the chunk), and stores the chunks and the shard
index (zarr v3 sharding: ``(offset, nbytes)`` uint64 pairs per chunk in Morton order, encoded with the index
codecs, at the end of the shard) one after the other into a local file, or joined once into one buffer for
an object store. The bytes are those zarr-python writes for the same data (``tests/test_shards.py``
compares them); an array whose codecs lack a synchronous encoder is written through zarr as before.

:class:`ChunkReader` is the read side: it keeps each shard's index once read, so a random frame costs one
ranged read and the decode (zarr-python reads the index again for every selection), and decompresses the
lossless presets' chunks straight into a new array after checking their crc32c (zarr's codecs hand back the
decompressor's read-only buffer, which xarray and data loaders then copy).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from crc32c import crc32c  # releases the GIL (google_crc32c, zarr's, holds it): threads check chunks at once
import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ZstdCodec
from zarr.codecs.sharding import ShardingCodec, ShardingCodecIndexLocation
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.storage import LocalStore, WrapperStore
from zarr.core.array_spec import ArraySpec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.dtype import UInt64
from zarr.core.indexing import _morton_order  # zarr 3.1 to 3.4 alike: the (n, ndim) coordinates in Morton order
from zarr.core.sync import sync

from .codecs.video import Decoding, VideoCodec

_EMPTY = np.uint64(2**64 - 1)
"""Offset and length of a chunk a shard does not hold."""


def _spec(shape: tuple[int, ...], dtype, fill_value, config) -> ArraySpec:
    return ArraySpec(shape=shape, dtype=dtype, fill_value=fill_value, config=config,
                     prototype=default_buffer_prototype())


def _decode(codecs: tuple, data, spec: ArraySpec) -> np.ndarray:
    """Bytes (a zarr ``Buffer``) back through a codec chain, synchronously (checksums are verified)."""
    specs = [spec]
    for codec in codecs[:-1]:
        specs.append(codec.resolve_metadata(specs[-1]))
    for codec, s in zip(reversed(codecs), reversed(specs)):
        data = codec._decode_sync(data, s)
    return data.as_numpy_array()


_CHECKSUM_MESSAGE = "Stored and computed checksum do not match"
"""How zarr's ``Crc32cCodec`` (and its shard index) words the ``ValueError`` of a chunk whose bytes changed;
:func:`_checked` says the same (tests/test_dependency_internals.py pins zarr's wording)."""


def is_checksum_mismatch(error: BaseException) -> bool:
    """``error`` is a crc32c check refusing a chunk's bytes (zarr's codec or this module's reader)."""
    return isinstance(error, ValueError) and str(error).startswith(_CHECKSUM_MESSAGE)


def _checked(data: np.ndarray) -> np.ndarray:
    """The bytes before a crc32c codec's 4-byte little-endian trailer, once the checksum matches them (the
    ``ValueError`` zarr's ``Crc32cCodec`` raises otherwise)."""
    inner, stored = data[:-4], int.from_bytes(data[-4:].tobytes(), "little")
    if crc32c(inner) != stored:
        raise ValueError(f"{_CHECKSUM_MESSAGE}: the chunk's crc32c is {stored:#010x}")
    return inner


def _with_crc(data: bytes | np.ndarray) -> list[np.ndarray]:
    """A chunk's encoded bytes and its crc32c trailer (little-endian), as parts to store one after the other."""
    raw = np.frombuffer(data, np.uint8)
    return [raw, np.frombuffer(crc32c(raw).to_bytes(4, "little"), np.uint8)]


def _direct_decoder(codecs: tuple, spec: ArraySpec) -> Callable[..., np.ndarray] | None:
    """For the lossless chains frames are stored with (``bytes``, then ``zstd``, ``blosc`` or nothing, then
    ``crc32c``): a function from a chunk's stored bytes (uint8) to the chunk, decompressed straight into a
    new, writable array of ``spec.shape`` (zarr's path hands back the decompressor's read-only buffer, which a
    caller that needs a writable array copies again), or into ``out`` (an array of that shape and type, C
    order). None for any other chain (zarr's codecs decode it)."""
    if len(codecs) not in (2, 3) or not isinstance(codecs[0], BytesCodec) or not isinstance(codecs[-1], Crc32cCodec):
        return None
    dtype = spec.dtype.to_native_dtype()
    if dtype.itemsize > 1 and (codecs[0].endian is None or codecs[0].endian.value != sys.byteorder):
        return None
    middle = codecs[1] if len(codecs) == 3 else None
    if middle is not None and not isinstance(middle, (ZstdCodec, BloscCodec)):
        return None
    inflate = None if middle is None else numcodecs.Zstd() if isinstance(middle, ZstdCodec) else numcodecs.Blosc()

    def decode(data: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(spec.shape, dtype) if out is None else out
        raw = out.reshape(-1).view(np.uint8)
        inner = _checked(data)
        if inflate is None:
            raw[:] = inner
        else:
            inflate.decode(inner, out=raw)
        return out

    return decode


def _encode(codecs: tuple, value: np.ndarray, spec: ArraySpec) -> np.ndarray:
    """``value`` (an array of ``spec.shape``) through a zarr codec chain, synchronously: its bytes as uint8."""
    data = default_buffer_prototype().nd_buffer.from_numpy_array(value)
    for codec in codecs:
        data = codec._encode_sync(data, spec)
        spec = codec.resolve_metadata(spec)
    return data.as_numpy_array()


class _Layout:
    """An array's chunk layout and codecs, as the two classes below use them."""

    def __init__(self, array: zarr.Array):
        meta = array.metadata
        self.array = array
        self.sharding = meta.codecs[0] if len(meta.codecs) == 1 and isinstance(meta.codecs[0], ShardingCodec) else None
        self.codecs = tuple(self.sharding.codecs if self.sharding else meta.codecs)
        self.outer = tuple(meta.chunk_grid.chunk_shape)  # the shard (or, unsharded, the chunk) shape
        self.chunk_shape = tuple(self.sharding.chunk_shape) if self.sharding else self.outer
        self.per_shard = tuple(o // c for o, c in zip(self.outer, self.chunk_shape))
        self.fill_value = meta.fill_value
        self.spec = _spec(self.chunk_shape, meta.data_type, meta.fill_value, array._async_array.config)
        self.index_spec = _spec(self.per_shard + (2,), UInt64(endianness="little"), _EMPTY, self.spec.config)
        codecs = self.codecs + (tuple(self.sharding.index_codecs) if self.sharding else ())
        self.direct = all(hasattr(c, "_encode_sync") and hasattr(c, "_decode_sync") for c in codecs) and (
            self.sharding is None or self.sharding.index_location == ShardingCodecIndexLocation.end)
        """False: some codec has no synchronous coder; reads and writes then go through zarr."""
        shape = array.shape
        self.row_blocks = -(-shape[2] // self.chunk_shape[2]) if len(shape) > 3 and self.chunk_shape[1] == 1 else 1
        """Chunks each frame is cut into along ``y`` (``StorageSpec.row_blocks``; 1: a frame per chunk)."""
        self.checksummed = isinstance(self.codecs[-1], Crc32cCodec)
        """The chain ends with a crc32c: the writer keeps each chunk's 4-byte checksum apart from its bytes."""
        store = array.store
        while isinstance(store, WrapperStore):
            store = store._store
        self.root = Path(store.root) if isinstance(store, LocalStore) else None
        """A local store's folder: shards are read and written with plain file calls (zarr's asynchronous
        store hands each call to a thread and back; its write wants the shard in one buffer)."""

    def key(self, outer: tuple[int, ...]) -> str:
        """The store key of the shard (or, unsharded, the chunk) at grid position ``outer``."""
        return "/".join(filter(None, (self.array.path, self.array.metadata.encode_chunk_key(outer))))


class ChunkReader(_Layout):
    """Reads single chunks of ``array`` (opened read-only), caching the shard indexes it has read.

    For a store that does not change while it is read (the index of a rewritten shard would be stale).
    """

    def __init__(self, array: zarr.Array):
        super().__init__(array)
        self._indexes: dict[tuple[int, ...], np.ndarray | None] = {}
        self._decode = _direct_decoder(self.codecs, self.spec)
        self._video = self.codecs[0] if isinstance(self.codecs[0], VideoCodec) and self.direct and \
            len(self.codecs) == 2 and self.checksummed else None
        self._decoding: tuple[tuple[int, ...], Decoding | None] | None = None
        """The video chunk last read from and its decoder (None: a chunk the store does not hold)."""
        self._decoding_lock = threading.Lock()  # one decoder, so one thread at a time moves it

    def __getstate__(self) -> dict:  # to another process (DataLoader workers): the decoder stays here
        return {**self.__dict__, "_decoding": None, "_decoding_lock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _decoding_lock=threading.Lock())

    def chunk(self, coords: tuple[int, ...]) -> np.ndarray:
        """The decoded chunk at chunk-grid position ``coords``: a new, writable array of ``chunk_shape`` (the
        fill value where the store holds no such chunk). The lossless presets decompress straight into it."""
        if not self.direct:
            return self.array[tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, self.chunk_shape))]
        data = self._stored(coords)
        if data is None:
            return np.full(self.chunk_shape, self.fill_value, dtype=self.array.dtype)
        if self._decode is not None:
            return self._decode(data)
        chunk = _decode(self.codecs, default_buffer_prototype().buffer.from_array_like(data), self.spec)
        return chunk if chunk.flags.writeable else chunk.copy()  # a codec that hands back its own buffer

    def frame(self, coords: tuple[int, ...], k: int) -> np.ndarray:
        """``chunk(coords)[0, k]`` (a new, writable array): frame ``k`` of the chunk along ``time``. A video chunk
        is decoded only as far as frame ``k``, continuing the decoder of the last chunk read when it is the same
        chunk and a later frame (reads in order then cost one frame each)."""
        if self.row_blocks > 1:
            return self.frame_of_blocks(coords)
        if self._video is None:
            return self.chunk(coords)[0, k]
        with self._decoding_lock:
            if self._decoding is None or self._decoding[0] != coords:
                data = self._stored(coords)
                decoding = None if data is None else self._video.decoding(_checked(data), self.chunk_shape)
                self._decoding = (coords, decoding)
            frame = None if self._decoding[1] is None else self._decoding[1].frame(k)
        return np.full(self.chunk_shape[2:], self.fill_value, np.uint8) if frame is None else frame

    def frame_of_blocks(self, coords: tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray:
        """The frame whose first row block is the chunk at ``coords``, its blocks joined (the last one cropped)
        into ``out`` (a new array if None; ``(y, x[, channel])`` of the array's frame shape)."""
        height, rows = self.array.shape[2], self.chunk_shape[2]
        out = np.empty(self.array.shape[2:], self.array.dtype) if out is None else out
        if not out.flags.c_contiguous:  # its rows are decompressed into in place
            raise ValueError("frame_of_blocks writes into a C-contiguous frame")
        where = self.frame_ranges(coords) if self._decode is not None else None
        if where is not None:  # one read; each full block decompressed straight into its rows
            shard, offset, spans = where
            data = self._read_range(shard, offset, int(spans[-1].sum()))
            for j, (start, length) in enumerate(spans.tolist()):
                block = data[start:start + length]
                if (j + 1) * rows <= height:
                    self._decode(block, out[j * rows:(j + 1) * rows].reshape(self.chunk_shape))
                else:
                    out[j * rows:] = self._decode(block)[0, 0, :height - j * rows]
            return out
        for j in range(self.row_blocks):
            block = self.chunk(coords[:2] + (j,) + coords[3:])[0, 0]
            out[j * rows:(j + 1) * rows] = block[:height - j * rows]
        return out

    def frame_ranges(self, coords: tuple[int, ...]) -> tuple[str, int, np.ndarray] | None:
        """Where the row blocks of the frame whose first block is the chunk at ``coords`` lie: ``(shard key,
        offset of the first, (offset, length) of each block from it)``, when they are one range of one shard
        (as :class:`ShardWriter` writes them); None otherwise (blocks absent, or in another order)."""
        if self.sharding is None:
            return None
        shard, index, within = self._shard_index(coords)
        if index is None:
            return None
        blocks = index[within[:2]].reshape(-1, 2)[:self.row_blocks]
        if (blocks == _EMPTY).any() or (blocks[1:, 0] != blocks[:-1, 0] + blocks[:-1, 1]).any():
            return None
        return self.key(shard), int(blocks[0, 0]), (blocks - [blocks[0, 0], 0]).astype(np.int64)

    def _stored(self, coords: tuple[int, ...]) -> np.ndarray | None:
        """The stored bytes (uint8) of the chunk at ``coords``, None where the store holds no such chunk."""
        if self.sharding is None:
            data = sync(self.array.store.get(self.key(coords), default_buffer_prototype()))
            return None if data is None else data.as_numpy_array()
        shard, index, within = self._shard_index(coords)
        offset, length = (_EMPTY, _EMPTY) if index is None else index[within]
        return None if offset == _EMPTY else self._read_range(self.key(shard), int(offset), int(length))

    def _shard_index(self, coords: tuple[int, ...]) -> tuple[tuple[int, ...], np.ndarray | None, tuple[int, ...]]:
        """``(shard position, its index (read once, then kept; None: no such shard), position of the chunk at
        ``coords`` within it)``."""
        shard = tuple(i // p for i, p in zip(coords, self.per_shard))
        if shard not in self._indexes:
            self._indexes[shard] = self._index(shard)
        return shard, self._indexes[shard], tuple(i % p for i, p in zip(coords, self.per_shard))

    def _read_range(self, key: str, offset: int, length: int, out: np.ndarray | None = None) -> np.ndarray | None:
        """``length`` bytes at ``offset`` of the shard ``key`` (its index says it holds them), into ``out`` (uint8,
        ``length`` bytes; a new array if None): one plain read of a local file, straight into ``out``, else the
        store's ranged get (None if the shard is gone)."""
        if self.root is None:
            data = sync(self.array.store.get(key, default_buffer_prototype(), RangeByteRequest(offset, offset + length)))
            if data is None or out is None:
                return None if data is None else data.as_numpy_array()
            out[:] = data.as_numpy_array()
            return out
        data = np.empty(length, np.uint8) if out is None else out
        if _read_file(self.root / key, offset, data) != length:
            raise ValueError(f"{self.root / key}: shorter than its shard index says (truncated)")
        return data

    def _index(self, shard: tuple[int, ...]) -> np.ndarray | None:
        size = self.sharding._shard_index_size(self.per_shard)
        raw = sync(self.array.store.get(self.key(shard), default_buffer_prototype(), SuffixByteRequest(size)))
        return None if raw is None else _decode(tuple(self.sharding.index_codecs), raw, self.index_spec)


class ShardWriter(_Layout):
    """Writes regions of ``array`` that cover whole shards (or end at the array's end)."""

    def write(self, start: tuple[int, ...], data: np.ndarray) -> None:
        """Store ``data`` at ``array[start[0]:start[0] + data.shape[0], ...]``. ``start`` lies on the shard
        grid and ``data`` covers whole shards, except that it may end at the array's end."""
        region = tuple(slice(s, s + n) for s, n in zip(start, data.shape))
        if data.dtype != self.array.dtype:  # the codecs would store the bytes of another type
            raise ValueError(f"{data.dtype} data for a {self.array.dtype} array")
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
            parts = self._shard(block) if self.sharding else self._chunk(block)
            if self.root is not None:
                _write_file(self.root / self.key(shard), parts)
            else:  # the one copy of the shard's bytes
                value = default_buffer_prototype().buffer.from_array_like(np.concatenate(parts))
                sync(self.array.store.set(self.key(shard), value))

    def _chunk(self, block: np.ndarray) -> list[np.ndarray]:
        """One chunk's bytes as parts to store one after the other (its encoded bytes, then its crc32c: appending
        the checksum, as zarr's codec does, copies the chunk). A chunk cut by the array's end is padded with the
        fill value, as zarr does."""
        if block.shape != self.chunk_shape:
            full = np.full(self.chunk_shape, self.fill_value, dtype=block.dtype)
            full[tuple(slice(0, n) for n in block.shape)] = block
            block = full
        if not self.checksummed:
            return [_encode(self.codecs, block, self.spec)]
        return _with_crc(_encode(self.codecs[:-1], block, self.spec))

    def _shard(self, block: np.ndarray) -> list[np.ndarray]:
        """A shard's bytes as parts: its chunks in Morton order, then the index. Chunks past the array's end are
        absent."""
        def chunk(coords: tuple[int, ...]) -> list[np.ndarray] | None:
            corner = tuple(i * c for i, c in zip(coords, self.chunk_shape))
            if any(x >= n for x, n in zip(corner, block.shape)):
                return None
            return self._chunk(block[tuple(slice(x, x + c) for x, c in zip(corner, self.chunk_shape))])

        return self._assemble(chunk)

    def _assemble(self, chunk: Callable[[tuple[int, ...]], list[np.ndarray] | None]) -> list[np.ndarray]:
        """A shard's parts from ``chunk(coords)``: the parts of the chunk at ``coords`` within the shard, None where
        the shard holds none. Chunks follow zarr's Morton order, except frames in row blocks: frame after frame,
        its blocks top to bottom, so that a frame's bytes are one range (the index says where each chunk lies,
        so any reader reads either order)."""
        index = np.full(self.per_shard + (2,), _EMPTY, dtype="<u8")
        parts, offset = [], 0
        order = np.ndindex(self.per_shard) if self.row_blocks > 1 else map(tuple, _morton_order(self.per_shard).tolist())
        for coords in order:
            stored = chunk(coords)
            if stored is None:
                continue
            length = sum(len(p) for p in stored)
            index[coords] = (offset, length)
            parts += stored
            offset += length
        parts.append(_encode(tuple(self.sharding.index_codecs), index, self.index_spec))
        return parts

    def write_encoded(self, start: tuple[int, ...], chunks: list[bytes]) -> None:
        """Store chunks already encoded by the array's serializer (``copy``: a source's packets) one after the
        other along ``time`` from ``start`` (a corner on the shard grid of a one-camera-per-chunk array), each
        followed by its crc32c; whole shards, or to the array's end."""
        per = self.per_shard[1] if self.sharding else 1
        if start[1] % (per * self.chunk_shape[1]) or any(start[2:]) or self.chunk_shape[0] != 1:
            raise ValueError(f"chunks from {start} do not start a shard of {self.outer}")
        first = start[1] // self.chunk_shape[1]

        for s in range(0, len(chunks), per):
            shard = (start[0], (first + s) // per) + (0,) * (len(start) - 2)
            if self.sharding:
                group = chunks[s:s + per]
                stored = self._assemble(lambda c, g=group: _with_crc(g[c[1]]) if c[1] < len(g) else None)
            else:
                stored = _with_crc(chunks[s])
            if self.root is not None:
                _write_file(self.root / self.key(shard), stored)
            else:
                value = default_buffer_prototype().buffer.from_array_like(np.concatenate(stored))
                sync(self.array.store.set(self.key(shard), value))


def _read_file(path: Path, offset: int, out: np.ndarray) -> int:
    """Bytes of the file ``path`` read from ``offset`` into ``out`` (uint8, as many as it holds): one ``preadv``
    on a descriptor opened for the call (a Python file object for each read made 16 threads staging batches for
    the GPU ~30 % slower: docs/performance.md); a file object where the system has no ``preadv`` (Windows)."""
    if not hasattr(os, "preadv"):
        with open(path, "rb", buffering=0) as f:
            f.seek(offset)
            return f.readinto(out)
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.preadv(fd, [out], offset)
    finally:
        os.close(fd)


def _write_file(path: Path, parts: list[np.ndarray]) -> None:
    """``parts`` one after the other into the file ``path``, atomically as zarr's local store writes (a temporary
    file beside it, renamed over it once complete), without joining them into one buffer first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(partial, "wb", buffering=0) as f:
            for part in parts:
                view = memoryview(part).cast("B")
                while view:
                    view = view[f.write(view):]
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
