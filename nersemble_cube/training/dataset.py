"""Training samples straight from a cube: :class:`FrameDataset`, one sample per (sequence, camera, time) of one
or many sequences (benchmark and full dataset), and the samplers :class:`MultiViewBatches` (every camera at one
time) and :class:`RandomFrames`.

Samples are dicts of numpy arrays, so the dataset needs no PyTorch: ``torch.utils.data.DataLoader`` takes it as
it is (its collate turns the arrays into tensors, ``pin_memory=True`` pins them), and so does any plain loop.
Each worker process reads through its own :class:`~nersemble_cube.FrameReader` per sequence (opened on its first
sample, never pickled): no dask, shard indexes kept per worker, and it works with the ``spawn`` and
``forkserver`` start methods.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..cube.frames import FrameReader
from ..cube.location import Location
from ..cube.scales import as_uint8, block_mean_array, scale_intrinsics
from ..cube.schema import sequence_group, tracking_node
from ..errors import SelectionError, UsageError
from ..source.converters.color import correct_color
from ..source.converters.flame import FlameTracking

FLAME_FIELDS = ("expression", "rotation", "rotation_matrices", "translation", "jaw", "neck", "eyes")
"""FLAME parameters that change with time, as the tracking node (and the toolkit's ``FlameTracking``) names them."""


@dataclass(frozen=True)
class _Sequence:
    """What a sample needs of one sequence, read once when the dataset is made (small: calibration, tracking)."""

    path: str
    serials: tuple[str, ...]
    times: np.ndarray
    positions: np.ndarray
    """The cameras used, as positions in the sequence node's ``camera`` (they are a subset with ``cameras=``)."""
    intrinsics: np.ndarray
    world_2_cam: np.ndarray
    color_correction: np.ndarray | None
    flame: dict[str, np.ndarray] | None


class FrameDataset:
    """Frames of a cube as training samples: ``dataset[i]`` is one camera at one time of one sequence.

    ``sequences``: names (``"nvs/388/GLASSES"``, ``"dataset/018/EXP-1-head"``) or node paths; default: every
    sequence of the cube that holds frames. ``cameras``: serials to keep (default all; each sequence keeps
    those it has). ``scale``: integer downscale factor; frames are area-averaged over ``scale x scale`` blocks
    and rounded as the cube's ``--scales`` levels are (trailing rows/columns dropped), and the intrinsics are
    divided by it. ``dtype``: ``"uint8"`` (0-255) or ``"float32"`` (0-1); ``channels``: ``"last"``
    (``(y, x, 3)``) or ``"first"`` (``(3, y, x)``). ``alpha``: the matte as well (default: where every
    sequence has one). ``flame``: the FLAME tracking (version 2) at the sample's time. ``color_correction``:
    apply the full dataset's per-camera colour correction to the frame first (as the toolkit's
    ``load_image(..., apply_color_correction=True)``: bit-equal to ``ds.nersemble.color_correct()``).

    A sample is a dict: ``image`` (``(y, x, 3)`` or ``(3, y, x)``, ``dtype``), ``alpha`` (``(y, x, 1)`` or
    ``(1, y, x)``, ``dtype``; if asked), ``intrinsics`` (``(3, 3)`` float32, pixels of the returned frame),
    ``world_2_cam`` (``(4, 4)`` float32, OpenCV convention, metres), ``flame`` (dict of float32 arrays: the
    per-time parameters of :data:`FLAME_FIELDS` at ``time``, plus ``shape`` ``(300,)`` and ``scale``
    ``(1,)``; if asked), ``sequence`` (node path), ``serial`` (str), ``camera`` (int, position in the
    sequence's ``camera``), ``time`` (int, the source frame index). Order: sequence, then time, then camera,
    so the cameras of one time are consecutive indices (:class:`MultiViewBatches`).

    Raises :class:`~nersemble_cube.errors.SelectionError` naming what exists when a sequence, camera, matte,
    tracking or colour correction asked for is not in the cube, and :class:`~nersemble_cube.errors.UsageError`
    for an unknown ``dtype``, ``channels`` or a ``scale`` below 1.
    """

    def __init__(self, cube: str | Path | Location, sequences: Sequence[str] | None = None, *,
                 cameras: Sequence[str | int] | None = None, scale: int = 1,
                 dtype: Literal["uint8", "float32"] = "uint8", channels: Literal["last", "first"] = "last",
                 alpha: bool | None = None, flame: bool = False, color_correction: bool = False,
                 storage_options: dict | None = None):
        from ..cube.access import find_node, open

        if dtype not in ("uint8", "float32"):
            raise UsageError(f"dtype must be 'uint8' or 'float32', not {dtype!r}")
        if channels not in ("last", "first"):
            raise UsageError(f"channels must be 'last' or 'first', not {channels!r}")
        if not isinstance(scale, (int, np.integer)) or scale < 1:
            raise UsageError(f"scale must be an integer factor of 1 or more, not {scale!r}")
        self.cube, self.storage_options = cube, storage_options
        self.scale, self.dtype, self.channels, self.flame, self.color_correction = (
            int(scale), dtype, channels, flame, color_correction)
        tree = open(cube, dask=False, storage_options=storage_options)
        held = [n.path.lstrip("/") for n in tree.subtree if "time" in getattr(n.dataset.get("images"), "dims", ())]
        paths = held if sequences is None else [sequence_group(s) for s in sequences]
        if not paths:
            raise SelectionError(f"{cube}: this cube holds no frames")
        wanted = None if cameras is None else [str(c) for c in cameras]
        nodes = [find_node(tree, p) for p in paths]
        for p, node in zip(paths, nodes):
            if p not in held:
                raise SelectionError(f"{p} holds no frames (a hold-out sequence); sequences with frames: {held}")
        has_alpha = all("alpha" in n.dataset.data_vars for n in nodes)
        if alpha and not has_alpha:
            lacking = [p for p, n in zip(paths, nodes) if "alpha" not in n.dataset.data_vars]
            raise SelectionError(f"no alpha mattes in {lacking} (convert with the mattes downloaded, or import-alpha)")
        self.alpha = has_alpha if alpha is None else alpha
        self.sequences = [self._sequence(p, node, wanted) for p, node in zip(paths, nodes)]
        self._ends = np.cumsum([len(s.serials) * len(s.times) for s in self.sequences])
        self._readers: dict[tuple[str, str], FrameReader] = {}
        self._gpu = None  # gpu_batches' readers and tables, kept from one call (epoch) to the next

    def _sequence(self, path: str, node, wanted: list[str] | None) -> _Sequence:  # noqa: ANN001 - a DataTree node
        ds = node.to_dataset()
        serials = [str(c) for c in ds.camera.values]
        keep = serials if wanted is None else [s for s in wanted if s in serials]
        if not keep:
            raise SelectionError(f"{path} has none of the cameras {wanted}; it has {serials}")
        positions = np.array([serials.index(s) for s in keep])
        k = scale_intrinsics(ds.intrinsics.values[positions], self.scale)
        ccm = None
        if self.color_correction:
            if "color_correction" not in ds:
                raise SelectionError(f"{path} has no color_correction: only sequences of the full dataset "
                                     "(dataset/...) come with one")
            ccm = ds.color_correction.values[positions]
        tracking = None
        if self.flame:
            name = tracking_node(2)
            if name not in node.children:
                raise SelectionError(f"{path} has no FLAME tracking ({name}); mono_flame_avatar sequences come "
                                     "with one")
            from ..cube.access import flame_tracking

            tracking = self._flame(flame_tracking(node[name]), ds.time.values, path)
        return _Sequence(path, tuple(keep), ds.time.values.astype(np.int64), positions, k.astype(np.float32),
                         ds.world_2_cam.values[positions].astype(np.float32), ccm, tracking)

    @staticmethod
    def _flame(track: FlameTracking, times: np.ndarray, path: str) -> dict[str, np.ndarray]:
        """The tracking's per-time parameters at ``times`` (rows in frame order) and its static ones."""
        where = {int(t): i for i, t in enumerate(track.frames)}
        missing = [int(t) for t in times if int(t) not in where]
        if missing:
            raise SelectionError(f"{path}: the FLAME tracking has no frames {missing[:5]}")
        rows = [where[int(t)] for t in times]
        out = {f: getattr(track, f)[rows].astype(np.float32) for f in FLAME_FIELDS}
        out["shape"] = track.shape.reshape(-1).astype(np.float32)
        out["scale"] = track.scale.reshape(1).astype(np.float32)
        return out

    def __len__(self) -> int:
        return int(self._ends[-1])

    def __getstate__(self) -> dict:  # to DataLoader workers: the readers are opened there, on first use
        return {**self.__dict__, "_readers": {}, "_gpu": None}

    def key(self, i: int) -> tuple[int, int, int]:
        """(sequence position, time position, camera position) of sample ``i``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} is not in this dataset of {len(self)}")
        i = int(i) % len(self)
        s = int(np.searchsorted(self._ends, i, side="right"))
        t, c = divmod(i - (int(self._ends[s - 1]) if s else 0), len(self.sequences[s].serials))
        return s, t, c

    def index(self, sequence: str, serial: str | int, time: int) -> int:
        """The sample of camera ``serial`` at source frame ``time`` of ``sequence`` (name or node path)."""
        path = sequence_group(sequence)
        found = [i for i, s in enumerate(self.sequences) if s.path == path]
        if not found:
            raise SelectionError(f"{sequence} is not in this dataset; it has {[s.path for s in self.sequences]}")
        s = found[0]
        seq = self.sequences[s]
        if str(serial) not in seq.serials:
            raise SelectionError(f"camera {serial} is not in this dataset's {path}; it has {list(seq.serials)}")
        t = np.flatnonzero(seq.times == time)
        if not len(t):
            raise SelectionError(f"frame {time} is not in {path}: it has frames {seq.times[0]} to {seq.times[-1]}")
        return (int(self._ends[s - 1]) if s else 0) + int(t[0]) * len(seq.serials) + seq.serials.index(str(serial))

    def _reader(self, path: str, variable: str) -> FrameReader:
        if (path, variable) not in self._readers:
            self._readers[path, variable] = FrameReader(self.cube, path, variable, self.storage_options)
        return self._readers[path, variable]

    def _as_sample(self, frame: np.ndarray) -> np.ndarray:
        """A ``(y, x, k)`` uint8 frame downscaled, converted to the dtype and channel order asked."""
        if self.scale > 1:
            frame = as_uint8(block_mean_array(frame, self.scale, 0))
        if self.dtype == "float32":
            frame = frame.astype(np.float32) / np.float32(255)
        return np.ascontiguousarray(frame.transpose(2, 0, 1)) if self.channels == "first" else frame

    def __getitem__(self, i: int) -> dict:
        seq, c, sample = self.metadata(i)
        serial, time = sample["serial"], sample["time"]
        image = self._reader(seq.path, "images").read(serial, time)
        if seq.color_correction is not None:
            image = correct_color(image, seq.color_correction[c])
        frames = {"image": self._as_sample(image)}
        if self.alpha:
            frames["alpha"] = self._as_sample(self._reader(seq.path, "alpha").read(serial, time)[..., None])
        return {**frames, **sample}

    def metadata(self, i: int) -> tuple[_Sequence, int, dict]:
        """Sample ``i`` without its frames: its sequence, its camera's position among the sequence's cameras
        used, and the sample's entries after ``image`` and ``alpha`` (``intrinsics`` ... ``time``)."""
        s, t, c = self.key(i)
        seq = self.sequences[s]
        sample = {"intrinsics": seq.intrinsics[c], "world_2_cam": seq.world_2_cam[c]}
        if seq.flame is not None:
            sample["flame"] = {k: (v if k in ("shape", "scale") else v[t]) for k, v in seq.flame.items()}
        sample.update(sequence=seq.path, serial=seq.serials[c], camera=int(seq.positions[c]), time=int(seq.times[t]))
        return seq, c, sample


    def batches(self, batches: Iterable[Sequence[int]], threads: int | None = None,
                prefetch: int = 2) -> Iterator[dict]:
        """The samples of each list of indices in ``batches`` (a :class:`MultiViewBatches`, or any batch sampler),
        read by ``threads`` threads of this process (default: its cores) and collated as PyTorch's
        ``default_collate`` does, but into numpy: arrays stacked along a new first axis, ints as an int64 array,
        strings as a list, ``flame`` as a dict of stacked arrays; ``prefetch`` batches are read ahead.

        The alternative to a DataLoader's worker processes when frames are large: decoding releases the GIL, so
        threads scale with the cores, and no frame is copied between processes (on the GPU machine, 16 threads
        delivered 833 frames/s of 1100 x 1604 where 16 DataLoader workers delivered 187-240: docs/performance.md).
        ``torch.from_numpy(batch["image"])`` makes a tensor of it without a copy. A batch that mixes frame sizes
        raises :class:`~nersemble_cube.errors.UsageError`."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        from ..cluster import usable_cores

        with ThreadPoolExecutor(threads or usable_cores()) as pool:
            pending: deque = deque()
            for indices in batches:
                batch = _Batch(len(indices))
                pending.append((batch, [pool.submit(batch.put, j, self, i) for j, i in enumerate(indices)]))
                if len(pending) > prefetch:
                    yield _finished(*pending.popleft())
            while pending:
                yield _finished(*pending.popleft())


    def gpu_batches(self, batches: Iterable[Sequence[int]], device: int | str = "cuda",
                    threads: int = 8) -> Iterator[dict]:
        """:meth:`batches` with the frames decompressed on a CUDA GPU (:class:`~nersemble_cube.training.gpu.GpuFrames`:
        the ``gpu`` extra, a cube of ``zstd`` frames, fastest stored with ``convert --row-blocks 8``): ``image``
        (and ``alpha``) are CUDA tensors on ``device``, ``(batch, ...)`` of the dataset's dtype, channel order and
        scale, bit-equal to :meth:`batches`' (the colour correction, downscale and conversion done on the GPU
        the same way); the other entries as :meth:`batches` gives them. The next batch is read from disk
        (``threads`` threads) while the current one is decompressed and used. GPU memory: the batch, its
        compressed bytes, and with ``color_correction`` a 64 MB table per camera. A batch that mixes frame
        sizes raises :class:`~nersemble_cube.errors.UsageError`, as do cubes not stored as zstd frames."""
        from .gpu import GpuSamples

        if self._gpu is None or (self._gpu.device, self._gpu.threads) != (device, threads):
            self._gpu = GpuSamples(self, device, threads)
        return self._gpu.batches(batches)


class _Batch:
    """One batch being read: each thread that reads a sample copies its frames into the batch's arrays itself,
    so collating large frames is spread over the threads (allocated when the first sample arrives)."""

    LARGE = 1 << 16
    """Arrays of at least this many bytes are copied by the reading threads; smaller ones are stacked at the end."""

    def __init__(self, n: int):
        self.lock, self.large, self.samples = threading.Lock(), None, [None] * n

    def put(self, j: int, dataset: FrameDataset, i: int) -> None:
        sample = dataset[i]
        with self.lock:
            if self.large is None:
                self.large = {k: np.empty((len(self.samples), *v.shape), v.dtype) for k, v in sample.items()
                              if isinstance(v, np.ndarray) and v.nbytes >= self.LARGE}
        for key, out in self.large.items():
            if sample[key].shape != out.shape[1:]:
                raise UsageError(f"a batch of frames of different sizes ({sample[key].shape[:-1]} and "
                                 f"{out.shape[1:-1]} for {key!r}): batch samples of one size (one benchmark)")
            out[j] = sample[key]
        self.samples[j] = {k: v for k, v in sample.items() if k not in self.large}


def _finished(batch: _Batch, reads: list) -> dict:
    for read in reads:
        read.result()  # a sample's error, raised here
    rest = collate(batch.samples)
    return {k: batch.large[k] if k in batch.large else rest[k] for k in [*batch.large, *rest]}


def collate(samples: list[dict]) -> dict:
    """Samples of :class:`FrameDataset` as one batch: arrays stacked along a new first axis, ints as an int64
    array, strings as a list, dicts collated key by key (PyTorch's ``default_collate``, in numpy)."""
    first = samples[0]
    out = {}
    for key, value in first.items():
        values = [s[key] for s in samples]
        if isinstance(value, dict):
            out[key] = collate(values)
        elif isinstance(value, str):
            out[key] = values
        elif isinstance(value, (int, np.integer)):
            out[key] = np.array(values, np.int64)
        else:
            out[key] = np.stack(values)
    return out


class MultiViewBatches:
    """A batch sampler (``DataLoader(dataset, batch_sampler=...)``): each batch is every camera of ``dataset`` at
    one time of one sequence, the (sequence, time) pairs in a random order per epoch (``shuffle``; seeded by
    ``seed`` and the epoch, :meth:`set_epoch`) or in order."""

    def __init__(self, dataset: FrameDataset, shuffle: bool = True, seed: int = 0):
        self.dataset, self.shuffle, self.seed, self.epoch = dataset, shuffle, seed, 0
        self._groups = []
        start = 0
        for seq in dataset.sequences:
            n = len(seq.serials)
            self._groups += [range(start + t * n, start + (t + 1) * n) for t in range(len(seq.times))]
            start += n * len(seq.times)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self._groups)

    def __iter__(self) -> Iterator[list[int]]:
        order = (np.random.default_rng((self.seed, self.epoch)).permutation(len(self._groups)) if self.shuffle
                 else range(len(self._groups)))
        for g in order:
            yield list(self._groups[g])


class RandomFrames:
    """A sampler (``DataLoader(dataset, sampler=...)``): ``num_samples`` random samples of ``dataset`` per epoch
    (default: as many as it has), uniform over every (sequence, camera, time), without replacement while they
    last (a new permutation each pass) or, with ``replacement``, drawn independently; seeded by ``seed`` and the
    epoch (:meth:`set_epoch`), so every worker count yields the same order."""

    def __init__(self, dataset: FrameDataset, num_samples: int | None = None, replacement: bool = False,
                 seed: int = 0):
        self.n, self.num_samples = len(dataset), num_samples or len(dataset)
        self.replacement, self.seed, self.epoch = replacement, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        if self.replacement:
            yield from (int(i) for i in rng.integers(self.n, size=self.num_samples))
            return
        left = self.num_samples
        while left > 0:
            yield from (int(i) for i in rng.permutation(self.n)[:left])
            left -= self.n
