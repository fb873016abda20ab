"""Training-ready NeRF / 3D Gaussian Splatting folders from a cube, written for one reader
(:data:`~nersemble_cube.training.readers.READERS`: GaussianAvatars, nerfstudio, VHAP, instant-ngp).

::

    OUT/
      images/{timestep_index:05d}_{camera_index:02d}.png    composited on the background (RGBA for instant-ngp)
      fg_masks/{timestep_index:05d}_{camera_index:02d}.png  the alpha matte (8-bit grey)
      transforms.json                                       every frame; intrinsics top-level only where shared
      transforms_train.json, transforms_val.json, transforms_test.json   the reader's split
      points3d.ply                                          nvs: the sequence's point cloud nearest the first frame
      flame_param/{timestep_index:05d}.npz, canonical_flame_param.npz   FLAME tracking, VHAP's keys

Poses: ``transform_matrix`` is camera-to-world in the OpenGL / Blender convention (x right, y up,
z backwards): ``inv(world_2_cam) @ diag(1, -1, -1, 1)`` of the cube's OpenCV world_2_cam, in the
benchmark's world frame, or for sequences with FLAME tracking in the FLAME model's frame of each
timestep (:func:`flame_frame_w2c`). See docs/nerf-export.md for every key of every reader.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from .. import accessor  # noqa: F401 - registers ds.nersemble
from ..cluster import Progress, check_scheduler, computing, usable_cores
from ..cube.access import as_tree, flame_tracking, load_pointcloud
from ..cube.schema import POINTCLOUDS, calibration_path, sequence_group, tracking_node
from ..errors import SelectionError, StoreError, UsageError
from .readers import DEFAULT_READER, READERS, Reader

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiplied onto an OpenCV camera-to-world matrix: flips the camera's y and z axes."""
FLAME_VERTICES = 5023  # FLAME 2020 / 2023: VHAP's static_offset is (1, 5023, 3)
INTRINSIC_KEYS = ("cx", "cy", "fl_x", "fl_y", "h", "w", "camera_angle_x", "camera_angle_y")
INSTANT_NGP_BOX = 0.6  # metres: the side of the cube around the scene centre that instant-ngp trains in
JPEG_QUALITY = 95
FRAMES_IN_FLIGHT_PER_WORKER = 4
PNG_LEVEL = 1  # zlib level: OpenCV's imwrite default; 2x faster than level 6 for about 12 % more bytes
TRAIN_RATIO = 0.7  # VHAP's split_json: the first 70 % of the timesteps train, the rest test
VAL_CAMERA_INDEX = 8  # VHAP's split_json: camera index 8 (if present) is the validation view


@dataclass
class NerfExport:
    """What :func:`export_nerf` wrote: the folder, the source frame indices, the cameras and the file count."""

    folder: Path
    frames: list[int]
    cameras: list[str]
    files: int = 0
    notes: list[str] = field(default_factory=list)


def opengl_c2w(world_2_cam: np.ndarray) -> np.ndarray:
    """OpenCV world_2_cam ``(..., 4, 4)`` -> OpenGL camera_to_world ``(..., 4, 4)``."""
    return np.linalg.inv(world_2_cam) @ OPENCV_TO_OPENGL


def world_2_cam_from_opengl(c2w: np.ndarray) -> np.ndarray:
    """The inverse of :func:`opengl_c2w` (what GaussianAvatars' reader does)."""
    return np.linalg.inv(np.asarray(c2w) @ OPENCV_TO_OPENGL)


