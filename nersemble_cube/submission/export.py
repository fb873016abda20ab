"""Prediction cubes -> the exact submission zips of the benchmarks.

Videos (nvs, mono_flame_avatar) are encoded as the toolkit's ``*SubmissionDataWriter.add_video``
does (mediapy's ffmpeg call: libx264, yuv420p, ``-crf 14``, 73 or 24.3 fps), one mp4 per camera at
``{p_id:03d}/{seq}/cam_{serial}.mp4``. Frames stream chunk by chunk from (possibly dask-backed,
larger than memory) predictions into ffmpeg, several videos encode in parallel, and each finished
mp4 is stored (not deflated) into a ZIP64 archive written beside the target and renamed onto it
only when complete, so an existing file at the target is kept until then.

SVFR meshes are written with trimesh as ``mesh_{posed,neutral}.ply`` plus ``landmarks_*.npy``
(7x3, NoW order), required whenever a mesh is not in FLAME topology (5023 vertices).

Pixel values: uint8 are taken as they are; floating point predictions must be in [0, 1] and are
converted with ``rint(clip(x, 0, 1) * 255)``; NaN, infinities and values outside [0, 1] (beyond a 1e-3
slack, e.g. 0-255 floats) are refused before anything is encoded.
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..cluster import Progress, Runner, Task, runner
from ..cube.location import locate
from ..cube.lock import pid_alive
from ..cube.store import is_consolidated
from ..errors import PredictionError
from ..source.converters.video import ffmpeg_exe
from .rules import (CODEC, CRF, FLAME_VERTICES, LANDMARKS_SHAPE, PIX_FMT, SVFR_TASKS, check_benchmark,
                    expected_videos, fps, frame_size, svfr_entries, svfr_image_keys, video_path)


@dataclass(frozen=True)
class VideoJob:
    """One mp4 of a submission: ``frames`` is ``(time, y, x, channel)``, numpy or dask backed."""

    participant_id: int
    sequence: str
    serial: str
    frames: xr.DataArray
    fps: float

    @property
    def arcname(self) -> str:
        return video_path(self.participant_id, self.sequence, self.serial)


@dataclass
class ExportReport:
    """What :func:`export_submission` wrote: the zip, its entries, and the expected ones left out (``--partial``)."""

    zip_path: Path
    entries: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


# ---- checks (all before anything is written) --------------------------------------------------------------------

def _node_key(node: xr.DataTree) -> tuple[int, str] | None:
    parts = node.path.strip("/").split("/")
    if len(parts) != 2 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1]


def _unwritten_frames(store: Path, node_path: str, n_cameras: int, n_frames: int) -> dict[int, list[int]]:
    """camera index -> frames whose chunk was never written, for an on-disk template (one frame per chunk)."""
    root = store / node_path.strip("/") / "images" / "c"
    missing = {}
    for c in range(n_cameras):
        written = {int(p.name) for p in (root / str(c)).iterdir()} if (root / str(c)).is_dir() else set()
        absent = [t for t in range(n_frames) if t not in written]
        if absent:
            missing[c] = absent
    return missing


def video_jobs(predictions: xr.DataTree, benchmark: str, partial: bool = False,
               store: Path | None = None) -> tuple[list[VideoJob], list[str]]:
    """Check a prediction tree against what ``benchmark`` accepts and list its videos.

    Returns the jobs and the expected videos that are missing (allowed only with ``partial``).
    Raises :class:`PredictionError` for unexpected participants, sequences or cameras, wrong
    dims, shape or dtype, a frame count other than the template's, or frames never written (with
    ``partial``, a camera of an on-disk template with no frame written is a missing video instead).
    """
    expected = expected_videos(benchmark)
    height, width = frame_size(benchmark)
    declared = predictions.attrs.get("benchmark")
    if declared is not None and declared != benchmark:
        raise PredictionError(f"these predictions are a {declared} template, not {benchmark}")
    jobs: list[VideoJob] = []
    for node in predictions.subtree:
        if "images" not in node.dataset.data_vars:
            continue
        key = _node_key(node)
        if key is None or key not in expected:
            valid = ", ".join(f"{p:03d}/{s}" for p, s in expected)
            raise PredictionError(f"{node.path}: not a {benchmark} submission sequence (expected {valid})")
        images = node.dataset["images"]
        if images.dims != ("camera", "time", "y", "x", "channel"):
            raise PredictionError(f"{node.path}/images: dims {images.dims}, expected (camera, time, y, x, channel)")
        if images.shape[2:] != (height, width, 3):
            raise PredictionError(
                f"{node.path}/images: frames of {images.shape[3]}x{images.shape[2]}x{images.shape[4]}, "
                f"expected {width}x{height}x3 (width x height x RGB)")
        if images.dtype != np.uint8 and images.dtype.kind != "f":
            raise PredictionError(f"{node.path}/images: dtype {images.dtype}, expected uint8 or float in [0, 1]")
        n_frames = node.attrs.get("n_frames")
        if n_frames is not None and images.sizes["time"] != n_frames:
            raise PredictionError(f"{node.path}/images: {images.sizes['time']} frames, the sequence has {n_frames}")
        if images.sizes["time"] == 0:
            raise PredictionError(f"{node.path}/images: no frames")
        serials = [str(s) for s in node.dataset["camera"].values]
        wrong = [s for s in serials if s not in expected[key]]
        if wrong:
            raise PredictionError(f"{node.path}: cameras {wrong} are not submitted; render {expected[key]}")
        skipped: set[int] = set()
        if store is not None:
            absent = _unwritten_frames(store, node.path, len(serials), images.sizes["time"])
            if partial:  # a camera never rendered at all is a missing video; one rendered in part is an error
                skipped = {c for c, frames in absent.items() if len(frames) == images.sizes["time"]}
                absent = {c: frames for c, frames in absent.items() if c not in skipped}
            if absent:
                c, frames = next(iter(absent.items()))
                more = f" (and {len(absent) - 1} more cameras)" if len(absent) > 1 else ""
                raise PredictionError(
                    f"{store}: {node.path.strip('/')} camera {serials[c]} has {len(frames)} frames never written "
                    f"(first: {frames[:5]}){more}; fill them with write_frames"
                    + ("" if partial else ", or leave whole cameras out with partial=True / --partial"))
        rate = float(node.attrs.get("fps", fps(benchmark)))
        jobs += [VideoJob(key[0], key[1], s, images.isel(camera=i), rate) for i, s in enumerate(serials)
                 if i not in skipped]
    present = {j.arcname for j in jobs}
    missing = [video_path(p, s, c) for (p, s), cams in expected.items() for c in cams if video_path(p, s, c) not in present]
    if not jobs:
        raise PredictionError(f"nothing to export: {store or 'the predictions'} holds no {benchmark} video with frames "
                              "written (fill the template with write_frames first)")
    if missing and not partial:
        raise PredictionError(f"{len(missing)} of {len(missing) + len(jobs)} videos are missing "
                              f"(first: {missing[0]}); render them, or pass partial=True / --partial")
    return jobs, missing


EXPORT_TMP = "nersemble-cube-export-"
"""Prefix of the temporary folder of mp4s beside the zip (``{prefix}{pid}.*``)."""
FLOAT_SLACK = 1e-3
"""Float predictions may leave [0, 1] by this much (rounding in a renderer) and are clipped; further is refused."""


def check_values(jobs: list[VideoJob]) -> None:
    """Refuse float predictions that are not images in [0, 1], before anything is encoded: NaN, infinities,
    values below 0 or above 1 (beyond :data:`FLOAT_SLACK`; values in 0-255 mean a forgotten ``/ 255``).
    Reads the float predictions once (all videos in one dask pass); uint8 predictions need no check."""
    import dask

    floats = [j for j in jobs if j.frames.dtype.kind == "f"]
    stats = dask.compute(*[(np.isnan(j.frames.data).any(), np.isinf(j.frames.data).any(), j.frames.data.min(),
                            j.frames.data.max()) for j in floats], scheduler="threads")
    for job, (nan, inf, low, high) in zip(floats, stats):
        if nan:
            raise PredictionError(f"{job.arcname}: NaN in the predictions")
        if inf:
            raise PredictionError(f"{job.arcname}: infinite values in the predictions")
        if low < -FLOAT_SLACK or high > 1 + FLOAT_SLACK:
            hint = "; divide 0-255 values by 255" if high > 1.5 else ""
            raise PredictionError(f"{job.arcname}: float predictions must be in [0, 1], these range from {low:g} "
                                  f"to {high:g}{hint}")


def to_uint8(frames: np.ndarray, where: str) -> np.ndarray:
    """uint8 as is; float in [0, 1] -> ``rint(clip(x, 0, 1) * 255)`` uint8 (values :func:`check_values`
    accepted); NaN raises :class:`PredictionError` (a second line of defence)."""
    if frames.dtype == np.uint8:
        return frames
    if np.isnan(frames).any():
        raise PredictionError(f"{where}: NaN in the predictions")
    return np.rint(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


# ---- encoding ---------------------------------------------------------------------------------------------------

def encode_command(path: Path, width: int, height: int, fps: float) -> list[str]:
    """The ffmpeg call of mediapy's ``write_video(path, frames, crf=14, fps=fps)`` (what the toolkit uses)."""
    return [ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-vcodec", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{width}x{height}", "-r", f"{fps}", "-i", "-", "-an", "-vcodec", CODEC, "-pix_fmt", PIX_FMT,
            "-vb", "0", "-crf", f"{CRF}", "-y", str(path)]


