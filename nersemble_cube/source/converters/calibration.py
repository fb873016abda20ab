"""``calibration/camera_params.json`` -> per-camera extrinsics and intrinsics.

The file holds ``{"world_2_cam": {serial: 4x4}, "intrinsics": {serial: 3x3}}``: world-to-camera
poses in the OpenCV camera convention (x right, y down, z forward) with translations in metres,
and pinhole intrinsics in pixels of the benchmark's video resolution. The full dataset's file
(``nersemble_data``) has ONE ``intrinsics`` 3x3 shared by every camera instead of a mapping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SourceError
from ..files import as_path


@dataclass(frozen=True)
class Calibration:
    """Cameras of one participant, sorted by serial.

    ``world_2_cam`` is ``(camera, 4, 4)`` float64, ``intrinsics`` ``(camera, 3, 3)`` float64 (the one
    shared matrix repeated per camera when ``shared_intrinsics``).
    """

    serials: list[str]
    world_2_cam: np.ndarray
    intrinsics: np.ndarray
    shared_intrinsics: bool = False

    def select(self, serials: list[str]) -> Calibration:
        """The cameras ``serials``, in that order."""
        idx = [self.serials.index(s) for s in serials]
        return Calibration(list(serials), self.world_2_cam[idx], self.intrinsics[idx], self.shared_intrinsics)


def _numbers(value, shape: tuple[int, int]) -> bool:
    """Whether ``value`` is a JSON matrix of ``shape`` holding numbers only (not strings, not booleans)."""
    return (isinstance(value, list) and len(value) == shape[0]
            and all(isinstance(row, list) and len(row) == shape[1]
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row) for row in value))


def _implausible(key: str, m: np.ndarray) -> str | None:
    """Why ``m`` cannot be a camera's ``world_2_cam`` (a rigid transform) or ``intrinsics`` (a pinhole K)."""
    if key == "world_2_cam":
        rotation = m[:3, :3]
        if not np.allclose(m[3], (0, 0, 0, 1)) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) \
                or np.linalg.det(rotation) < 0:
            return "not a rigid transform (rotation and translation, last row 0 0 0 1)"
    elif not (m[0, 0] > 0 and m[1, 1] > 0 and np.allclose(m[2], (0, 0, 1)) and m[1, 0] == 0):
        return "not a pinhole camera matrix (positive focal lengths, last row 0 0 1)"
    return None


def _matrices(path: Path, data: dict, key: str, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    block = data.get(key)
    if not isinstance(block, dict) or not block:
        raise SourceError(f"{path}: malformed camera_params.json, no {key!r} mapping of serial -> matrix")
    out = {}
    for serial, value in block.items():
        m = np.asarray(value, dtype=np.float64) if _numbers(value, shape) else None
        if m is None or not np.isfinite(m).all():
            raise SourceError(f"{path}: malformed camera_params.json, {key}[{serial!r}] is not a finite "
                              f"{shape[0]}x{shape[1]} matrix of numbers")
        why = _implausible(key, m)
        if why:
            raise SourceError(f"{path}: malformed camera_params.json, {key}[{serial!r}] is {why}; download it again")
        out[str(serial)] = m
    return out


def read_calibration(path: str | Path) -> Calibration:
    """Parse ``camera_params.json``; raises :class:`SourceError` naming the file if it is malformed."""
    path = as_path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceError(f"{path}: not a readable JSON file ({e}); download it again") from None
    if not isinstance(data, dict):
        raise SourceError(f"{path}: malformed camera_params.json, expected a JSON object")
    w2c = _matrices(path, data, "world_2_cam", (4, 4))
    shared = isinstance(data.get("intrinsics"), list)
    if shared:  # the full dataset: one matrix for every camera
        intr = _matrices(path, {"intrinsics": dict.fromkeys(w2c, data["intrinsics"])}, "intrinsics", (3, 3))
    else:
        intr = _matrices(path, data, "intrinsics", (3, 3))
    if set(w2c) != set(intr):
        raise SourceError(
            f"{path}: malformed camera_params.json, world_2_cam and intrinsics list different cameras "
            f"({sorted(set(w2c) ^ set(intr))})"
        )
    serials = sorted(w2c)
    return Calibration(serials, np.stack([w2c[s] for s in serials]), np.stack([intr[s] for s in serials]), shared)
