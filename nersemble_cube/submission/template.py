"""Prediction templates: exactly what a benchmark submission must contain, shaped, chunked and calibrated.

A template is an :class:`xarray.DataTree` laid out like the submission zip::

    /{p_id:03d}/{sequence}    images (camera, time, y, x, channel) uint8, world_2_cam, intrinsics

with one node per (participant, sequence) to render, the cameras to render on ``camera`` and
their calibration from the cube. In memory its ``images`` are dask zeros (nothing allocated); on
disk (``store=``) it is a zarr store whose frames a renderer fills with :func:`write_frames`, in any
order or in parallel (each call writes whole chunks: one frame per chunk).
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from ..cube import schema
from ..cube.access import as_tree
from ..cube.store import consolidate
from ..errors import PredictionError, StoreError
from .rules import expected_videos, fps, frame_size

PREDICTION_SCHEMA = "nersemble-cube-prediction"


def _node(cube: xr.DataTree, benchmark: str, p_id: int, seq: str, serials: list[str]) -> xr.Dataset:
    seq_node = cube[schema.sequence_path(benchmark, p_id, seq)]
    n_frames = seq_node.attrs.get("n_frames")
    if n_frames is None:
        raise StoreError(f"{seq_node.path}: the cube does not know how many frames this sequence has")
    calib = cube[schema.calibration_path(benchmark, p_id)].to_dataset(inherit=False)
    missing = [s for s in serials if s not in calib.camera.values.tolist()]
    if missing:
        raise StoreError(f"{calib.attrs.get('source', p_id)}: no calibration for the cameras to render {missing}")
    calib = calib.sel(camera=serials).compute()
    height, width = frame_size(benchmark)
    images = da.zeros((len(serials), n_frames, height, width, 3), dtype=np.uint8, chunks=(1, 1, height, width, 3))
    return xr.Dataset(
        {"images": (schema.IMAGE_DIMS, images, {"long_name": "predicted RGB frames", "units": "1 (0-255)"}),
         "world_2_cam": calib.world_2_cam, "intrinsics": calib.intrinsics},
        coords={"camera": np.array(serials, dtype=object), "time": np.arange(n_frames, dtype=np.int32),
                "channel": np.array(schema.CHANNELS, dtype=object)},
        attrs={"benchmark": benchmark, "participant_id": p_id, "sequence": seq, "n_frames": n_frames,
               "fps": fps(benchmark), "height": height, "width": width},
    )


def _has_node(tree: xr.DataTree, path: str) -> bool:
    try:
        tree[path]
    except KeyError:
        return False
    return True


def prediction_template(cube: xr.DataTree | str | Path, benchmark: str, store: str | Path | None = None) -> xr.DataTree:
    """The prediction template of ``benchmark`` for every benchmark sequence the cube holds.

    nvs: for each of the 5 (participant, sequence) pairs, the 3 hold-out cameras 222200037,
    222200039, 222200046, every frame of the sequence, 1604 high x 1100 wide. mono_flame_avatar: the
    4 hold-out sequences of each participant, cameras 220700191, 222200037, 222200039, 222200046,
    512x512, as many frames as the sequence's FLAME tracking. ``images`` are RGB uint8 (0-255).
    Cameras are sorted by serial; ``world_2_cam`` / ``intrinsics`` are the cube's calibration.

    Without ``store`` the tree is in memory and its ``images`` dask zeros (nothing allocated):
    replace them with your own (numpy or dask) arrays of the same shape. With ``store`` the
    template is written there as a zarr store (metadata and calibration only) and returned opened
    lazily; fill it with :func:`write_frames`. Raises :class:`StoreError` if the cube holds none of
    the benchmark's sequences.
    """
    tree = as_tree(cube)
    nodes = {}
    for (p_id, seq), serials in expected_videos(benchmark).items():
        if _has_node(tree, schema.sequence_path(benchmark, p_id, seq)):
            nodes[f"{p_id:03d}/{seq}"] = _node(tree, benchmark, p_id, seq, sorted(serials))
    if not nodes:
        raise StoreError(f"the cube holds none of the {benchmark} benchmark sequences; convert them first")
    root = xr.Dataset(attrs={"schema": PREDICTION_SCHEMA, "schema_version": schema.SCHEMA_VERSION,
                             "benchmark": benchmark})
    template = xr.DataTree.from_dict({"/": root, **nodes})
    if store is None:
        return template
    path = Path(store).expanduser()
    if path.exists() and any(path.iterdir()):
        raise StoreError(f"{path}: exists and is not empty; choose a new path for the prediction store")
    for node in template.subtree:
        ds = node.to_dataset(inherit=False)
        enc = {v: {"_FillValue": None} for v in ds.data_vars}
        ds.to_zarr(str(path), group=node.path.lstrip("/") or None, mode="w" if node is template else "a",
                   compute=False, zarr_format=3, consolidated=False, encoding=enc)
    consolidate(path)
    return xr.open_datatree(str(path), engine="zarr", chunks={}, consolidated=True, zarr_format=3)


def write_frames(store: str | Path, participant_id: int, sequence: str, serial: str, frames: np.ndarray,
                 start: int = 0) -> None:
    """Write ``frames`` ``(n, y, x, 3)`` uint8 of one camera into an on-disk template from frame ``start``.

    Each frame is its own chunk, so calls for different frames or cameras may run in parallel
    (threads or processes). Every written chunk is stored, black ones too, so export can tell a
    frame that was never written from a black one. Frames that would not fit the sequence (``start`` below
    0 or past its end) raise :class:`PredictionError`; nothing is written then.
    """
    path = Path(store).expanduser()
    group = f"{participant_id:03d}/{sequence}"
    try:
        arr = zarr.open_array(str(path), path=f"{group}/images", mode="r+", zarr_format=3).with_config(
            {"write_empty_chunks": True})
        cams = zarr.open_array(str(path), path=f"{group}/camera", mode="r", zarr_format=3)[:].tolist()
    except FileNotFoundError:
        raise StoreError(f"{path}: no {group} in this prediction store") from None
    if serial not in cams:
        raise StoreError(f"{path}: {group} renders cameras {cams}, not {serial}")
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.shape[1:] != arr.shape[2:]:
        raise ValueError(f"frames must be (n, {', '.join(map(str, arr.shape[2:]))}) uint8, got {frames.shape} {frames.dtype}")
    n_frames = arr.shape[1]
    if start < 0 or start + len(frames) > n_frames:
        raise PredictionError(f"{path}: {group} has frames 0..{n_frames - 1}; frames {start}..{start + len(frames) - 1} "
                              "do not fit")
    arr[cams.index(serial), start:start + len(frames)] = frames


def template_counts(template: xr.DataTree) -> tuple[int, int]:
    """(videos, frames) a prediction template asks for: cameras and camera-frames of its ``images``."""
    nodes = [n.dataset for n in template.subtree if "images" in n.dataset]
    return sum(ds.sizes["camera"] for ds in nodes), sum(ds.sizes["camera"] * ds.sizes["time"] for ds in nodes)
