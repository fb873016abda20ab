"""Frames decompressed on a CUDA GPU: batches of random frames of a lossless zstd cube land as CUDA tensors.

Each frame's stored chunks are read on the CPU straight into pinned memory (one ranged read a frame when the
frame is stored in row blocks, ``StorageSpec(row_blocks=8)``), copied to the GPU in one transfer, their crc32c
checked there (nvCOMP's batched CRC32, :mod:`.nvcomp_crc`) and decompressed by nvCOMP's batched zstd (every
block of every frame of the batch at once), each straight into its rows of the output tensor. A frame stored as
one chunk is one zstd stream, which nvCOMP decodes on one thread block: row blocks are what lets the GPU decode
a frame in parallel (docs/performance.md). :meth:`GpuFrames.batches` reads the next batch from disk while the
GPU works on the current one; :class:`GpuSamples` is :meth:`FrameDataset.gpu_batches` on top of it.

Needs the ``gpu`` extra (``torch`` and nvCOMP's Python API, ``nvidia-nvcomp-cu13``); the rest of the package
imports this module only when ``FrameDataset.gpu_batches`` is called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cube.frames import FrameReader
from ..cube.location import Location
from ..errors import UsageError

if TYPE_CHECKING:
    import torch

    from .dataset import FrameDataset


def _nvcomp():
    try:
        import torch  # noqa: F401 - the frames land as its tensors
        from nvidia import nvcomp
    except ImportError as e:
        raise UsageError(f"GPU decompression needs nvCOMP's Python API: pip install 'nersemble-cube[gpu]' ({e})") from None
    return nvcomp


@dataclass
class Staged:
    """One batch's stored chunks in a host buffer: the frames' keys, the buffer (``host[:total]`` used), each
    chunk's ``(offset, length)`` in it (crc32c trailer included, ``(chunks, 2)`` int64) and the position in
    ``keys`` of the frame each chunk belongs to."""

    keys: list[tuple[str, int]]
    host: np.ndarray
    total: int
    chunks: np.ndarray
    frame_of: np.ndarray


class Stager:
    """The host half of :class:`GpuFrames` (no torch): reads the stored chunks of batches of frames of
    ``frames`` into a buffer, ``threads`` threads a frame each. Where each frame's chunks lie (its shard's index)
    is read once and kept, like :class:`~nersemble_cube.FrameReader`'s shard indexes."""

    def __init__(self, frames: FrameReader, threads: int = 8):
        self.frames = frames
        self._pool = ThreadPoolExecutor(threads)
        self._where: dict[tuple[str, int], tuple[str, int, np.ndarray]] = {}

    def _locate(self, key: tuple[str, int]) -> tuple[tuple[str, int] | np.ndarray, np.ndarray]:
        """Where the stored chunks of frame ``key`` (serial, time) are, and ``(offset, length)`` of each from
        there: ``(shard key, offset)`` when they are one range of one shard (kept for the next read of the
        frame), else their bytes, read one by one and joined."""
        if key in self._where:
            shard, offset, spans = self._where[key]
            return (shard, offset), spans
        chunks = self.frames._chunks
        coords, _ = self.frames.chunk_of(*key)
        where = chunks.frame_ranges(coords)
        if where is not None:
            self._where[key] = where
            return where[:2], where[2]
        blocks = [chunks._stored(coords[:2] + (j,) + coords[3:]) for j in range(chunks.row_blocks)]
        if any(b is None for b in blocks):
            raise UsageError(f"frame {key[1]} of camera {key[0]} is not stored (a fill-value frame)")
        sizes = [len(b) for b in blocks]
        return np.concatenate(blocks), np.stack([np.cumsum([0, *sizes[:-1]]), sizes], axis=1)

    def _fill(self, source: tuple[str, int] | np.ndarray, host: np.ndarray) -> None:
        """One frame's stored chunks from ``source`` (:meth:`_locate`) into ``host`` (its slice of a pinned
        buffer: a local shard is read straight into it)."""
        if isinstance(source, np.ndarray):
            host[:] = source
        elif self.frames._chunks._read_range(*source, len(host), out=host) is None:
            raise ValueError(f"{source[0]}: the shard is gone (the cube was changed after it was opened)")

    def stage(self, keys: Sequence[tuple[str | int, int]], buffer: Callable[[int], np.ndarray]) -> Staged:
        """Reads the stored chunks of the frames ``keys`` (``(serial, time)`` pairs) into ``buffer(size)`` (a
        uint8 array of at least ``size`` bytes), one after the other."""
        keys = [(str(s), int(t)) for s, t in keys]
        sources, spans = zip(*map(self._locate, keys)) if keys else ((), ())
        starts = np.cumsum([0, *[int(s[-1].sum()) for s in spans]])
        host = buffer(int(starts[-1]))
        list(self._pool.map(lambda i: self._fill(sources[i], host[starts[i]:starts[i + 1]]), range(len(keys))))
        chunks = (np.concatenate([s + [a, 0] for s, a in zip(spans, starts[:-1])]) if keys
                  else np.zeros((0, 2), np.int64))
        return Staged(keys, host, int(starts[-1]), chunks, np.repeat(np.arange(len(keys)), [len(s) for s in spans]))