def encode_video(job: VideoJob, path: Path, frames_per_read: int = 8, progress: Progress | None = None) -> None:
    """Stream ``job.frames`` into ffmpeg, ``frames_per_read`` frames at a time (memory stays bounded)."""
    n, height, width = job.frames.shape[:3]
    proc = subprocess.Popen(encode_command(path, width, height, job.fps), stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for t in range(0, n, frames_per_read):
            block = job.frames.isel(time=slice(t, t + frames_per_read))
            data = block.data.compute(scheduler="synchronous") if hasattr(block.data, "dask") else block.values
            proc.stdin.write(np.ascontiguousarray(to_uint8(np.asarray(data), job.arcname)).tobytes())
            if progress:
                progress(len(data))
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed encoding {job.arcname}: {err.strip()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _remove_stale(folder: Path, prefix: str) -> None:
    """Delete the files and folders ``{prefix}{pid}.*`` in ``folder`` whose process ``pid`` is gone: what an
    export killed before it could clean up left behind (its partial zip, its temporary mp4s)."""
    for path in folder.glob(f"{glob.escape(prefix)}*"):
        pid = path.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


class _ZipAside:
    """A ZIP64 archive written beside ``target`` (``.{name}.{pid}.*.partial``) and renamed onto it only by
    :meth:`commit`; partial zips of killed exports to the same target are removed first."""

    def __init__(self, target: Path):
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(target.parent, f".{target.name}.")
        _remove_stale(target.parent, EXPORT_TMP)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".partial", dir=target.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.lock = threading.Lock()

    def add_file(self, path: Path, arcname: str) -> None:
        with self.lock:
            self.zip.write(path, arcname)

    def add_bytes(self, data: bytes, arcname: str) -> None:
        with self.lock:
            self.zip.writestr(arcname, data)

    def commit(self) -> None:
        self.zip.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp's 0600 would keep the zip from a shared upload folder
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        self.zip.close()
        self.tmp.unlink(missing_ok=True)


def _encode_task(job: VideoJob, path: Path, progress: Progress) -> None:
    """Task: encode one video to ``path``."""
    encode_video(job, path, progress=progress)


def _export_videos(jobs: list[VideoJob], out: _ZipAside, run: Runner, progress: Progress | None) -> list[str]:
    """One task per video (threads, or dask.distributed workers sharing this machine's disk); each mp4 is
    added to the zip in job order as soon as it and those before it are done (a deterministic archive)."""
    with tempfile.TemporaryDirectory(prefix=f"{EXPORT_TMP}{os.getpid()}.", dir=out.target.parent) as tmp:
        mp4s = [Path(tmp) / f"{i}.mp4" for i in range(len(jobs))]
        tasks = [Task(str(i), job.frames.sizes["time"], _encode_task, (job, mp4))
                 for i, (job, mp4) in enumerate(zip(jobs, mp4s))]
        done, next_job = set(), 0
        for task, _, error in run.run(tasks, progress or (lambda n: None)):
            if error is not None:
                raise error
            done.add(int(task.key))
            while next_job in done:
                out.add_file(mp4s[next_job], jobs[next_job].arcname)
                mp4s[next_job].unlink()
                next_job += 1
    return [job.arcname for job in jobs]


# ---- SVFR ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SvfrMesh:
    """One predicted mesh: ``vertices`` (n, 3) float, ``faces`` (m, 3) int, optional NoW ``landmarks`` (7, 3)."""

    vertices: np.ndarray
    faces: np.ndarray
    landmarks: np.ndarray | None = None


def svfr_meshes_from_dataset(ds: xr.Dataset) -> dict[str, dict[str, SvfrMesh]]:
    """Read fixed-topology SVFR predictions: per task ``{task}_vertices (image, vertex, xyz)``,
    ``{task}_faces (face, corner)`` (or ``(image, face, corner)``) and optional
    ``{task}_landmarks (image, landmark, xyz)``; ``image`` labels are submission keys as in the cube's
    ``svfr`` node (``017/EMO-1-shout+laugh_156_221501007``)."""
    out: dict[str, dict[str, SvfrMesh]] = {}
    for task in SVFR_TASKS:
        if f"{task}_vertices" not in ds:
            continue
        faces_all = ds[f"{task}_faces"]
        for i, key in enumerate(ds["image"].values.tolist()):
            faces = faces_all.isel(image=i) if "image" in faces_all.dims else faces_all
            landmarks = ds[f"{task}_landmarks"].isel(image=i).values if f"{task}_landmarks" in ds else None
            out.setdefault(str(key), {})[task] = SvfrMesh(ds[f"{task}_vertices"].isel(image=i).values, faces.values,
                                                          landmarks)
    return out


def _check_svfr(meshes: Mapping[str, Mapping[str, SvfrMesh]], partial: bool) -> list[str]:
    import trimesh

    valid = svfr_image_keys()
    unknown = [k for k in meshes if k not in valid]
    if unknown:
        raise PredictionError(f"{unknown[0]}: not an SVFR image key ({len(unknown)} unknown; keys look like "
                              f"017/EMO-1-shout+laugh_156_221501007)")
    tasks = {t for per_image in meshes.values() for t in per_image}
    if not tasks or tasks - set(SVFR_TASKS):
        raise PredictionError(f"SVFR predictions need meshes for the tasks {SVFR_TASKS}, got {sorted(tasks)}")
    missing = [svfr_entries(k, t)[0] for t in SVFR_TASKS if t in tasks for k in valid if t not in meshes.get(k, {})]
    if missing and not partial:
        raise PredictionError(f"{len(missing)} meshes are missing (first: {missing[0]}); "
                              "pass partial=True / --partial to submit anyway")
    for key, per_image in meshes.items():
        for task, mesh in per_image.items():
            where, landmarks_entry = svfr_entries(key, task)
            v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
            if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
                raise PredictionError(f"{where}: vertices must be a non-empty (n, 3) array, got {v.shape}")
            if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0 or f.dtype.kind not in "iu":
                raise PredictionError(f"{where}: faces must be a non-empty (m, 3) integer array, got {f.shape} {f.dtype}")
            if not np.isfinite(v).all():
                raise PredictionError(f"{where}: NaN or infinite vertex coordinates")
            if f.min() < 0 or f.max() >= len(v):
                raise PredictionError(f"{where}: face indices outside 0..{len(v) - 1}")
            if mesh.landmarks is None:
                if len(v) != FLAME_VERTICES:
                    raise PredictionError(f"{where}: {len(v)} vertices is not FLAME topology ({FLAME_VERTICES}); "
                                          "give the 7 NoW landmarks (7, 3)")
                loaded = len(trimesh.Trimesh(v, f).vertices)  # what a reader with trimesh's defaults sees
                if loaded != FLAME_VERTICES:
                    raise PredictionError(
                        f"{where}: loads as {loaded} vertices (trimesh merges duplicate and drops unreferenced "
                        f"vertices, as the toolkit's reader does), so it is not FLAME topology; give the NoW landmarks")
            elif np.asarray(mesh.landmarks).shape != LANDMARKS_SHAPE or not np.isfinite(mesh.landmarks).all():
                raise PredictionError(f"{landmarks_entry}: must be 7x3 finite NoW landmarks, "
                                      f"got {np.asarray(mesh.landmarks).shape}")
    return missing


def _export_svfr(meshes: Mapping[str, Mapping[str, SvfrMesh]], out: _ZipAside, progress: Progress | None) -> list[str]:
    import trimesh

    entries = []
    for key in sorted(meshes):
        for task in SVFR_TASKS:
            mesh = meshes[key].get(task)
            if mesh is None:
                continue
            mesh_entry, landmarks_entry = svfr_entries(key, task)
            ply = trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), process=False).export(file_type="ply")
            out.add_bytes(ply, mesh_entry)
            entries.append(mesh_entry)
            if mesh.landmarks is not None:
                buf = io.BytesIO()
                np.save(buf, np.asarray(mesh.landmarks))
                out.add_bytes(buf.getvalue(), landmarks_entry)
                entries.append(landmarks_entry)
            if progress:
                progress(1)
    return entries


