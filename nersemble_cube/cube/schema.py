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

    /{benchmark}/{p_id:03d}/sequences/{seq}/pointclouds            nvs: ragged point clouds (point, timestep)
    /{benchmark}/{p_id:03d}/sequences/{seq}/flame2023_tracking_v2  mono: FLAME tracking (time, ...)
    /{benchmark}/{p_id:03d}/sequences/{seq}/flame2023_tracking_v1  mono: the outdated v1 tracking, if downloaded
    /dataset/{p_id:03d}/calibration          full dataset: as above, plus color_correction (camera, ccm_row, ccm_term)
    /dataset/{p_id:03d}/background           full dataset: background (camera, y, x, channel) uint8, one still per camera
    /svfr                                    images (image, y, x, channel) uint8 + per-image coords
    /scales/{f}/{benchmark}/{p_id:03d}/...   reduced-resolution copies: calibration and sequence frames

This module builds the lazily allocated xarray templates of those nodes; :mod:`nersemble_cube.conversion` fills them.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import UsageError
from ..source.converters.calibration import Calibration
from ..source.converters.color import METHOD as COLOR_METHOD
from ..source.converters.color import ColorCalibration
from ..source.converters.flame import FlameTracking
from ..source.layout import SvfrImageSource, camera_role
from .storage import StorageSpec

SCHEMA_NAME = "nersemble-cube"
SCHEMA_VERSION = "1.5"
METADATA_COMPLETE = "metadata_complete"
"""Node attr set once a node's metadata, coordinates and small arrays are all written (the template a
conversion then fills): an interrupted node without it is written afresh rather than resumed."""
WRITING = "writing"
"""Root attr present while a conversion writes the cube (``{"host", "pid", "started"}``) and removed when it
finishes: a cube that still has it after the writer is gone was left half-written."""
INTEGRITY = {"chunk_checksum": "crc32c", "every_chunk_stored": True}
"""Root attr ``integrity`` of cubes written since schema 1.1: every chunk ends with a crc32c of its bytes,
and every chunk of an array is stored (all-fill ones too), so a chunk that is not there is lost, not empty."""
CAMERA_CONVENTION = "OpenCV world_2_cam: x right, y down, z forward; X_cam = world_2_cam @ X_world; metres"

IMAGE_DIMS = ("camera", "time", "y", "x", "channel")
ALPHA_DIMS = ("camera", "time", "y", "x")
POSE_DIMS = ("camera", "pose_row", "pose_col")
INTRINSICS_DIMS = ("camera", "intrinsics_row", "intrinsics_col")
CCM_DIMS = ("camera", "ccm_row", "ccm_term")
CHANNELS = ("R", "G", "B")
BACKGROUND = "background"
POINT_CHUNK = 262_144  # points per chunk of the point-cloud arrays (3 MiB of float32 xyz)
POINTCLOUDS = "pointclouds"
SVFR = "svfr"
FLAG_SUFFIX = "_complete"  # per-unit completion flags: images_complete (camera,), cloud_complete (timestep,), ...
FLAGS = tuple(name + FLAG_SUFFIX for name in ("images", "alpha", "cloud"))  # every flag variable the schema has


def flag_variable(dim: str, n: int, what: str) -> tuple:
    """A completion flag per unit of a node (False until that unit's data is written; one chunk each,
    so parallel writers never share a chunk)."""
    return (dim,), np.zeros(n, bool), {"long_name": f"whether the {what} of this {dim} is fully written"}


def tracking_node(version: int) -> str:
    """Name of the FLAME tracking child node of a sequence; v1 carries its version so it is never taken for v2."""
    return f"flame2023_tracking_v{version}"


def scale_path(factor: int) -> str:
    """Root of the reduced-resolution copy ``factor`` (its nodes mirror the full-resolution paths)."""
    return f"scales/{factor}"


def participant_path(benchmark: str, participant_id: int) -> str:
    return f"{benchmark}/{participant_id:03d}"


def calibration_path(benchmark: str, participant_id: int) -> str:
    return f"{participant_path(benchmark, participant_id)}/calibration"


def sequence_path(benchmark: str, participant_id: int, sequence: str) -> str:
    return f"{participant_path(benchmark, participant_id)}/sequences/{sequence}"


