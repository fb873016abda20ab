"""Shared fixtures: one sample benchmark folder and its cube per test session (read-only for tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from nersemble_cube import convert, write_sample

N_FRAMES = 5
N_CAMERAS = 3  # nvs train cameras in the shared sample (the full 13-camera layout has its own test)
POINTCLOUD_FRAMES = (0, 3)


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("sample") / "benchmark", n_frames=N_FRAMES, n_cameras=N_CAMERAS,
                        pointcloud_frames=POINTCLOUD_FRAMES, pointcloud_points=5000, tracking_v1=True)


@pytest.fixture(scope="session")
def cube(sample_dir, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("cube") / "cube.zarr"
    convert(sample_dir, target)
    return target


def decode_pyav(path: Path) -> np.ndarray:
    """Independent reference decode (PyAV, not our ffmpeg pipe): (time, y, x, 3) uint8 RGB."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def tree_digest(folder: Path) -> dict[str, str]:
    """Path -> sha256 of every file below ``folder`` (to prove a folder was not modified)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
