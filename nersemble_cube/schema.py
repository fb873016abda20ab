"""The store schema: group paths, dimension names, attributes. See ``docs/schema.md``, the contract.

Group paths mirror the download layout::

    /                                        attrs: schema, schema_version, camera_convention, storage, ...
    /{benchmark}/{p_id:03d}/calibration      world_2_cam (camera, pose_row, pose_col) float64
                                             intrinsics  (camera, intrinsics_row, intrinsics_col) float64
                                             coords camera (serial str), role (train|hold_out|unused)
    /{benchmark}/{p_id:03d}/sequences/{seq}  images (camera, time, y, x, channel) uint8
                                             alpha   (camera, time, y, x) uint8
                                             world_2_cam, intrinsics of the cameras with video
                                             coords camera, time (frame index int32), channel (R, G, B)

This module builds the lazily allocated xarray templates of those nodes; :mod:`.convert` fills them.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from .converters.calibration import Calibration
from .layout import camera_role

SCHEMA_NAME = "nersemble-cube"
SCHEMA_VERSION = "1.0"
CAMERA_CONVENTION = "OpenCV world_2_cam: x right, y down, z forward; X_cam = world_2_cam @ X_world; metres"

IMAGE_DIMS = ("camera", "time", "y", "x", "channel")
ALPHA_DIMS = ("camera", "time", "y", "x")
POSE_DIMS = ("camera", "pose_row", "pose_col")
INTRINSICS_DIMS = ("camera", "intrinsics_row", "intrinsics_col")
CHANNELS = ("R", "G", "B")


def participant_path(benchmark: str, participant_id: int) -> str:
    return f"{benchmark}/{participant_id:03d}"


def calibration_path(benchmark: str, participant_id: int) -> str:
    return f"{participant_path(benchmark, participant_id)}/calibration"


def sequence_path(benchmark: str, participant_id: int, sequence: str) -> str:
    return f"{participant_path(benchmark, participant_id)}/sequences/{sequence}"


def _strings(values: list[str]) -> np.ndarray:
    # object dtype is stored as zarr v3's variable-length "string" type (fixed-width UTF-32 has no v3 spec)
    return np.array(values, dtype=object)


def _calibration_vars(benchmark: str, calib: Calibration) -> dict:
    return {
        "world_2_cam": (POSE_DIMS, calib.world_2_cam, {
            "long_name": "world-to-camera pose", "convention": CAMERA_CONVENTION, "units": "m (translation)",
        }),
        "intrinsics": (INTRINSICS_DIMS, calib.intrinsics, {
            "long_name": "pinhole intrinsics K", "units": "px",
            "pixel_convention": "pixel (u, v) covers [u, u+1) x [v, v+1); x = 0 is the left edge of the image",
        }),
    }


def calibration_dataset(benchmark: str, participant_id: int, calib: Calibration, source: str) -> xr.Dataset:
    """The ``calibration`` node: every camera in ``camera_params.json``, including the hold-out ones."""
    roles = [camera_role(benchmark, s) for s in calib.serials]
    return xr.Dataset(
        _calibration_vars(benchmark, calib),
        coords={"camera": _strings(calib.serials), "role": ("camera", _strings(roles))},
        attrs={"benchmark": benchmark, "participant_id": participant_id, "source": source},
    )


def sequence_template(
    benchmark: str,
    participant_id: int,
    sequence: str,
    calib: Calibration,
    n_frames: int,
    height: int,
    width: int,
    fps: float,
    has_alpha: bool,
    frames_per_chunk: int,
    sources: dict[str, dict[str, str]],
) -> xr.Dataset:
    """A lazily allocated sequence node for the cameras of ``calib`` (those with video).

    ``images`` and ``alpha`` are dask zeros chunked one camera by ``frames_per_chunk`` frames by
    the whole image; they are never computed, only used to write the metadata.
    """
    n_cam = len(calib.serials)
    chunks = (1, frames_per_chunk, height, width)
    data = {
        "images": (IMAGE_DIMS, da.zeros((n_cam, n_frames, height, width, 3), dtype=np.uint8, chunks=chunks + (3,)),
                   {"long_name": "RGB video frames, background removed", "units": "1 (0-255)"}),
        **_calibration_vars(benchmark, calib),
    }
    if has_alpha:
        data["alpha"] = (ALPHA_DIMS, da.zeros((n_cam, n_frames, height, width), dtype=np.uint8, chunks=chunks),
                         {"long_name": "foreground alpha matte (first channel of the matte video)",
                          "units": "1 (0-255)"})
    return xr.Dataset(
        data,
        coords={
            "camera": _strings(calib.serials),
            "time": ("time", np.arange(n_frames, dtype=np.int32), {"long_name": "frame index in the source video"}),
            "channel": _strings(list(CHANNELS)),
        },
        attrs={
            "benchmark": benchmark,
            "participant_id": participant_id,
            "sequence": sequence,
            "fps": fps,
            "n_frames": n_frames,
            "height": height,
            "width": width,
            "sources": sources,
            "complete": False,
        },
    )


def encoding(ds: xr.Dataset, compressors: tuple = ()) -> dict:
    """zarr encodings for a node: frame arrays get ``compressors``; nothing is masked (no ``_FillValue``);
    small arrays are stored as one chunk, frame arrays keep their dask chunks."""
    enc = {}
    for name, var in ds.data_vars.items():
        e: dict = {"_FillValue": None}
        if name in ("images", "alpha"):
            e["compressors"] = compressors
        else:
            e["chunks"] = var.shape
        enc[name] = e
    return enc