def _strings(values: list[str]) -> np.ndarray:
    # object dtype is stored as zarr v3's variable-length "string" type (fixed-width UTF-32 has no v3 spec)
    return np.array(values, dtype=object)


def _calibration_vars(calib: Calibration, color: ColorCalibration | None = None) -> dict:
    """The calibration variables of ``calib``'s cameras; ``color_correction`` too if ``color`` is given
    (it must cover those cameras)."""
    shared = {"shared_intrinsics": "one matrix for every camera in camera_params.json"} if calib.shared_intrinsics else {}
    out = {
        "world_2_cam": (POSE_DIMS, calib.world_2_cam, {
            "long_name": "world-to-camera pose", "convention": CAMERA_CONVENTION, "units": "m (translation)",
        }),
        "intrinsics": (INTRINSICS_DIMS, calib.intrinsics, {
            "long_name": "pinhole intrinsics K", "units": "px",
            "pixel_convention": "pixel (u, v) covers [u, u+1) x [v, v+1); x = 0 is the left edge of the image",
            **shared,
        }),
    }
    if color is not None:
        matrices = color.matrices[[color.serials.index(s) for s in calib.serials]]
        out["color_correction"] = (CCM_DIMS, matrices, {
            "long_name": "colour-correction matrix (3 x terms) of each camera", "method": COLOR_METHOD,
            "terms": color.terms, "applies_to": "sRGB in [0, 1], decoded to linear first (ds.nersemble.color_correct)",
        })
    return out


def calibration_dataset(benchmark: str, participant_id: int, calib: Calibration, source: str,
                        color: ColorCalibration | None = None, color_source: str | None = None,
                        size: tuple[int, int] | None = None) -> xr.Dataset:
    """The ``calibration`` node: every camera in ``camera_params.json``, including the hold-out ones; for the
    full dataset also each camera's colour correction (``color``, from ``color_source``) and the frame ``size``
    (height, width) in pixels the intrinsics are for."""
    roles = [camera_role(benchmark, s) for s in calib.serials]
    attrs = {"benchmark": benchmark, "participant_id": participant_id, "source": source}
    if color_source is not None:
        attrs["color_source"] = color_source
    if size is not None:
        attrs.update(height=size[0], width=size[1])
    return xr.Dataset(
        _calibration_vars(calib, color),
        coords={"camera": _strings(calib.serials), "role": ("camera", _strings(roles))},
        attrs=attrs,
    )


def background_template(serials: list[str], height: int, width: int, sources: list[str]) -> xr.Dataset:
    """The full dataset's ``background`` node: one still per camera (the studio without the person), lazily
    allocated one chunk per camera."""
    return xr.Dataset(
        {BACKGROUND: (("camera", "y", "x", "channel"),
                      _zeros((len(serials), height, width, 3), dtype=np.uint8, chunks=(1, height, width, 3)),
                      {"long_name": "background still (sequences/BACKGROUND/image_{serial}.jpg)", "units": "1 (0-255)"})},
        coords={"camera": _strings(serials), "channel": _strings(list(CHANNELS))},
        attrs={"sources": sources, "complete": False},
    )


def sequence_attrs(benchmark: str, participant_id: int, sequence: str, n_frames: int, has_video: bool) -> dict:
    return {"benchmark": benchmark, "participant_id": participant_id, "sequence": sequence, "n_frames": n_frames,
            "has_video": has_video, "complete": False}