def euler_xyz(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` of intrinsic x-y-z Euler angles ``(..., 3)`` in radians:
    ``Rx(a) @ Ry(b) @ Rz(c)``, what the toolkit's ``FlameProvider`` builds from ``rotation``
    (``scipy.spatial.transform.Rotation.from_euler("XYZ", ...)`` via dreifus)."""
    a = np.asarray(angles, np.float64)
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(c[..., 0]), np.zeros_like(c[..., 0])
    rx = np.stack([one, zero, zero, zero, c[..., 0], -s[..., 0], zero, s[..., 0], c[..., 0]], -1)
    ry = np.stack([c[..., 1], zero, s[..., 1], zero, one, zero, -s[..., 1], zero, c[..., 1]], -1)
    rz = np.stack([c[..., 2], -s[..., 2], zero, s[..., 2], c[..., 2], zero, zero, zero, one], -1)
    shape = a.shape[:-1] + (3, 3)
    return rx.reshape(shape) @ ry.reshape(shape) @ rz.reshape(shape)


def flame_frame_w2c(world_2_cam: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                    scale: float) -> np.ndarray:
    """The camera ``world_2_cam`` (4, 4) seen from the FLAME model's frame of one timestep.

    The toolkit places the mesh as ``X = scale * R v + translation`` (``R = euler_xyz(rotation)``).
    Then ``world_2_cam @ X`` equals ``scale * (W @ v)`` with ``W = [Rc R | (Rc translation + tc) / scale]``;
    the factor ``scale`` does not change any projection, so ``W`` (rigid) sees the unposed FLAME mesh
    exactly where the camera sees the tracked one."""
    rc, tc = world_2_cam[:3, :3], world_2_cam[:3, 3]
    out = np.eye(4)
    out[:3, :3] = rc @ euler_xyz(rotation)
    out[:3, 3] = (rc @ translation + tc) / scale
    return out


def _encode(image: np.ndarray, fmt: str) -> bytes:
    import imagecodecs

    image = np.ascontiguousarray(image)
    if fmt == "png":
        return imagecodecs.png_encode(image, level=PNG_LEVEL)
    return imagecodecs.jpeg8_encode(image, level=JPEG_QUALITY)


def _write_image(block: np.ndarray, path: str, fmt: str) -> int:
    """dask task: one frame block ``(1, 1, y, x[, 3])`` to an image file; returns 1 (one file)."""
    with open(path, "wb") as f:
        f.write(_encode(block[0, 0], fmt))
    return 1


def _write_rgba(image: np.ndarray, alpha: np.ndarray, path: str) -> int:
    """dask task: a frame ``(1, 1, y, x, 3)`` and its matte ``(1, 1, y, x)`` to one RGBA png; returns 1."""
    with open(path, "wb") as f:
        f.write(_encode(np.concatenate([image[0, 0], alpha[0, 0, ..., None]], axis=-1), "png"))
    return 1


def _frame_item(reader: Reader, t_index: int, t_orig: int, c_index: int, serial: str, k: np.ndarray,
                w2c: np.ndarray, h: int, w: int, fmt: str, has_mask: bool) -> dict:
    """One entry of ``frames``: the keys ``reader`` reads (docs/nerf-export.md)."""
    fl_x, fl_y, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    name = f"{t_index:05d}_{c_index:02d}"
    item: dict = {}
    if reader.identity_keys:
        item.update(timestep_index=t_index, timestep_index_original=t_orig, timestep_id=f"frame_{t_orig:05d}",
                    camera_index=c_index, camera_id=serial)
    item.update({
        "cx": cx, "cy": h - cy if reader.cy_from_bottom else cy, "fl_x": fl_x, "fl_y": fl_y, "h": h, "w": w,
        "camera_angle_x": 2 * math.atan(w / (2 * fl_x)), "camera_angle_y": 2 * math.atan(h / (2 * fl_y)),
        "transform_matrix": opengl_c2w(w2c).tolist(),
        "file_path": f"images/{name}.{fmt}",
    })
    if has_mask and reader.mask_key:
        item[reader.mask_key] = f"fg_masks/{name}.png"
    return item


def _split(db: dict) -> dict[str, dict]:
    """VHAP's ``split_json``: timesteps split 70/30 into train/test; camera 8 (else the last) is the
    validation view of the train timesteps; one camera: no validation set."""
    shared = {k: v for k, v in db.items() if k not in ("frames", "timestep_indices", "camera_indices")}
    steps, cams = sorted(db["timestep_indices"]), db["camera_indices"]
    n_train = int(np.ceil(len(steps) * TRAIN_RATIO))
    if len(cams) > 1:
        val = [VAL_CAMERA_INDEX] if VAL_CAMERA_INDEX in cams else [cams[-1]]
        train_cams = [c for c in cams if c not in val]
    else:
        val, train_cams = [], cams
    out = {
        "train": {**shared, "timestep_indices": steps[:n_train], "camera_indices": train_cams, "frames": []},
        "val": {**shared, "timestep_indices": steps[:n_train], "camera_indices": val, "frames": []},
        "test": {**shared, "timestep_indices": steps[n_train:], "camera_indices": cams, "frames": []},
    }
    train_steps = set(steps[:n_train])
    for f in db["frames"]:
        if f["_t"] in train_steps:
            out["val" if f["_c"] in val else "train"]["frames"].append(f)
        else:
            out["test"]["frames"].append(f)
    return out


def _split_files(db: dict, split: str, notes: list[str]) -> dict[str, dict]:
    """The json files besides ``transforms.json`` for ``split`` (readers.Split); ``filenames`` adds
    its lists to ``db`` itself."""
    if split == "none":
        return {}
    parts = _split(db)
    held_out = parts["val"]["frames"] + parts["test"]["frames"]
    if split == "vhap":
        return parts
    if split == "train-test":
        return {"train": parts["train"], "test": {**parts["test"], "timestep_indices": db["timestep_indices"],
                                                  "frames": held_out}}
    db["train_filenames"] = [f["file_path"] for f in parts["train"]["frames"]]
    if held_out:
        db["val_filenames"] = db["test_filenames"] = [f["file_path"] for f in held_out]
    else:
        del db["train_filenames"]
        notes.append("one camera and one frame: no held-out view, so the reader's own split applies")
    return {}


def _write_ply(path: Path, points: np.ndarray, colors: np.ndarray, normals: np.ndarray) -> None:
    """A binary PLY with the vertex properties 3DGS readers expect (x y z nx ny nz red green blue)."""
    n = len(points)
    rec = np.empty(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4"),
                             ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    rec["x"], rec["y"], rec["z"] = points.T
    if len(normals) == n:
        rec["nx"], rec["ny"], rec["nz"] = normals.T
    else:
        rec["nx"] = rec["ny"] = rec["nz"] = 0
    rgb = np.rint(colors * 255).astype(np.uint8) if len(colors) == n else np.full((n, 3), 128, np.uint8)
    rec["red"], rec["green"], rec["blue"] = rgb.T
    props = "".join(f"property {t} {name}\n" for name, t in
                    [("x", "float"), ("y", "float"), ("z", "float"), ("nx", "float"), ("ny", "float"),
                     ("nz", "float"), ("red", "uchar"), ("green", "uchar"), ("blue", "uchar")])
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {n}\n{props}end_header\n"
    path.write_bytes(header.encode("ascii") + rec.tobytes())


def _write_flame(out: Path, tracking, frames: list[int], flame_frame: bool) -> list[str]:
    """Per chosen timestep ``flame_param/{i:05d}.npz`` with the keys, shapes and dtype (float32) of VHAP's
    ``write_flame_param``, and VHAP's ``canonical_flame_param.npz``; returns the relative paths by
    timestep index. In the FLAME frame the head pose is in the cameras, so ``rotation`` and
    ``translation`` are zero; else they are the tracking's values. ``static_offset`` (1, 5023, 3) is
    zero: the benchmark's tracking has no per-vertex offsets."""
    (out / "flame_param").mkdir()

    def f32(a) -> np.ndarray:
        return np.asarray(a, dtype=np.float32)

    shape, static_offset = f32(tracking.shape[0]), np.zeros((1, FLAME_VERTICES, 3), np.float32)
    paths = []
    for i, t in enumerate(frames):
        rel = f"flame_param/{i:05d}.npz"
        pose = ({"translation": np.zeros((1, 3), np.float32), "rotation": np.zeros((1, 3), np.float32)}
                if flame_frame else
                {"translation": f32(tracking.translation[[t]]), "rotation": f32(tracking.rotation[[t]])})
        np.savez(out / rel, **pose, neck_pose=f32(tracking.neck[[t]]), jaw_pose=f32(tracking.jaw[[t]]),
                 eyes_pose=f32(tracking.eyes[[t]]), shape=shape, expr=f32(tracking.expression[[t]]),
                 static_offset=static_offset)
        paths.append(rel)
    np.savez(out / "canonical_flame_param.npz", translation=np.zeros((1, 3), np.float32),
             rotation=np.zeros((1, 3), np.float32), neck_pose=np.zeros((1, 3), np.float32),
             jaw_pose=np.array([[0.3, 0.0, 0.0]], np.float32), eyes_pose=np.zeros((1, 6), np.float32),
             shape=shape, expr=np.zeros((1, tracking.expression.shape[1]), np.float32), static_offset=static_offset)
    return paths


def scene_centre(c2w: np.ndarray) -> np.ndarray | None:
    """The point nearest (least squares) to the optical axes of OpenGL camera-to-world poses ``(n, 4, 4)``,
    in metres; ``None`` when the axes are (nearly) parallel, e.g. one camera."""
    origins, forward = c2w[:, :3, 3], -c2w[:, :3, 2]
    forward = forward / np.linalg.norm(forward, axis=1, keepdims=True)
    proj = np.eye(3) - forward[:, :, None] * forward[:, None, :]
    a, b = proj.sum(0), (proj @ origins[:, :, None]).sum(0)[:, 0]
    if np.linalg.cond(a) > 1e6:
        return None
    return np.linalg.solve(a, b)


def _reader_notes(reader: Reader, db: dict, n_frames: int, has_tracking: bool, notes: list[str]) -> None:
    """What the reader will do with this export that the user may not expect (printed by the CLI)."""
    # a reader whose split changes without FLAME takes another, timeless code path (GaussianAvatars' Blender reader)
    reads_time = reader.reads_time and (has_tracking or reader.split == reader.split_without_flame)
    if n_frames > 1 and not reads_time:
        notes.append(f"{reader.name} reads no time here: the {n_frames} frames of each camera are trained as one "
                     "static scene; export one frame (--frames T:T+1) for a static reconstruction")
    if reader.name == "gaussian-avatars" and has_tracking:
        # scene/dataset_readers.py readDynamicNerfInfo (commit 04e4f75) gives no point cloud (ply_path=None):
        # only a Gaussian model bound to the FLAME mesh starts without one
        notes.append("GaussianAvatars reads this FLAME-tracked folder with its dynamic reader, which has no point "
                     "cloud: train with --bind_to_mesh (without it, its Scene fails opening ply_path=None)")
    centres = np.array([f["transform_matrix"] for f in db["frames"]])[:, :3, 3]
    if np.ptp(centres, axis=0).max() < 1e-6:
        notes.append("every frame has the same camera position: GaussianAvatars' camera extent and nerfstudio's "
                     "pose normalisation become ~0 or ~1e8; keep the FLAME frame (the default, not --world-frame) "
                     "or export several cameras")


def export_nerf(
    cube: xr.DataTree | str | Path,
    out: str | Path,
    sequence: str,
    *,
    reader: str = DEFAULT_READER,
    downscale: int = 1,
    background: str | tuple[int, int, int] = "white",
    every_nth: int | None = None,
    fps: float | None = None,
    start: int = 0,
    stop: int | None = None,
    cameras: list[str] | None = None,
    crop_to_alpha: int | None = None,
    flame_frame: bool | None = None,
    image_format: str | None = None,
    color_correct: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> NerfExport:
    """Write a NeRF / 3DGS training folder (module docstring) of one sequence of the cube for ``reader``
    (a key of :data:`~nersemble_cube.training.readers.READERS`).

    ``sequence`` is ``"nvs/388/GLASSES"``; ``cameras`` restricts the serials (default all with
    video); frames are chosen with ``every_nth`` or ``fps`` within ``start:stop`` (source frame
    indices, see :func:`nersemble_cube.accessor.frame_indices`). ``crop_to_alpha`` (a margin in
    pixels) crops each camera to its foreground over the chosen frames, all cameras to one size
    (``ds.nersemble.crop_to_alpha``; ``cx``, ``cy`` shift, the corners are written per frame as
    ``crop_x0``, ``crop_y0`` in source pixels). Images are composited on ``background`` (a colour name
    or RGB 0-255; instant-ngp: RGBA with the matte as alpha instead), area-downscaled by ``downscale``
    with the intrinsics to match, and written as ``image_format`` (default the reader's first: png,
    lossless; jpg quality 95 where the reader opens it); masks are png. ``color_correct`` (full dataset)
    applies each camera's colour correction first (``ds.nersemble.color_correct()``, uint8).
    ``flame_frame`` (default: whether the sequence has FLAME tracking v2) expresses each frame's
    cameras in the FLAME model's frame of that timestep (:func:`flame_frame_w2c`), so a FLAME mesh
    with zero global rotation and translation, as GaussianAvatars builds it from ``flame_param``,
    lines up exactly; ``False`` keeps the benchmark's world frame (poses equal the cube's).
    One dask task per image, ``workers`` threads (default: the cores this process may use) or on a dask.distributed cluster
    (``scheduler`` as for :func:`~nersemble_cube.convert`; its workers must reach the cube and write to
    this machine's ``out``); ``on_start`` gets the number of files, ``progress`` is called as each is written. ``out`` must not exist or be empty; the
    folder is written as ``{out}.partial`` and renamed to ``out`` once complete.
    """
    if scheduler is not None:
        check_scheduler(scheduler)
    target, image_format, out = _checked_arguments(reader, image_format, downscale, out)
    tree = as_tree(cube)
    group = sequence_group(sequence)
    try:
        node = tree[group]
    except KeyError:
        raise SelectionError(f"{group}: no such sequence in the cube") from None
    ds = _prepared(node.to_dataset(inherit=False), group, target, cameras=cameras, every_nth=every_nth, fps=fps,
                   start=start, stop=stop, color_correct=color_correct, crop_to_alpha=crop_to_alpha,
                   background=background, downscale=downscale)
    has_tracking = tracking_node(2) in node.children
    if flame_frame is None:
        flame_frame = has_tracking
    elif flame_frame and not has_tracking:
        raise SelectionError(f"{group}: no FLAME tracking, so there is no FLAME frame; export in the world frame")
    benchmark, participant = group.split("/")[:2]
    all_serials = tree[calibration_path(benchmark, int(participant))].dataset.camera.values.tolist()
    frames = ds.time.values.astype(int).tolist()
    has_mask, rgba = "alpha" in ds, target.rgba and "alpha" in ds

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    tracking = flame_tracking(node, 2) if has_tracking else None
    flame_paths = _write_flame(tmp, tracking, frames, flame_frame) if has_tracking and target.flame_params else None
    db, writes = _frame_writes(ds, tmp, target, image_format, all_serials, tracking if flame_frame else None,
                               flame_paths)
    report = NerfExport(out, frames, ds.camera.values.tolist())
    if target.ply_key is not None and POINTCLOUDS in node.children and not flame_frame:
        steps = node[POINTCLOUDS].dataset.timestep.values.tolist()
        first = min(steps, key=lambda s: (abs(s - frames[0]), s))
        _write_ply(tmp / "points3d.ply", *load_pointcloud(node, first))
        if target.ply_key:
            db[target.ply_key] = "points3d.ply"
        report.notes.append(f"points3d.ply: the point cloud of timestep {first}")

    if on_start:
        on_start(len(writes))
    n_workers = workers or usable_cores()
    # a few frames per worker at a time: dask would otherwise read frames far ahead of the writes
    # (the matte feeds both the composite and the mask), and memory would grow with the sequence
    step = FRAMES_IN_FLIGHT_PER_WORKER * n_workers * (2 if has_mask else 1)
    with computing(scheduler, n_workers, progress, "write-") as compute:
        report.files = sum(int(sum(compute(*writes[i:i + step]))) for i in range(0, len(writes), step))
    background_note = "transparent (alpha)" if rgba else "none (no mattes: frames as they are)" if not has_mask \
        else background if isinstance(background, str) else list(background)
    _complete_db(db, target, frames, source={
        "cube_sequence": group, "source_frames": frames, "fps": ds.attrs.get("fps"),
        "source_fps": ds.attrs.get("source_fps"), "downscale": downscale, "crop_to_alpha": crop_to_alpha,
        "reader": reader, "background": background_note, "frame": "flame" if flame_frame else "world",
        "camera_convention": "OpenGL camera_to_world (x right, y up, z back); = inv(world_2_cam) @ diag(1, -1, -1, 1)",
        "cy": "from the bottom row (VHAP: h - cy)" if target.cy_from_bottom else "from the top row"})
    _reader_notes(target, db, len(frames), has_tracking, report.notes)
    parts = _split_files(db, target.split if has_tracking else target.split_without_flame, report.notes)
    for part in (db, *parts.values()):
        part["frames"] = [{k: v for k, v in f.items() if k not in ("_t", "_c")} for f in part["frames"]]
    for name, part in parts.items():
        (tmp / f"transforms_{name}.json").write_text(json.dumps(part, indent=2))
    (tmp / "transforms.json").write_text(json.dumps(db, indent=2))
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return report


def _checked_arguments(reader: str, image_format: str | None, downscale: int, out: str | Path
                       ) -> tuple[Reader, str, Path]:
    """The reader's description, the image format (default: the reader's first) and the output folder, once
    each is checked (UsageError / StoreError naming the fix)."""
    if reader not in READERS:
        raise UsageError(f"reader {reader!r}: choose one of {', '.join(READERS)}")
    target = READERS[reader]
    image_format = image_format or target.formats[0]
    if image_format not in target.formats:
        why = f": {target.format_reason}" if target.format_reason else ""
        raise UsageError(f"--format {image_format} cannot be read by {reader}{why}; use {' or '.join(target.formats)}")
    if downscale < 1:
        raise UsageError(f"downscale must be 1 or more, got {downscale}")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f"{out}: exists and is not an empty folder; choose a new output folder")
    return target, image_format, out


def _prepared(ds: xr.Dataset, group: str, target: Reader, *, cameras: list[str] | None, every_nth: int | None,
              fps: float | None, start: int, stop: int | None, color_correct: bool, crop_to_alpha: int | None,
              background: str | tuple[int, int, int], downscale: int) -> xr.Dataset:
    """The sequence's Dataset as the export writes it, lazily: the cameras and frames chosen, colour-corrected,
    cropped, composited (unless the reader takes RGBA) and downscaled, in the order the docstring of
    :func:`export_nerf` gives."""
    if "images" not in ds:
        raise SelectionError(f"{group}: this sequence has no video (a hold-out sequence); nothing to export")
    if cameras:
        unknown = sorted(set(cameras) - set(ds.camera.values.tolist()))
        if unknown:
            raise SelectionError(f"{group}: no video of cameras {unknown}; it has {ds.camera.values.tolist()}")
        ds = ds.sel(camera=sorted(cameras))
    ds = ds.nersemble.select_time(every_nth=every_nth, fps=fps, start=start, stop=stop)
    if color_correct:
        if "color_correction" not in ds:
            raise SelectionError(f"{group}: no colour correction in the cube (only full-dataset sequences have one)")
        ds = ds.nersemble.color_correct()
    if crop_to_alpha is not None:
        if "alpha" not in ds:
            raise SelectionError(f"{group}: no alpha mattes in the cube, so there is no foreground to crop to")
        ds = ds.nersemble.crop_to_alpha(crop_to_alpha)
    if "alpha" in ds and not target.rgba:
        ds = ds.nersemble.composite(background)
    return ds.nersemble.downscale(downscale) if downscale > 1 else ds


def _frame_writes(ds: xr.Dataset, tmp: Path, target: Reader, image_format: str, all_serials: list[str],
                  tracking, flame_paths: list[str] | None) -> tuple[dict, list]:
    """The transforms database with one entry per (camera, frame) of ``ds``, and the delayed writes of their
    images (and masks) under ``tmp``. ``tracking`` (FLAME frame exports) poses each frame's camera in the FLAME
    model's frame of its timestep."""
    import dask

    rgba = target.rgba and "alpha" in ds
    write_masks = "alpha" in ds and target.mask_key is not None
    if write_masks:
        (tmp / "fg_masks").mkdir()
    image_blocks = ds.images.data.to_delayed()
    mask_blocks = ds.alpha.data.to_delayed() if "alpha" in ds else None
    k_all, w2c_all = ds.intrinsics.values, ds.world_2_cam.values
    h, w = ds.sizes["y"], ds.sizes["x"]
    db: dict = {"frames": []}
    writes = []
    for c, serial in enumerate(ds.camera.values.tolist()):
        c_index = all_serials.index(serial)
        for i, t in enumerate(ds.time.values.astype(int).tolist()):
            w2c = w2c_all[c]
            if tracking is not None:
                w2c = flame_frame_w2c(w2c, tracking.rotation[t], tracking.translation[t], float(tracking.scale[0, 0]))
            item = _frame_item(target, i, t, c_index, serial, k_all[c], w2c, h, w, image_format, write_masks)
            if flame_paths:
                item["flame_param_path"] = flame_paths[i]
            if "crop_x0" in ds.coords:
                item.update(crop_x0=int(ds.crop_x0.values[c]), crop_y0=int(ds.crop_y0.values[c]))
            db["frames"].append({**item, "_t": i, "_c": c_index})
            path = str(tmp / item["file_path"])
            if rgba:
                writes.append(dask.delayed(_write_rgba, pure=True)(image_blocks[c, i, 0, 0, 0], mask_blocks[c, i, 0, 0],
                                                                     path, dask_key_name=f"write-image-{c}-{i}"))
            else:
                writes.append(dask.delayed(_write_image, pure=True)(image_blocks[c, i, 0, 0, 0], path, image_format,
                                                                      dask_key_name=f"write-image-{c}-{i}"))
            if write_masks:
                writes.append(dask.delayed(_write_image, pure=True)(mask_blocks[c, i, 0, 0],
                                                                      str(tmp / item[target.mask_key]), "png",
                                                                      dask_key_name=f"write-mask-{c}-{i}"))
    return db, writes


def _complete_db(db: dict, target: Reader, frames: list[int], source: dict) -> None:
    """The database's top-level keys: intrinsics every frame shares (nerfstudio applies them to all), the
    reader's own keys, instant-ngp's box, the timestep and camera indices, and ``source`` (provenance)."""
    for key in INTRINSIC_KEYS:
        if len({f[key] for f in db["frames"]}) == 1:
            db[key] = db["frames"][0][key]
    db.update(target.top_level)
    if source["reader"] == "instant-ngp":
        centre = scene_centre(np.array([f["transform_matrix"] for f in db["frames"]]))
        centre = np.zeros(3) if centre is None else centre
        db["aabb"] = [(centre - INSTANT_NGP_BOX / 2).tolist(), (centre + INSTANT_NGP_BOX / 2).tolist()]
    db["timestep_indices"] = list(range(len(frames)))
    db["camera_indices"] = sorted({f["_c"] for f in db["frames"]})
    db["source"] = source
