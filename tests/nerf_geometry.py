"""What the reader-contract tests share (tests/test_nerf_readers.py and tests/trainers/test_nerfstudio.py): the
cube's own camera and points on the sample head. The nerfstudio export both read is conftest's ``nerfstudio_export``."""

from pathlib import Path

import numpy as np

import nersemble_cube
from nersemble_cube.source import layout
from nersemble_cube.source.sample import head_centre

NVS = "nvs/388/sequences/GLASSES"


def project(k: np.ndarray, w2c: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The cube's OpenCV projection: pixel coordinates (n, 2), pixel centres at +0.5."""
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:]


def head_points(cube, t: int) -> np.ndarray:
    """The head's centre at frame ``t`` and 8 points of the sample's point cloud (on the head's surface)."""
    cloud = nersemble_cube.load_pointcloud(nersemble_cube.open(cube)[NVS], 0)[0].astype(np.float64)
    surface = cloud[np.linspace(0, len(cloud) - 1, 8).astype(int)] - head_centre(0, layout.NVS_FPS)
    return np.vstack([head_centre(t, layout.NVS_FPS), surface + head_centre(t, layout.NVS_FPS)])


def cube_camera(cube, sequence: str, serial: str, downscale: int) -> tuple[np.ndarray, np.ndarray]:
    seq = nersemble_cube.open(cube)[sequence]
    k = seq.intrinsics.sel(camera=serial).values.copy()
    k[:2] /= downscale
    return k, seq.world_2_cam.sel(camera=serial).values


def frame_identity(db: dict, cube, file_path: str) -> tuple[str, int]:
    """(serial, source frame) of ``images/{timestep_index:05d}_{camera_index:02d}.ext``."""
    t_index, c_index = map(int, Path(file_path).stem.split("_"))
    serials = nersemble_cube.open(cube)["nvs/388/calibration"].camera.values.tolist()
    return serials[c_index], db["source"]["source_frames"][t_index]