def sequence_without_video(benchmark: str, participant_id: int, sequence: str, n_frames: int) -> xr.Dataset:
    """A sequence node that holds no frames (a mono hold-out sequence: tracking only).

    ``n_frames`` is the number of frames a submission renders (the tracking's frame count)."""
    return xr.Dataset(attrs=sequence_attrs(benchmark, participant_id, sequence, n_frames, has_video=False))


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
    storage: StorageSpec,
    sources: dict[str, dict[str, str]],
    time: np.ndarray | None = None,
    color: ColorCalibration | None = None,
) -> xr.Dataset:
    """A lazily allocated sequence node for the cameras of ``calib`` (those with video).

    ``images`` and ``alpha`` are dask zeros chunked one camera by one shard of frames by the whole
    image (aligned with the zarr shards); they are never computed, only used to write the metadata.
    ``time``: the source frame index of each of the ``n_frames`` frames stored (default 0..n_frames-1);
    ``color``: the cameras' colour correction (full dataset).
    """
    time = np.arange(n_frames) if time is None else np.asarray(time)
    n_cam = len(calib.serials)
    chunks = (1, storage.shard_frames(n_frames), height, width)
    data = {
        "images": (IMAGE_DIMS, _zeros((n_cam, n_frames, height, width, 3), dtype=np.uint8, chunks=chunks + (3,)),
                   {"long_name": "RGB video frames, background removed", "units": "1 (0-255)"}),
        "images" + FLAG_SUFFIX: flag_variable("camera", n_cam, "video"),
        **_calibration_vars(calib, color),
    }
    if has_alpha:
        data["alpha"] = (ALPHA_DIMS, _zeros((n_cam, n_frames, height, width), dtype=np.uint8, chunks=chunks),
                         {"long_name": "foreground alpha matte (first channel of the matte video)",
                          "units": "1 (0-255)"})
        data["alpha" + FLAG_SUFFIX] = flag_variable("camera", n_cam, "alpha matte video")
    return xr.Dataset(
        data,
        coords={
            "camera": _strings(calib.serials),
            "time": ("time", time.astype(np.int32), {"long_name": "frame index in the source video"}),
            "channel": _strings(list(CHANNELS)),
        },
        attrs={
            **sequence_attrs(benchmark, participant_id, sequence, n_frames, has_video=True),
            "fps": fps,
            "height": height,
            "width": width,
            "sources": sources,
        },
    )


def tracking_dataset(tracking: FlameTracking, version: int, time_dim: str, source: str) -> xr.Dataset:
    """A FLAME tracking node: every array of the npz, bit-equal, with labeled dims.

    ``shape`` (1, 300) is stored as ``(shape_coeff,)`` and ``scale`` (1, 1) as a scalar; the
    ``frames`` array becomes the ``time_dim`` coordinate (``"time"``, aligned with the images)."""
    t = time_dim
    return xr.Dataset(
        {
            "shape": (("shape_coeff",), tracking.shape[0], {"long_name": "FLAME identity (shape) coefficients"}),
            "expression": ((t, "expression_coeff"), tracking.expression, {"long_name": "FLAME expression coefficients"}),
            "rotation": ((t, "axis_angle"), tracking.rotation, {"long_name": "head rotation, axis-angle", "units": "rad"}),
            "rotation_matrices": ((t, "matrix_row", "matrix_col"), tracking.rotation_matrices,
                                  {"long_name": "head rotation as 3x3 matrices"}),
            "translation": ((t, "xyz"), tracking.translation, {"long_name": "head translation (world)", "units": "m"}),
            "jaw": ((t, "axis_angle"), tracking.jaw, {"long_name": "jaw pose, axis-angle", "units": "rad"}),
            "neck": ((t, "axis_angle"), tracking.neck, {"long_name": "neck pose, axis-angle", "units": "rad"}),
            "eyes": ((t, "eye_param"), tracking.eyes, {"long_name": "left and right eye poses, axis-angle", "units": "rad"}),
            "scale": ((), tracking.scale[0, 0], {"long_name": "FLAME model-to-world scale"}),
        },
        coords={t: (t, tracking.frames, {"long_name": "frame index (the npz's 'frames')"})},
        attrs={"flame_version": "FLAME 2023", "tracking_version": version, "valid_for_submission": version == 2,
               "n_frames": tracking.n_frames, "source": source, "complete": False},
    )


def pointcloud_template(timesteps: list[int], counts: list[int], offsets: list[int], total: int, has_normals: bool,
                        has_colors: bool, sources: list[str]) -> xr.Dataset:
    """A point-cloud node (CF contiguous ragged array): timestep ``i`` owns the points
    ``offset[i] : offset[i] + count[i]`` of ``total``; the point arrays are lazily allocated dask zeros."""
    chunk = min(POINT_CHUNK, max(total, 1))
    data = {
        "positions": (("point", "xyz"), _zeros((total, 3), dtype=np.float32, chunks=(chunk, 3)),
                      {"long_name": "point positions (world)", "units": "m"}),
        "count": (("timestep",), np.asarray(counts, np.int64),
                  {"long_name": "points of each timestep", "sample_dimension": "point"}),
        "offset": (("timestep",), np.asarray(offsets, np.int64),
                   {"long_name": "index of the first point of each timestep"}),
        "cloud" + FLAG_SUFFIX: flag_variable("timestep", len(timesteps), "point cloud"),
    }
    if has_normals:
        data["normals"] = (("point", "xyz"), _zeros((total, 3), dtype=np.float32, chunks=(chunk, 3)),
                           {"long_name": "point normals"})
    if has_colors:
        data["colors"] = (("point", "rgb"), _zeros((total, 3), dtype=np.uint8, chunks=(chunk, 3)),
                          {"long_name": "point colours", "units": "1 (0-255)"})
    return xr.Dataset(
        data,
        coords={"timestep": ("timestep", np.asarray(timesteps, np.int32), {"long_name": "frame index"})},
        attrs={"sources": sources, "complete": False,
               "layout": "CF contiguous ragged array; points outside every [offset, offset + count) are padding"},
    )


