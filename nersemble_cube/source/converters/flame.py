"""FLAME 2023 tracking (``tracking/flame2023_tracking[_v2].npz``) -> named, labeled arrays.

The keys and shapes are those of the toolkit's ``FlameTracking`` dataclass (``T`` = frames)::

    shape (1, 300)   expression (T, 100)   rotation (T, 3)   rotation_matrices (T, 3, 3)
    translation (T, 3)   jaw (T, 3)   frames (T,)   scale (1, 1)   neck (T, 3)   eyes (T, 6)

Values and dtypes are kept exactly as stored in the npz.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ...errors import SourceError
from ..files import as_path

# key -> shape with "T" for the number of frames (the toolkit's FlameTracking, in its field order)
SHAPES: dict[str, tuple] = {
    "shape": (1, 300),
    "expression": ("T", 100),
    "rotation": ("T", 3),
    "rotation_matrices": ("T", 3, 3),
    "translation": ("T", 3),
    "jaw": ("T", 3),
    "frames": ("T",),
    "scale": (1, 1),
    "neck": ("T", 3),
    "eyes": ("T", 6),
}


@dataclass
class FlameTracking:
    """Same field names, shapes and dtypes as ``nersemble_benchmark.data.benchmark_data.FlameTracking``.

    rotation, jaw and neck are axis-angle vectors (radians); translation is in metres (world space);
    eyes holds two axis-angle vectors (left, right); frames are the frame indices of the sequence.
    """

    shape: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    rotation_matrices: np.ndarray
    translation: np.ndarray
    jaw: np.ndarray
    frames: np.ndarray
    scale: np.ndarray
    neck: np.ndarray
    eyes: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.frames)


assert tuple(f.name for f in fields(FlameTracking)) == tuple(SHAPES)


MAX_FRAMES = 1_000_000
"""More frames than any recording has (NeRSemble's longest sequences have a few thousand)."""
_NPY_HEADER = 4096


def _bounded(path: Path, npz, key: str, max_bytes: int) -> np.ndarray:
    """``npz[key]``, refused unread if its member declares more than ``max_bytes`` of data (plus a header)."""
    size = npz.zip.getinfo(f"{key}.npy").file_size
    if size > max_bytes + _NPY_HEADER:
        raise SourceError(f"{path}: FLAME tracking {key!r} takes {size} bytes, more than the {max_bytes} its shape "
                          "allows; download it again")
    return npz[key]


def read_flame_tracking(path: str | Path) -> FlameTracking:
    """Load and check a tracking npz; raises :class:`SourceError` naming the file for missing keys,
    wrong shapes, frame counts that disagree between keys, or non-finite values."""
    path = as_path(path)
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            missing = [k for k in SHAPES if k not in npz.files]
            if missing:
                raise SourceError(f"{path}: FLAME tracking without keys {missing}; download it again")
            arrays = {"frames": _bounded(path, npz, "frames", MAX_FRAMES * 8)}
            if arrays["frames"].ndim != 1:
                raise SourceError(f"{path}: FLAME tracking 'frames' has shape {arrays['frames'].shape}, expected "
                                  "(T,): one frame index per tracked frame; download it again")
            n = len(arrays["frames"])
            for key, spec in SHAPES.items():  # only the keys the cube stores, each no larger than its shape
                expected = tuple(max(n, 0) if s == "T" else s for s in spec)
                arrays[key] = _bounded(path, npz, key, 8 * int(np.prod(expected)))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError,
            struct.error, KeyError) as e:  # every way zipfile and numpy fail on a damaged file (fuzzed)
        raise SourceError(f"{path}: not a readable npz file ({e}); download it again") from None
    for key, spec in SHAPES.items():
        expected = tuple(n if s == "T" else s for s in spec)
        if arrays[key].shape != expected:
            raise SourceError(
                f"{path}: FLAME tracking {key!r} has shape {arrays[key].shape}, expected {expected} "
                f"(T = {n} frames from 'frames')"
            )
        if arrays[key].dtype.kind not in "fiu":
            raise SourceError(f"{path}: FLAME tracking {key!r} has dtype {arrays[key].dtype}, expected numbers")
        if arrays[key].dtype.kind == "f" and not np.isfinite(arrays[key]).all():
            raise SourceError(f"{path}: FLAME tracking {key!r} contains NaN or infinite values")
    return FlameTracking(**{k: arrays[k] for k in SHAPES})


def write_flame_tracking(path: str | Path, tracking: FlameTracking) -> None:
    """Write ``tracking`` as an npz with the toolkit's keys (for the sample folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: getattr(tracking, k) for k in SHAPES})