class _Slot:
    """A pinned host buffer the batches alternate between, and the event of the last copy out of it."""

    def __init__(self):
        import torch

        self.pinned = torch.empty(0, dtype=torch.uint8).pin_memory()
        self.copied = torch.cuda.Event()
        self.copied.record()

    def reserve(self, size: int) -> np.ndarray:
        """The buffer as a numpy array of at least ``size`` bytes, once the GPU has copied the last batch out."""
        import torch

        self.copied.synchronize()
        if self.pinned.numel() < size:
            self.pinned = torch.empty(int(size * 1.25), dtype=torch.uint8).pin_memory()
        return self.pinned.numpy()


class GpuFrames:
    """Random frames of one sequence's ``images`` (or ``alpha``), decompressed on the GPU ``device``.

    :meth:`read` returns a batch as one uint8 CUDA tensor ``(batch, y, x[, channel])``, bit-equal to
    :class:`~nersemble_cube.FrameReader`'s frames; :meth:`batches` does the same for a stream of batches, reading
    the next from disk while the GPU decodes the current one. GPU memory holds the batch's frames, its
    compressed bytes and nvCOMP's scratch, nothing more (the compressed bytes' buffers, two pinned on the host
    and one on the GPU, are kept and grown for the largest batch read; the last batch's frames stay allocated
    until the next read, which releases nvCOMP's views of them once they are decoded). ``threads``: CPU threads
    reading the chunks (8: more contend with the thread that drives the GPU; 16 were 7-8 % slower on a 16-core
    machine). Where each frame's chunks lie (its shard's index) is read once and kept, as
    :class:`~nersemble_cube.FrameReader` keeps the shard indexes it has read.
    For cubes stored with ``zstd`` (the default preset) a frame per chunk, whole or in row blocks; others raise
    :class:`~nersemble_cube.errors.UsageError`.
    """

    def __init__(self, cube: str | Path | Location, sequence: str, variable: str = "images", *,
                 device: int | str = "cuda", threads: int = 8, storage_options: dict | None = None):
        from zarr.codecs import BytesCodec, Crc32cCodec, ZstdCodec

        nvcomp = _nvcomp()
        import torch

        from .nvcomp_crc import BatchedCrc32c

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
        with torch.cuda.device(self.device):
            self._stream = torch.cuda.Stream(self.device)
            self._slots = [_Slot(), _Slot()]
        self._turn = 0
        self._codec = nvcomp.Codec(algorithm="Zstd", bitstream_kind=nvcomp.BitstreamKind.RAW,
                                   device_id=self._stream.device.index, cuda_stream=self._stream.cuda_stream)
        self._crc = BatchedCrc32c(self._stream)
        self._stager = Stager(self.frames, threads)
        self._compressed = torch.empty(0, dtype=torch.uint8, device=self.device)
        self._arrays: tuple | None = None
        """nvCOMP's views of the last batch's compressed and decoded bytes, kept until it is decoded: dropping one
        earlier waits for the decompression holding the GIL, which stalled the threads reading the next batch
        (~30 % slower, docs/performance.md)."""
        self._decoded = torch.cuda.Event()  # recorded after the last batch's decompression

    def _stage(self, keys: Sequence[tuple[str | int, int]]) -> tuple[Staged, _Slot]:
        """The frames' chunks read into the next pinned buffer."""
        slot = self._slots[self._turn]
        self._turn ^= 1
        return self._stager.stage(keys, slot.reserve), slot

    def _decode(self, staged: Staged, slot: _Slot) -> torch.Tensor:
        """Copies a staged batch to the GPU, checks each chunk's crc32c there and decompresses the chunks into
        one tensor: ``(batch, y, x[, channel])`` uint8 (a view of the decoded row blocks: each frame contiguous)."""
        import torch

        from ..cube.shards import _CHECKSUM_MESSAGE

        nvcomp = _nvcomp()
        n, total = len(staged.keys), staged.total
        blocks = len(staged.chunks) // n if n else 0
        current = torch.cuda.current_stream(self.device)
        if self._arrays is not None:  # the last batch's: dropped once decoded (waiting without the GIL)
            self._decoded.synchronize()
            self._arrays = None
        with torch.cuda.stream(self._stream):
            padded = torch.empty((n, blocks * self._rows, *self.shape[1:]), dtype=torch.uint8, device=self.device)
            padded.record_stream(current)  # used there: its memory is not reused before the work queued there
            if not n:
                return padded[:, :self.shape[0]]
            if self._compressed.numel() < total:
                self._compressed = torch.empty(int(total * 1.25), dtype=torch.uint8, device=self.device)
            compressed = self._compressed[:total]
            compressed.copy_(slot.pinned[:total], non_blocking=True)
            slot.copied.record(self._stream)
            offsets, sizes = staged.chunks[:, 0], staged.chunks[:, 1] - 4  # each chunk less its crc32c
            trailers = staged.host[(offsets + sizes)[:, None] + np.arange(4)].view("<u4")[:, 0]
            computed = self._crc(compressed, offsets, sizes)
            bad = (computed != torch.from_numpy(trailers.astype(np.int64)).to(self.device)).nonzero()
            if len(bad):  # waits for the copy and the checksums: nothing damaged is decompressed
                first = int(bad[0])
                serial, time = staged.keys[staged.frame_of[first]]
                raise ValueError(f"{_CHECKSUM_MESSAGE}: frame {time} of camera {serial}, chunk {first % blocks} of "
                                 f"its {blocks}: crc32c {int(computed[first]):#010x}, stored {int(trailers[first]):#010x}")
            block_bytes = self._rows * int(np.prod(self.shape[1:]))
            stream = self._stream.cuda_stream
            self._arrays = (nvcomp.as_arrays(compressed, offsets.tolist(), sizes.tolist(), stream),
                            nvcomp.as_arrays(padded.view(-1), list(range(0, padded.numel(), block_bytes)),
                                             [block_bytes] * len(offsets), stream))
            self._codec.decode(self._arrays[0], out=self._arrays[1])
            self._decoded.record(self._stream)
        current.wait_stream(self._stream)
        return padded[:, :self.shape[0]]

    def read(self, keys: Sequence[tuple[str | int, int]]) -> torch.Tensor:
        """The frames ``keys`` (``(serial, time)`` pairs, as :meth:`FrameReader.read` takes them) as a uint8 tensor
        ``(len(keys), y, x[, channel])`` on the GPU, ready on the current stream. A damaged chunk raises the
        crc32c ``ValueError`` (naming the frame) before anything is decompressed."""
        return self._decode(*self._stage(keys))

    def batches(self, key_batches: Iterable[Sequence[tuple[str | int, int]]]) -> Iterator[torch.Tensor]:
        """:meth:`read` of each list of keys in ``key_batches``, the next batch read from disk (by a thread of
        this object) while the current one is decompressed and used."""
        return _ahead(key_batches, self._stage, self._decode)