def svfr_template(images: list[SvfrImageSource], height: int, width: int) -> xr.Dataset:
    """The SVFR node: one 512x512 RGB image per entry, labeled with its submission path."""
    n = len(images)
    return xr.Dataset(
        {"images": (("image", "y", "x", "channel"),
                    _zeros((n, height, width, 3), dtype=np.uint8, chunks=(1, height, width, 3)),
                    {"long_name": "cropped RGB input image", "units": "1 (0-255)"})},
        coords={
            "image": _strings([f"{i.participant_id:03d}/{i.key}" for i in images]),
            "participant_id": ("image", np.array([i.participant_id for i in images], np.int32)),
            "sequence": ("image", _strings([i.sequence for i in images])),
            "timestep": ("image", np.array([i.timestep for i in images], np.int32)),
            "serial": ("image", _strings([i.serial for i in images])),
            "key": ("image", _strings([i.key for i in images])),
            "channel": _strings(list(CHANNELS)),
        },
        attrs={"benchmark": "svfr", "complete": False},
    )


def _zeros(shape: tuple[int, ...], dtype, chunks: tuple[int, ...]):
    """Lazily allocated dask zeros (dask.array imported here: describing a cube needs no dask)."""
    import dask.array as da

    return da.zeros(shape, dtype=dtype, chunks=chunks)


def encoding(ds: xr.Dataset, storage: StorageSpec | None = None) -> dict:
    """zarr encodings for a node: nothing is masked (no ``_FillValue``); video frame arrays get the
    chunks, shards and codecs of ``storage`` (alpha mattes lossless: :meth:`StorageSpec.for_mattes`); SVFR images and point arrays its lossless compressor
    (zstd when ``storage`` is lossy) with their dask chunks; small arrays are one chunk. Every array,
    coordinates included, ends its codecs with a crc32c checksum of each chunk."""
    enc = {}
    lossless = storage.compressors() if storage is not None and storage.lossless else StorageSpec().compressors()
    for name, var in ds.data_vars.items():
        e: dict = {"_FillValue": None, "compressors": lossless}
        if storage is not None and name in ("images", "alpha") and var.dims[:2] == ("camera", "time"):
            spec = storage.for_mattes() if name == "alpha" else storage
            e.update(spec.frame_encoding(var.sizes["time"], var.shape[2:]))
        elif name.endswith(FLAG_SUFFIX):
            e["chunks"] = (1,)
        elif var.ndim and not (storage is not None and name in ("images", "positions", "normals", "colors", BACKGROUND)):
            e["chunks"] = var.shape  # one chunk; SVFR images and point arrays keep their dask chunks
        enc[name] = e
    for name in ds.coords:
        enc[name] = {"compressors": lossless}
    return enc


def sequence_group(sequence: str) -> str:
    """The one way sequences are named: ``"nvs/388/GLASSES"`` or the node path ``"nvs/388/sequences/GLASSES"``
    (``dataset/018/EXP-1-head`` for the full dataset; the participant as written in the cube, three digits)
    -> the node path. Every function and command taking a sequence goes through it."""
    parts = sequence.strip("/").split("/")
    if len(parts) == 3:
        parts.insert(2, "sequences")
    if len(parts) != 4 or parts[2] != "sequences" or not parts[1].isdigit():
        raise UsageError(f"sequence {sequence!r}: write BENCHMARK/PARTICIPANT/SEQUENCE, e.g. nvs/388/GLASSES or "
                         "dataset/018/EXP-1-head")
    return sequence_path(parts[0], int(parts[1]), parts[3])
