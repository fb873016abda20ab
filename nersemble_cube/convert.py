"""Conversion of a benchmark download folder into a cube: plan (probe everything), then write.

Nothing is written until every selected file has been probed and found consistent, so a bad
input costs nothing. The store is written node by node (calibration, sequence frames, point
clouds, each FLAME tracking version, SVFR images); each node is marked ``complete`` only after all
its arrays are written. A node that fails half-way on bad data is removed again; a killed run
leaves ``complete = False``, which the next run redoes and :func:`nersemble_cube.open` warns about.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr

from . import layout, schema, store
from .cluster import Runner, Task, runner
from .codecs import CODECS, StorageSpec, encoded_size
from .converters.calibration import Calibration, read_calibration
from .converters.files import SourcePath, as_path, is_remote
from .converters.flame import FlameTracking, read_flame_tracking
from .converters.image import png_size, read_png
from .converters.pcd import PcdInfo, probe_pcd, read_pcd
from .converters.video import VideoInfo, iter_frames, probe
from .errors import SourceError, StoreError

Progress = Callable[[int], None]
"""Called with the number of items just written: video frames (images and alpha mattes count
separately), point clouds, tracking files and SVFR images."""

SVFR_SIZE = (512, 512)


@dataclass(frozen=True)
class SequencePlan:
    """A sequence ready to write: probed videos of every camera with their calibration, point-cloud
    headers by timestep, and the loaded FLAME tracking by version."""

    source: layout.SequenceSource
    calibration: Calibration | None
    images: list[VideoInfo]
    alpha: list[VideoInfo]
    pointclouds: dict[int, PcdInfo]
    tracking: dict[int, FlameTracking]

    @property
    def group(self) -> str:
        return schema.sequence_path(self.source.benchmark, self.source.participant_id, self.source.sequence)

    @property
    def n_frames(self) -> int | None:
        """Frames of the videos, else of the newest tracking, else unknown (None)."""
        if self.images:
            return self.images[0].n_frames
        return self.tracking[max(self.tracking)].n_frames if self.tracking else None

    @property
    def frame_items(self) -> int:
        """Frames to decode: images and alpha mattes of every camera."""
        return self.images[0].n_frames * (len(self.images) + len(self.alpha)) if self.images else 0

    @property
    def total_items(self) -> int:
        return self.frame_items + len(self.pointclouds) + len(self.tracking)


@dataclass(frozen=True)
class ParticipantPlan:
    source: layout.ParticipantSource
    calibration: Calibration | None
    sequences: list[SequencePlan]

    @property
    def group(self) -> str:
        return schema.calibration_path(self.source.benchmark, self.source.participant_id)


@dataclass(frozen=True)
class ConversionPlan:
    """Everything :func:`convert` will write, checked."""

    root: Path
    participants: list[ParticipantPlan]
    svfr: list[layout.SvfrImageSource]

    @property
    def total_items(self) -> int:
        return sum(s.total_items for p in self.participants for s in p.sequences) + len(self.svfr)


@dataclass
class ConversionReport:
    """What :func:`convert` did: node paths written and skipped (already complete), items written,
    and notes worth telling the user."""

    store: store.Location
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    items: int = 0
    notes: list[str] = field(default_factory=list)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# ---- plan -----------------------------------------------------------------------------------------------------------

def _plan_videos(seq: layout.SequenceSource, calib: Calibration | None,
                 calib_path: Path | None) -> tuple[list[VideoInfo], list[VideoInfo]]:
    if not seq.images:
        return [], []
    if calib is None:
        raise SourceError(f"{seq.folder.parent.parent}: calibration/camera_params.json is missing; "
                          "download the calibration asset")
    missing = [s for s in seq.serials if s not in calib.serials]
    if missing:
        raise SourceError(f"{calib_path}: no calibration for cameras {missing} of sequence {seq.folder}")
    images = [probe(p) for p in seq.images.values()]
    alpha = [probe(p) for p in seq.alpha_maps.values()]
    ref = images[0]
    for info in images + alpha:
        if (info.n_frames, info.height, info.width) != (ref.n_frames, ref.height, ref.width):
            raise SourceError(
                f"{seq.folder}: cameras disagree, {info.path.name} has {info.n_frames} frames of "
                f"{info.width}x{info.height} but {ref.path.name} has {ref.n_frames} of {ref.width}x{ref.height}; "
                "download the sequence again"
            )
        if info.n_frames == 0:
            raise SourceError(f"{info.path}: the video has no frames; download it again")
    return images, alpha


def _plan_pointclouds(seq: layout.SequenceSource) -> dict[int, PcdInfo]:
    infos = {t: probe_pcd(p) for t, p in seq.pointclouds.items()}
    kinds = {(i.has_normals, i.has_colors) for i in infos.values()}
    if len(kinds) > 1:
        raise SourceError(f"{seq.folder}/pointclouds: the .pcd files have different fields; download them again")
    return infos


def _plan_sequence(seq: layout.SequenceSource, calib: Calibration | None, calib_path: Path | None) -> SequencePlan:
    images, alpha = _plan_videos(seq, calib, calib_path)
    tracking = {v: read_flame_tracking(p) for v, p in seq.tracking.items()}
    for version, t in tracking.items():
        if images and t.n_frames != images[0].n_frames:
            raise SourceError(
                f"{seq.tracking[version]}: FLAME tracking has {t.n_frames} frames but the videos of "
                f"{seq.folder} have {images[0].n_frames}; download the sequence again"
            )
    return SequencePlan(seq, calib.select(seq.serials) if images else None, images, alpha,
                        _plan_pointclouds(seq), tracking)


def plan(
    source: str | Path,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
) -> ConversionPlan:
    """Discover and check everything :func:`convert` would write; raises :class:`SourceError` on bad input."""
    folder = layout.discover(source, benchmarks, participants, sequences)
    people = []
    for part in folder.participants:
        calib = read_calibration(part.calibration) if part.calibration else None
        seqs = [_plan_sequence(s, calib, part.calibration) for s in part.sequences]
        people.append(ParticipantPlan(part, calib, seqs))
    for image in folder.svfr:
        size = png_size(image.path)
        if size != SVFR_SIZE:
            raise SourceError(f"{image.path}: image is {size[1]}x{size[0]}, expected 512x512; download it again")
    return ConversionPlan(folder.root, people, folder.svfr)


# ---- size estimate ------------------------------------------------------------------------------------------------

def _first_frame(info: VideoInfo) -> np.ndarray:
    frames = iter_frames(info, batch=1)
    try:
        return next(frames)[0]
    finally:
        frames.close()


def estimate_bytes(checked: ConversionPlan, storages: list[StorageSpec], skip: Callable[[str], bool] = lambda g: False,
                   scales: tuple[int, ...] = (1,)) -> dict[StorageSpec, int]:
    """Estimated bytes the frames of ``checked`` take with each of ``storages``.

    Each sequence's first image frame and first alpha frame are decoded and compressed; the sizes
    are scaled by frames and cameras, plus 10 % margin (later frames of a sequence look alike).
    Sequences for which ``skip(group)`` is true (already complete) are left out. Point clouds,
    tracking and SVFR images are counted raw (they are small next to the videos). Each extra level
    of ``scales`` adds ``1 / factor**2`` of the frames.
    """
    levels = 1 + sum(1 / f ** 2 for f in scales if f != 1)
    totals = dict.fromkeys(storages, 0)
    for part in checked.participants:
        for seq in part.sequences:
            if not seq.images or skip(seq.group):
                continue
            image = _first_frame(seq.images[0])
            alpha = _first_frame(seq.alpha[0])[..., 0] if seq.alpha else None
            for spec in storages:
                per_frame = encoded_size(image, spec) * len(seq.images)
                if alpha is not None:
                    per_frame += encoded_size(alpha, spec) * len(seq.alpha)
                totals[spec] += int(1.1 * per_frame * seq.n_frames * levels)
    extra = sum(i.n_points * 27 for p in checked.participants for s in p.sequences for i in s.pointclouds.values())
    extra += len(checked.svfr) * 512 * 512 * 3
    return {spec: total + extra for spec, total in totals.items()}


def _check_free_space(target: store.Location, checked: ConversionPlan, storage: StorageSpec, overwrite: bool,
                      scales: tuple[int, ...]) -> None:
    if not target.is_local:
        return  # object stores have no fixed capacity to check against
    anchor = target.path
    while not anchor.exists():
        anchor = anchor.parent
    free = shutil.disk_usage(anchor).free
    presets = [storage] + [StorageSpec(c) for c in CODECS if c != storage.codec]
    need = estimate_bytes(checked, presets, skip=lambda g: not overwrite and store.is_complete(target, g), scales=scales)
    if need[storage] <= free:
        return
    fits = [f"--codec {s.codec} (~{need[s] / 1e9:.1f} GB)" for s in presets[1:] if need[s] <= free]
    hint = f"; {' or '.join(fits)} would fit" if fits else "; free some space or choose another disk"
    raise StoreError(f"{target}: the cube needs about {need[storage] / 1e9:.1f} GB with --codec {storage.codec} "
                     f"but only {free / 1e9:.1f} GB are free{hint}")


# ---- write ----------------------------------------------------------------------------------------------------------
# The client (this process) writes every node's metadata and small arrays, then runs one Task per video,
# per batch of point clouds, per tracking file and for the SVFR images (cluster.py). Each task writes its
# own shard-aligned region and then its completion flag; a node is marked ``complete`` here once all of
# its tasks succeeded. A resumed run keeps a node's template and redoes only the units not flagged.

CLOUD_BATCH_POINTS = 4 * schema.POINT_CHUNK
"""Points of consecutive clouds read by one task; each batch starts on a chunk boundary."""


def _to_zarr(target: store.Location, group: str, ds, storage: StorageSpec | None = None,
             compute: bool = True) -> None:
    ds.to_zarr(target.zarr_store(), group=group, mode="w", compute=compute, zarr_format=3, consolidated=False,
               encoding=schema.encoding(ds, storage))


def _open_for_writing(target: store.Location, array_path: str) -> zarr.Array:
    # write_empty_chunks: store all-fill chunks too (an all-black matte is a written frame, not a missing
    # one), and skip zarr's all-equal scan of every chunk, which costs more than compressing it.
    # (open_array ignores config= for an existing array, hence with_config.)
    return store.open_array(target, array_path, "r+").with_config({"write_empty_chunks": True})


def _set_flags(target: store.Location, group: str, name: str, index: slice | int) -> None:
    _open_for_writing(target, f"{group}/{name}{schema.FLAG_SUFFIX}")[index] = True


def _fill_video(target: store.Location, group: str, variable: str, camera: int, info: VideoInfo,
                frames_per_write: int, progress: Progress) -> None:
    """Task: decode one video and write it a whole shard at a time (the decoder runs ahead in its own
    process), then flag the camera complete."""
    arr = _open_for_writing(target, f"{group}/{variable}")
    t = 0
    for batch in iter_frames(info, batch=frames_per_write, reuse=True):
        arr[camera, t:t + len(batch)] = batch[..., 0] if variable == "alpha" else batch
        t += len(batch)
        progress(len(batch))
    _set_flags(target, group, variable, camera)


def _fill_clouds(target: store.Location, group: str, infos: list[PcdInfo], offsets: list[int], first: int,
                 progress: Progress) -> None:
    """Task: read consecutive clouds (timestep indices ``first``...) and write them at ``offsets``, then flag them."""
    names = ["positions"] + ["normals"] * infos[0].has_normals + ["colors"] * infos[0].has_colors
    arrays = {name: _open_for_writing(target, f"{group}/{name}") for name in names}
    for info, offset in zip(infos, offsets):
        cloud = read_pcd(info.path)
        if len(cloud) != info.n_points:
            raise SourceError(f"{info.path}: {len(cloud)} points but the header said {info.n_points}")
        values = {"positions": cloud.positions, "normals": cloud.normals, "colors": cloud.colors}
        for name, arr in arrays.items():
            arr[offset:offset + len(cloud)] = values[name]
        progress(1)
    _set_flags(target, group, "cloud", slice(first, first + len(infos)))


def _write_dataset(target: store.Location, group: str, ds, progress: Progress) -> None:
    """Task: write a small node (a FLAME tracking file) whole and mark it complete."""
    _to_zarr(target, group, ds)
    store.mark_complete(target, group)
    progress(1)


def _fill_svfr(target: store.Location, images: list[layout.SvfrImageSource], progress: Progress) -> None:
    """Task: decode and write the SVFR images."""
    arr = _open_for_writing(target, f"{schema.SVFR}/images")
    for i, image in enumerate(images):
        arr[i] = read_png(image.path, SVFR_SIZE)
        progress(1)


def _cloud_layout(counts: list[int], start: int, chunk: int) -> tuple[list[int], list[range]]:
    """Offsets of clouds packed from ``start`` and their batches (index ranges): a batch holds about
    :data:`CLOUD_BATCH_POINTS` points and starts on a multiple of ``chunk``, so no two batches share a chunk."""
    offsets, batches, pos, begin, filled = [], [], start, 0, 0
    for i, n in enumerate(counts):
        if i > begin and filled >= CLOUD_BATCH_POINTS:
            batches.append(range(begin, i))
            begin, filled, pos = i, 0, -(-pos // chunk) * chunk
        offsets.append(pos)
        pos += n
        filled += n
    if counts:
        batches.append(range(begin, len(counts)))
    return offsets, batches


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _resumable_flags(target: store.Location, group: str, template, flags: list[str]) -> dict[str, np.ndarray] | None:
    """The completion flags of an unfinished node whose metadata matches ``template`` (same sources,
    storage and shapes), so only unflagged units need redoing; None if it must be written afresh."""
    try:
        node = store.open_group(target, group)
        attrs = node.attrs.asdict()
        for name in ("sources", "storage"):
            if not _same(attrs.get(name), template.attrs.get(name)):
                return None
        for name, var in template.data_vars.items():
            if name not in node or tuple(node[name].shape) != var.shape:
                return None
        return {name: node[f"{name}{schema.FLAG_SUFFIX}"][:] for name in flags}
    except (FileNotFoundError, KeyError, ValueError, zarr.errors.GroupNotFoundError, json.JSONDecodeError):
        return None


@dataclass
class _NodeJob:
    group: str
    tasks: list[Task]
    items: int
    note: str | None = None


class _Jobs:
    """Collects the nodes to write and their tasks; writes their metadata as it goes."""

    def __init__(self, target: store.Location, root: Path, overwrite: bool, storage: StorageSpec,
                 report: ConversionReport, progress: Progress):
        self.target, self.root, self.overwrite, self.storage = target, root, overwrite, storage
        self.report, self.progress = report, progress
        self.nodes: list[_NodeJob] = []
        self.order: dict[str, int] = {}  # plan order, so the report lists nodes alike however tasks finish

    def needed(self, group: str) -> bool:
        if self.overwrite or not store.is_complete(self.target, group):
            return True
        self.report.skipped.append(group)
        return False

    def add(self, group: str, tasks: list[Task], note: str | None = None) -> None:
        self.order.setdefault(group, len(self.order))
        self.nodes.append(_NodeJob(group, tasks, sum(t.items for t in tasks), note))

    def direct(self, group: str, fn: Callable[[], None]) -> None:
        """Write a small node here and now (calibration, a sequence without video)."""
        self.order.setdefault(group, len(self.order))
        try:
            fn()
        except SourceError as e:
            self._failed(group, e)
        store.mark_complete(self.target, group)
        self.report.written.append(group)

    def _failed(self, group: str, error: BaseException) -> None:
        """Raise ``error``; a node whose source turned out bad is removed first (it cannot be resumed)."""
        if isinstance(error, SourceError):
            store.remove_group(self.target, group)
            raise SourceError(f"{error} (the half-written {group} was removed from {self.target})") from None
        raise error

    def run(self, runner: Runner) -> None:
        """Run every task; mark each node complete once all its tasks are done. On a failed task the rest
        is cancelled; a node with bad source data is removed, the others stay resumable."""
        owner = {id(t): job for job in self.nodes for t in job.tasks}
        left = {job.group: len(job.tasks) for job in self.nodes}
        for job in self.nodes:
            if not job.tasks:
                self._finish(job)
        for task, _, error in runner.run([t for job in self.nodes for t in job.tasks], self.progress):
            job = owner[id(task)]
            if error is not None:
                self._failed(job.group, error)
            left[job.group] -= 1
            if left[job.group] == 0:
                self._finish(job)
        self.report.written.sort(key=lambda g: self.order.get(g, len(self.order)))

    def _finish(self, job: _NodeJob) -> None:
        store.mark_complete(self.target, job.group)
        self.report.written.append(job.group)
        self.report.items += job.items
        if job.note:
            self.report.notes.append(job.note)

    # ---- the nodes --------------------------------------------------------------------------------------------

    def calibration(self, part: ParticipantPlan) -> None:
        src = part.source
        ds = schema.calibration_dataset(src.benchmark, src.participant_id, part.calibration,
                                        _relative(src.calibration, self.root))
        self.direct(part.group, lambda: _to_zarr(self.target, part.group, ds))

    def sequence(self, seq: SequencePlan) -> None:
        """The sequence node and its children (rewriting the node deletes its children, so they follow it)."""
        rewrite = False
        if self.needed(seq.group):
            rewrite = self._frames(seq)
        else:
            self.progress(seq.frame_items)
        if seq.pointclouds:
            self._pointclouds(seq, rewrite)
        for version in seq.tracking:
            group = f"{seq.group}/{schema.tracking_node(version)}"
            if rewrite or self.needed(group):
                self._tracking(seq, version, group)
            else:
                self.progress(1)

    def _frames(self, seq: SequencePlan) -> bool:
        """Queue the videos of ``seq`` not written yet; True if the node was written afresh (children lost)."""
        src, target = seq.source, self.target
        if not seq.images:
            ds = schema.sequence_without_video(src.benchmark, src.participant_id, src.sequence, seq.n_frames)
            self.direct(seq.group, lambda: _to_zarr(target, seq.group, ds))
            return True
        ref = seq.images[0]
        sources = {"images": {s: _relative(i.path, self.root) for s, i in zip(src.serials, seq.images)}}
        if seq.alpha:
            sources["alpha"] = {s: _relative(i.path, self.root) for s, i in zip(src.serials, seq.alpha)}
        ds = schema.sequence_template(
            src.benchmark, src.participant_id, src.sequence, seq.calibration, ref.n_frames, ref.height, ref.width,
            ref.fps, bool(seq.alpha), self.storage, sources,
        )
        ds.attrs["storage"] = self.storage.to_attrs()
        videos = {"images": seq.images, "alpha": seq.alpha}
        names = [v for v in videos if videos[v]]
        flags = None if self.overwrite else _resumable_flags(target, seq.group, ds, names)
        fresh = flags is None
        if fresh:
            _to_zarr(target, seq.group, ds, self.storage, compute=False)
            flags = {name: np.zeros(len(videos[name]), bool) for name in names}
        per_write = self.storage.shard_frames(ref.n_frames)
        tasks = [Task(f"{seq.group}/{name}/{c}", info.n_frames, _fill_video,
                      (target, seq.group, name, c, info, per_write))
                 for name in names for c, info in enumerate(videos[name]) if not flags[name][c]]
        self.progress(seq.frame_items - sum(t.items for t in tasks))
        self.add(seq.group, tasks)
        return fresh

    def _pointclouds(self, seq: SequencePlan, rewrite: bool) -> None:
        group = f"{seq.group}/{schema.POINTCLOUDS}"
        new = None if rewrite or self.overwrite else _appendable_timesteps(self.target, seq)
        if new == []:
            self.report.skipped.append(group)
            self.progress(len(seq.pointclouds))
            return
        if new is None:
            steps, start, chunk = list(seq.pointclouds), 0, None
        else:
            steps = new
            self.progress(len(seq.pointclouds) - len(new))
            node = store.open_group(self.target, group)
            counts, offsets = node["count"][:], node["offset"][:]
            chunk = node["positions"].chunks[0]
            start = -(-int((offsets + counts).max()) // chunk) * chunk if len(counts) else 0
        infos = [seq.pointclouds[t] for t in steps]
        counts = [i.n_points for i in infos]
        total_new = sum(counts)
        if chunk is None:
            chunk = min(schema.POINT_CHUNK, max(total_new, 1))
        offsets, batches = _cloud_layout(counts, start, chunk)
        end = offsets[-1] + counts[-1] if counts else start
        sources = [_relative(i.path, self.root) for i in infos]
        if new is None:
            ds = schema.pointcloud_template(steps, counts, offsets, end, infos[0].has_normals, infos[0].has_colors,
                                            sources)
            flags = None if self.overwrite else _resumable_flags(self.target, group, ds, ["cloud"])
            if flags is None:
                _to_zarr(self.target, group, ds, self.storage, compute=False)
                flags = {"cloud": np.zeros(len(steps), bool)}
            first = 0
        else:
            first = _grow_pointclouds(self.target, group, steps, counts, offsets, end, sources)
            flags = {"cloud": np.zeros(len(steps), bool)}
        tasks = [Task(f"{group}/{b.start}", len(b), _fill_clouds,
                      (self.target, group, infos[b.start:b.stop], offsets[b.start:b.stop], first + b.start))
                 for b in batches if not flags["cloud"][b].all()]
        self.progress(len(steps) - sum(t.items for t in tasks))
        self.add(group, tasks)

    def _tracking(self, seq: SequencePlan, version: int, group: str) -> None:
        tracking = seq.tracking[version]
        aligned = not seq.images or np.array_equal(tracking.frames, np.arange(seq.images[0].n_frames))
        ds = schema.tracking_dataset(tracking, version, "time" if aligned else "tracking_time",
                                     _relative(seq.source.tracking[version], self.root))
        note = None if aligned else (
            f"{group}: the tracking's frames are not 0..{seq.images[0].n_frames - 1}, so its time dimension is "
            "named tracking_time (the images' time index cannot be shared)")
        self.add(group, [Task(group, 1, _write_dataset, (self.target, group, ds))], note)

    def svfr(self, images: list[layout.SvfrImageSource]) -> None:
        if not self.overwrite and _svfr_is_current(self.target, images):
            self.report.skipped.append(schema.SVFR)
            self.progress(len(images))
            return
        ds = schema.svfr_template(images, *SVFR_SIZE)
        ds.attrs["sources"] = [_relative(i.path, self.root) for i in images]
        _to_zarr(self.target, schema.SVFR, ds, self.storage, compute=False)
        self.add(schema.SVFR, [Task(schema.SVFR, len(images), _fill_svfr, (self.target, images))])


def _appendable_timesteps(target: store.Location, seq: SequencePlan) -> list[int] | None:
    """The timesteps to add to a complete point-cloud node, or None if it must be rewritten
    (incomplete, missing, or storing other fields than the files now have)."""
    group = f"{seq.group}/{schema.POINTCLOUDS}"
    if not store.is_complete(target, group):
        return None
    node = store.open_group(target, group)
    first = next(iter(seq.pointclouds.values()))
    if ("normals" in node) != first.has_normals or ("colors" in node) != first.has_colors:
        return None
    stored = set(node["timestep"][:].tolist())
    return [t for t in seq.pointclouds if t not in stored]


def _grow_pointclouds(target: store.Location, group: str, steps: list[int], counts: list[int], offsets: list[int],
                      end: int, sources: list[str]) -> int:
    """Make room for the timesteps ``steps`` in a complete point-cloud node without touching the chunks already
    written (the new points start at the next chunk boundary); returns the index of the first new timestep.
    The node is incomplete until the new clouds are written."""
    node = store.open_group(target, group, "r+")
    node.attrs["complete"] = False
    n_old = node["count"].shape[0]
    for name in ("positions", "normals", "colors"):
        if name in node:
            node[name].resize((end, 3))
    new = {"count": np.array(counts, np.int64), "offset": np.array(offsets, np.int64),
           "timestep": np.array(steps, np.int32), "cloud" + schema.FLAG_SUFFIX: np.zeros(len(steps), bool)}
    for name, values in new.items():
        node[name].resize((n_old + len(steps),))
        node[name][n_old:] = values
    node.attrs["sources"] = list(node.attrs.get("sources", [])) + sources
    return n_old


def _write_scaled(target: store.Location, group: str, factor: int, storage: StorageSpec, runner: Runner) -> None:
    """Write the level ``factor`` of a complete node (a sequence's frames, or a calibration) from the store
    itself: frames are area-averaged one by one (dask), then gathered into whole shards."""
    import dask
    import xarray as xr

    from .accessor import scale_intrinsics

    src = xr.open_zarr(target.zarr_store(read_only=True), group=group, consolidated=False, chunks={}, zarr_format=3)
    if "images" in src:
        ds = src.nersemble.downscale(factor)
        ds = ds.chunk({"time": storage.shard_frames(ds.sizes["time"])})
    else:
        ds = src.assign(intrinsics=scale_intrinsics(src.intrinsics, factor))
    ds.attrs.update(scale_factor=factor, complete=False)
    path = f"{schema.scale_path(factor)}/{group}"
    config = {"scheduler": runner.client} if runner.distributed else {"scheduler": "threads",
                                                                        "num_workers": runner.workers}
    with dask.config.set(config):
        ds.to_zarr(target.zarr_store(), group=path, mode="w", zarr_format=3, consolidated=False,
                   encoding=schema.encoding(ds, storage))


def _svfr_is_current(target: store.Location, images: list[layout.SvfrImageSource]) -> bool:
    if not store.is_complete(target, schema.SVFR):
        return False
    stored = store.open_array(target, f"{schema.SVFR}/image")[:].tolist()
    return stored == [f"{i.participant_id:03d}/{i.key}" for i in images]


def convert(
    source: str | Path | SourcePath,
    target: str | Path | store.Location,
    *,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
    storage: StorageSpec | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    storage_options: dict | None = None,
    progress: Progress | None = None,
    on_plan: Callable[[ConversionPlan], None] | None = None,
    check_space: bool = True,
    scales: tuple[int, ...] = (1,),
) -> ConversionReport:
    """Convert a download folder (all three benchmarks) into the cube at ``target``.

    ``source`` is the folder given to ``nersemble-benchmark-download``, local or an fsspec URL
    (``s3://bucket/benchmark``: videos and images are downloaded one at a time for decoding); ``benchmarks``,
    ``participants`` and ``sequences`` restrict what is converted. ``target`` is a local path or an
    fsspec URL (``s3://bucket/cube.zarr``, ``gs://...``, ``memory://...``) opened with
    ``storage_options`` (else fsspec's usual configuration and the cloud SDK's credentials).

    Work is split into tasks, one per video, per batch of point clouds, per tracking file and one for
    the SVFR images; each writes its own shard-aligned region and then its own completion flag.
    ``scheduler`` says where they run (:func:`nersemble_cube.cluster.runner`): ``"threads"``
    (default, ``workers`` threads, default the CPU count), ``"processes"`` (a local dask.distributed
    cluster of ``workers`` processes) or a dask scheduler address. The store is the same whichever runs it.

    Nodes already complete in ``target`` are skipped unless ``overwrite``; an interrupted node is
    resumed (its finished videos kept) when its metadata matches; point clouds of timesteps
    downloaded since the last run are appended without rewriting a chunk. ``on_plan`` sees the
    checked plan before anything is written (the CLI sizes its progress bar with it); ``progress`` is
    called with each number of items written.

    ``scales`` other than 1 also store reduced-resolution copies of the calibration and frames
    (area-averaged by each integer factor) under ``scales/{factor}/``, opened with
    ``nersemble_cube.open(store, scale=factor)``.

    With ``check_space`` the store's size is estimated first (:func:`estimate_bytes`) and a local disk
    without room for it is refused, naming the codec presets that would fit.

    Raises :class:`SourceError` for bad input and :class:`StoreError` when ``target`` exists and is
    not a cube, lies inside ``source``, would not fit on its disk or another ``convert`` is writing
    it, in all cases before anything is written. The source folder is only read.
    """
    root = as_path(source)
    target = store.locate(target, storage_options)
    storage = storage or StorageSpec()
    progress = progress or (lambda n: None)
    if target.is_local and not is_remote(root) and target.path.resolve().is_relative_to(root.resolve()):
        raise StoreError(f"{target}: inside the benchmark folder {root}, which is never modified; choose a path outside it")
    store.check_target(target)
    checked = plan(root, benchmarks, participants, sequences)
    if check_space:
        _check_free_space(target, checked, storage, overwrite, scales)
    report = ConversionReport(target)
    with store.writer_lock(target), runner(scheduler, workers) as run:
        if on_plan is not None:
            on_plan(checked)
        store.remove_partial_writes(target)
        store.prepare_target(target)
        jobs = _Jobs(target, root, overwrite, storage, report, progress)
        try:
            for part in checked.participants:
                src = part.source
                store.set_attrs(target, schema.participant_path(src.benchmark, src.participant_id),
                                {"benchmark": src.benchmark, "participant_id": src.participant_id})
                if part.calibration is not None and jobs.needed(part.group):
                    jobs.calibration(part)
                for seq in part.sequences:
                    jobs.sequence(seq)
            if checked.svfr:
                jobs.svfr(checked.svfr)
            jobs.run(run)
            for part in checked.participants:
                _convert_scales(jobs, part, scales, storage, run)
            if any(f != 1 for f in scales):
                levels = sorted(set(store.open_group(target, "").attrs.get("multiscales", [1])) | set(scales))
                store.set_attrs(target, "", {"multiscales": levels})
        finally:
            store.consolidate(target)
    return report


def _convert_scales(jobs: _Jobs, part: ParticipantPlan, scales: tuple[int, ...], storage: StorageSpec,
                    run: Runner) -> None:
    """The reduced-resolution levels of a participant's calibration and video sequences."""
    groups = ([part.group] if part.calibration is not None else []) + [s.group for s in part.sequences if s.images]
    for factor in (f for f in scales if f != 1):
        for group in groups:
            scaled = f"{schema.scale_path(factor)}/{group}"
            if group in jobs.report.written or jobs.needed(scaled):
                jobs.direct(scaled, lambda g=group, f=factor: _write_scaled(jobs.target, g, f, storage, run))
