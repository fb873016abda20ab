"""Frames decompressed on a CUDA GPU: batches of random frames of a lossless zstd cube land as CUDA tensors.

Each frame's stored chunks are read on the CPU (one ranged read a frame when the frame is stored in row blocks,
``StorageSpec(row_blocks=16)``), their crc32c checked there (the bytes the GPU gets are the bytes the checksums
cover), copied into pinned memory and to the GPU in one transfer, and decompressed by nvCOMP's batched zstd
(every block of every frame of the batch at once), each straight into its rows of the output tensor. A frame
stored as one chunk is one zstd stream, which nvCOMP decodes on one thread block: row blocks are what lets the
GPU decode a frame in parallel (docs/performance.md).

Needs the ``gpu`` extra (``torch`` and nvCOMP's Python API, ``nvidia-nvcomp-cu13``); nothing here is imported
by the rest of the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cube.frames import FrameReader
from ..cube.location import Location
from ..errors import UsageError

if TYPE_CHECKING:
    import torch


def _nvcomp():
    try:
        import torch  # noqa: F401 - the frames land as its tensors
        from nvidia import nvcomp
    except ImportError as e:
        raise UsageError(f"GPU decompression needs nvCOMP's Python API: pip install 'nersemble-cube[gpu]' ({e})") from None
    return nvcomp


class GpuFrames:
    """Random frames of one sequence's ``images`` (or ``alpha``), decompressed on the GPU ``device``.

    :meth:`read` returns a batch as one uint8 CUDA tensor ``(batch, y, x[, channel])``, bit-equal to
    :class:`~nersemble_cube.FrameReader`'s frames; GPU memory holds the batch's frames, its compressed bytes and
    nvCOMP's scratch, nothing more (the compressed bytes' buffers, pinned and on the GPU, are kept and grown for
    the largest batch read). ``threads``: CPU threads reading and checking the chunks. For cubes stored with
    ``zstd`` (the default preset) a frame per chunk, whole or in row blocks; others raise
    :class:`~nersemble_cube.errors.UsageError`.
    """

    def __init__(self, cube: str | Path | Location, sequence: str, variable: str = "images", *,
                 device: int | str = "cuda", threads: int = 16, storage_options: dict | None = None):
        from zarr.codecs import BytesCodec, Crc32cCodec, ZstdCodec

        nvcomp = _nvcomp()
        import torch

        self.frames = FrameReader(cube, sequence, variable, storage_options)
        chunks = self.frames._chunks
        kinds = [type(c) for c in chunks.codecs]
        if kinds != [BytesCodec, ZstdCodec, Crc32cCodec] or not chunks.direct or chunks.chunk_shape[1] != 1:
            raise UsageError(f"{sequence}/{variable} is not stored with zstd a frame per chunk (its codecs: "
                             f"{', '.join(k.__name__ for k in kinds)}, {chunks.chunk_shape[1]} frames a chunk); "
                             "GPU decompression reads cubes converted with --codec zstd --frames-per-chunk 1")
        self.device = torch.device(device)
        self.shape = tuple(chunks.array.shape[2:])
        self._rows = chunks.chunk_shape[2]  # rows of a chunk: the frame's, or a row block's
        self._stream = torch.cuda.current_stream(self.device)
        self._codec = nvcomp.Codec(algorithm="Zstd", bitstream_kind=nvcomp.BitstreamKind.RAW,
                                   device_id=self._stream.device.index, cuda_stream=self._stream.cuda_stream)
        self._pool = ThreadPoolExecutor(threads)
        self._pinned = torch.empty(0, dtype=torch.uint8).pin_memory()
        self._compressed = torch.empty(0, dtype=torch.uint8, device=self.device)

    def _locate(self, key: tuple[str, int]) -> tuple[tuple[str, int] | np.ndarray, np.ndarray]:
        """Where the stored chunks of frame ``key`` (serial, time) are, and ``(offset, length)`` of each from
        there: ``(shard key, offset)`` when they are one range of one shard, else their bytes, read one by one
        and joined."""
        chunks = self.frames._chunks
        coords, _ = self.frames.chunk_of(*key)
        where = chunks.frame_ranges(coords)
        if where is not None:
            return where[:2], where[2]
        blocks = [chunks._stored(coords[:2] + (j,) + coords[3:]) for j in range(chunks.row_blocks)]
        if any(b is None for b in blocks):
            raise UsageError(f"frame {key[1]} of camera {key[0]} is not stored (a fill-value frame)")
        sizes = [len(b) for b in blocks]
        return np.concatenate(blocks), np.stack([np.cumsum([0, *sizes[:-1]]), sizes], axis=1)

    def _fill(self, source: tuple[str, int] | np.ndarray, spans: np.ndarray, host: np.ndarray) -> None:
        """One frame's stored chunks from ``source`` (:meth:`_locate`) into ``host`` (its slice of the pinned
        buffer), their crc32c checked."""
        from ..cube.shards import _checked

        chunks = self.frames._chunks
        if isinstance(source, np.ndarray):
            host[:] = source
        elif chunks.root is not None:  # straight into pinned memory: one read, no copy
            shard, offset = source
            with open(chunks.root / shard, "rb", buffering=0) as f:
                f.seek(offset)
                if f.readinto(memoryview(host)) != len(host):
                    raise ValueError(f"{chunks.root / shard}: shorter than its shard index says (truncated)")
        else:
            host[:] = chunks._read_range(*source, len(host))
        for start, length in spans.tolist():
            _checked(host[start:start + length])

    def read(self, keys: Sequence[tuple[str | int, int]]) -> torch.Tensor:
        """The frames ``keys`` (``(serial, time)`` pairs, as :meth:`FrameReader.read` takes them) as a uint8 tensor
        ``(len(keys), y, x[, channel])`` on the GPU (a view of the decoded row blocks: each frame contiguous). A
        damaged chunk raises the crc32c ``ValueError`` before anything reaches the GPU."""
        import torch

        nvcomp = _nvcomp()
        self._stream.synchronize()  # the last batch's copy and decode are done with the buffers
        keys = [(str(s), int(t)) for s, t in keys]
        sources, spans = zip(*self._pool.map(self._locate, keys)) if keys else ((), ())
        lengths = [int(s[-1].sum()) for s in spans]
        starts = np.cumsum([0, *lengths])
        total = int(starts[-1])
        if self._pinned.numel() < total:
            self._pinned = torch.empty(int(total * 1.25), dtype=torch.uint8).pin_memory()
            self._compressed = torch.empty(int(total * 1.25), dtype=torch.uint8, device=self.device)
        host = self._pinned.numpy()
        list(self._pool.map(lambda i: self._fill(sources[i], spans[i], host[starts[i]:starts[i + 1]]), range(len(keys))))
        blocks = len(spans[0]) if spans else 0
        block_bytes = self._rows * int(np.prod(self.shape[1:]))
        padded = torch.empty((len(keys), blocks * self._rows, *self.shape[1:]), dtype=torch.uint8, device=self.device)
        if keys:
            offsets = np.concatenate([s[:, 0] + a for s, a in zip(spans, starts[:-1])]).tolist()
            sizes = np.concatenate([s[:, 1] - 4 for s in spans]).tolist()  # each chunk less its crc32c
            stream = self._stream.cuda_stream
            with torch.cuda.stream(self._stream):
                self._compressed[:total].copy_(self._pinned[:total], non_blocking=True)
            self._codec.decode(nvcomp.as_arrays(self._compressed, offsets, sizes, stream),
                               out=nvcomp.as_arrays(padded.view(-1), list(range(0, padded.numel(), block_bytes)),
                                                    [block_bytes] * len(offsets), stream))
        return padded[:, :self.shape[0]]