# ---- entry point --------------------------------------------------------------------------------------------------

def _open_predictions(predictions, benchmark: str):
    """(tree or svfr mapping, on-disk store path or None)."""
    if isinstance(predictions, (str, Path)):
        path = Path(predictions).expanduser()
        if not (path / "zarr.json").is_file():
            raise PredictionError(f"{path}: not a zarr store of predictions (see prediction_template)")
        consolidated = is_consolidated(locate(path))
        if benchmark == "svfr":
            return svfr_meshes_from_dataset(xr.open_zarr(str(path), consolidated=consolidated)), None
        return xr.open_datatree(str(path), engine="zarr", chunks={}, consolidated=consolidated), path
    if benchmark == "svfr" and isinstance(predictions, xr.Dataset):
        return svfr_meshes_from_dataset(predictions), None
    return predictions, None


def export_submission(
    predictions: xr.DataTree | xr.Dataset | Mapping | str | Path,
    zip_path: str | Path,
    benchmark: str,
    *,
    partial: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write the submission zip of ``benchmark`` from ``predictions``.

    nvs / mono_flame_avatar: ``predictions`` is a prediction tree (:func:`prediction_template`,
    filled) or the path of an on-disk template store. svfr: a mapping ``{"017/EMO-1-..._156_221501007":
    {"posed": SvfrMesh(...), "neutral": ...}}``, a Dataset (:func:`svfr_meshes_from_dataset`) or its
    zarr store path. Every check runs before the zip is written; a complete submission is required
    unless ``partial``. ``workers`` videos encode in parallel (default: the cores this process may use), one task per video
    in threads or on a dask.distributed cluster (``scheduler`` as for :func:`~nersemble_cube.convert`;
    its workers must share this machine's disk, where the mp4s are written before zipping). ``on_start`` is
    called with the number of frames (meshes) to write, ``progress`` as they are written. The zip
    replaces ``zip_path`` only once complete.
    """
    check_benchmark(benchmark)
    zip_path = Path(zip_path).expanduser()
    if zip_path.is_dir():
        raise PredictionError(f"{zip_path}: is a folder; give the path of the zip to write")
    preds, store = _open_predictions(predictions, benchmark)
    report = ExportReport(zip_path)
    if benchmark == "svfr":
        report.missing = _check_svfr(preds, partial)
        total = sum(len(v) for v in preds.values())
    else:
        jobs, report.missing = video_jobs(preds, benchmark, partial, store)
        check_values(jobs)
        total = sum(j.frames.sizes["time"] for j in jobs)
    if on_start:
        on_start(total)
    out = _ZipAside(zip_path)
    try:
        if benchmark == "svfr":
            report.entries = _export_svfr(preds, out, progress)
        else:
            with runner(scheduler, workers) as run:
                report.entries = _export_videos(jobs, out, run, progress)
        out.commit()
    except BaseException:
        out.abort()
        raise
    return report