def _ahead(items: Iterable, stage: Callable, finish: Callable) -> Iterator:
    """``finish(*stage(item))`` for each of ``items``, the next item staged by a thread while this one is
    finished and used."""
    with ThreadPoolExecutor(1) as ahead:
        pending = None
        for item in items:
            staged = ahead.submit(stage, item)
            if pending is not None:
                yield finish(*pending.result())
            pending = staged
        if pending is not None:
            yield finish(*pending.result())


class GpuSamples:
    """:meth:`FrameDataset.gpu_batches`' work: a :class:`GpuFrames` per sequence and variable (made on first use),
    the colour tables on the GPU (one per camera corrected), and each batch's frames made samples there."""

    def __init__(self, dataset: FrameDataset, device: int | str, threads: int):
        _nvcomp()  # the extra is there, or one UsageError now
        self.dataset, self.device, self.threads = dataset, device, threads
        self._readers: dict[tuple[str, str], GpuFrames] = {}
        self._tables: dict[bytes, torch.Tensor] = {}

    def _reader(self, path: str, variable: str) -> GpuFrames:
        if (path, variable) not in self._readers:
            self._readers[path, variable] = GpuFrames(self.dataset.cube, path, variable, device=self.device,
                                                      threads=self.threads, storage_options=self.dataset.storage_options)
        return self._readers[path, variable]

    def stage(self, indices: Sequence[int]) -> tuple[list, dict]:
        """Batch ``indices``' metadata, and each sequence's frames read into pinned memory (per variable)."""
        rows = [self.dataset.metadata(i) for i in indices]
        groups: dict[str, list[int]] = {}
        for j, (seq, _, _) in enumerate(rows):
            groups.setdefault(seq.path, []).append(j)
        staged: dict[str, list] = {}
        for variable in ("images", "alpha") if self.dataset.alpha else ("images",):
            for path, js in groups.items():
                reader = self._reader(path, variable)
                keys = [(rows[j][2]["serial"], rows[j][2]["time"]) for j in js]
                staged.setdefault(variable, []).append((reader, js, reader._stage(keys)))
        return rows, staged

    def finish(self, rows: list, staged: dict) -> dict:
        """The batch: frames decompressed, corrected, downscaled and converted on the GPU; the rest collated."""
        import torch

        from .dataset import collate

        out = {}
        for variable, parts in staged.items():
            frames = None
            for reader, js, (stage, slot) in parts:
                got = reader._decode(stage, slot)
                if frames is None:
                    frames = got if len(js) == len(rows) else torch.empty((len(rows), *got.shape[1:]), dtype=got.dtype,
                                                                          device=got.device)
                if got.shape[1:] != frames.shape[1:]:
                    raise UsageError(f"a batch of frames of different sizes ({tuple(got.shape[1:3])} and "
                                     f"{tuple(frames.shape[1:3])}): batch samples of one size (one benchmark)")
                if frames is not got:
                    frames[torch.as_tensor(js, device=got.device)] = got
            if variable == "images":
                for j, (seq, c, _) in enumerate(rows):
                    if seq.color_correction is not None:
                        frames[j] = self._corrected(frames[j], seq.color_correction[c])
                out["image"] = self._as_samples(frames)
            else:
                out["alpha"] = self._as_samples(frames[..., None])
        return {**out, **collate([sample for _, _, sample in rows])}

    def _corrected(self, frame: torch.Tensor, ccm: np.ndarray) -> torch.Tensor:
        """``correct_color(frame, ccm)`` on the GPU: its table of every colour (the one the CPU uses for large
        frames, equal to the colour computed pixel by pixel) looked up per pixel."""
        import torch

        from ..source.converters.color import _table

        key = np.ascontiguousarray(ccm, dtype=np.float64).tobytes()
        if key not in self._tables:
            self._tables[key] = torch.from_numpy(_table(key, ccm.shape[-1]).view(np.int32)).to(frame.device)
        rgb = frame.to(torch.int32)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        return self._tables[key][packed].view(torch.uint8).reshape(*frame.shape[:-1], 4)[..., :3]

    def batches(self, batches: Iterable[Sequence[int]]) -> Iterator[dict]:
        """:meth:`FrameDataset.gpu_batches` (which see): the next batch staged by a thread while this one is
        finished."""
        return _ahead(batches, self.stage, self.finish)

    @staticmethod
    def _scalar(value: float, like: torch.Tensor) -> torch.Tensor:
        """``value`` as a float32 tensor on ``like``'s device: torch divides by a Python number as a
        multiplication by its reciprocal, which rounds differently from numpy's division; by a tensor, it divides."""
        import torch

        return torch.tensor(value, dtype=torch.float32, device=like.device)

    def _as_samples(self, frames: torch.Tensor) -> torch.Tensor:
        """``(batch, y, x, k)`` uint8 frames as :meth:`FrameDataset._as_sample` makes each: area-averaged over
        ``scale x scale`` blocks (float32 sums of the strided sub-images, rounded half to even), then the dtype and
        channel order asked."""
        import torch

        data = self.dataset
        if data.scale > 1:
            f = data.scale
            ny, nx = frames.shape[1] // f * f, frames.shape[2] // f * f
            total = None
            for i in range(f):
                for j in range(f):
                    part = frames[:, i:ny:f, j:nx:f].to(torch.float32)
                    total = part if total is None else total + part
            frames = torch.round(total / self._scalar(f * f, frames)).clamp(0, 255).to(torch.uint8)
        if data.dtype == "float32":
            frames = frames.to(torch.float32) / self._scalar(255, frames)
        return (frames.permute(0, 3, 1, 2) if data.channels == "first" else frames).contiguous()
