"""One builder per kind of cube node. A builder decides from the plan and the store what a node still
needs, writes the node's metadata (its lazily allocated template, or a small node whole), and returns a
:class:`NodeWork`: the tasks that fill its arrays. It never runs tasks nor reports progress;
:mod:`.run` does both.

Resuming: a node already complete is skipped; an interrupted node whose metadata matches the plan
keeps its template and only its unflagged units (videos, point-cloud batches) become tasks; point
clouds of timesteps downloaded since the last run are appended without rewriting a chunk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from ..cluster import Runner, Task
from ..cube import scales, schema, store
from ..cube.integrity import REWRITE
from ..cube.location import Location
from ..cube.storage import StorageSpec
from ..errors import SourceError, UsageError
from ..source import layout
from ..source.converters.video import gop_length, iter_frames
from .plan import ConversionPlan, ParticipantPlan, SequencePlan
from .tasks import cloud_layout, copy_video, fill_background, fill_clouds, fill_svfr, fill_video, write_small_node


@dataclass(frozen=True)
class Target:
    """Where and how nodes are written: the store, the source folder (node attrs record source files
    relative to it), the storage spec of frame arrays, whether complete nodes are redone, and the threads
    of each video's decoder (None: ffmpeg's default)."""

    store: Location
    root: Path
    storage: StorageSpec
    overwrite: bool
    decoder_threads: int | None = None
    gops: dict[str, int] = field(default_factory=dict)
    """The copy preset's chunk length per sequence group (:func:`copy_gops`)."""

    def needed(self, group: str) -> bool:
        """Whether ``group`` must be written (``overwrite``, or not complete in the store)."""
        return self.overwrite or not store.is_complete(self.store, group)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


@dataclass
class NodeWork:
    """What a node still needs: ``tasks`` to run (none: complete once its metadata is written, or
    ``skipped``: complete already), ``done_items`` units of progress already in the store, whether the
    node was written ``fresh`` (its children are gone with its old version) and a ``note`` for the user."""

    group: str
    tasks: list[Task] = field(default_factory=list)
    done_items: int = 0
    skipped: bool = False
    fresh: bool = False
    note: str | None = None

    @property
    def items(self) -> int:
        return sum(t.items for t in self.tasks)


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _resumable_flags(target: Location, group: str, template: xr.Dataset, flags: list[str]
                     ) -> dict[str, np.ndarray] | None:
    """The completion flags of an unfinished node whose metadata matches ``template`` (same sources,
    storage and shapes), so only unflagged units need redoing; None if it must be written afresh: also when
    its template was not written to the end (no attr ``metadata_complete``) or ``nersemble-cube verify``
    found damage outside its units (attr ``rewrite``)."""
    try:
        node = store.open_group(target, group)
        attrs = node.attrs.asdict()
        if attrs.get(REWRITE) or not attrs.get(schema.METADATA_COMPLETE):
            return None
        for name in ("sources", "storage"):
            if not _same(attrs.get(name), template.attrs.get(name)):
                return None
        for name, var in template.data_vars.items():
            if name not in node or tuple(node[name].shape) != var.shape:
                return None
        if set(node.array_keys()) - set(template.variables):
            return None  # arrays the source does not make (mattes whose import stopped half-way): start afresh
        return {name: node[f"{name}{schema.FLAG_SUFFIX}"][:] for name in flags}
    except (FileNotFoundError, KeyError, ValueError, zarr.errors.GroupNotFoundError, json.JSONDecodeError):
        return None


def calibration(t: Target, part: ParticipantPlan) -> NodeWork:
    """A participant's ``calibration`` node, written whole (every camera of ``camera_params.json``)."""
    if not t.needed(part.group):
        return NodeWork(part.group, skipped=True)
    src = part.source
    color_source = t.relative(src.color_calibration) if part.color is not None else None
    ds = schema.calibration_dataset(src.benchmark, src.participant_id, part.calibration, t.relative(src.calibration),
                                    part.color, color_source, part.size)
    store.write_node(t.store, part.group, ds)
    return NodeWork(part.group)


def background(t: Target, part: ParticipantPlan) -> NodeWork:
    """A full-dataset participant's ``background`` node: every background still, one task."""
    group = part.background_group
    if not t.needed(group):
        return NodeWork(group, skipped=True, done_items=len(part.backgrounds))
    serials = list(part.backgrounds)
    ds = schema.background_template(serials, *part.size, [t.relative(p) for p in part.backgrounds.values()])
    store.write_node(t.store, group, ds, t.storage, compute=False)
    return NodeWork(group, [Task(group, len(serials), fill_background, (t.store, group, list(part.backgrounds.values()),
                                                                        part.size))])


def frames(t: Target, seq: SequencePlan) -> NodeWork:
    """A sequence node: its template, and one task per image or matte video not written yet. Writing
    the node afresh deletes its children (point clouds, tracking), which then follow it."""
    if not t.needed(seq.group):
        return NodeWork(seq.group, skipped=True, done_items=seq.frame_items)
    src = seq.source
    if not seq.images:
        ds = schema.sequence_without_video(src.benchmark, src.participant_id, src.sequence, seq.n_frames)
        store.write_node(t.store, seq.group, ds)
        return NodeWork(seq.group, fresh=True)
    ref = seq.images[0]
    storage = t.storage.with_gop(t.gops[seq.group]) if t.storage.codec == "copy" else \
        t.storage.with_crf(_crf_sample(seq, t.storage)) if t.storage.video and t.storage.crf is None else t.storage
    videos = {"images": seq.images, "alpha": seq.alpha}
    names = [v for v in videos if videos[v]]
    sources = {name: {s: t.relative(i.path) for s, i in zip(src.serials, videos[name])} for name in names}
    n_frames = seq.n_frames
    ds = schema.sequence_template(
        src.benchmark, src.participant_id, src.sequence, seq.calibration, n_frames, ref.height, ref.width,
        seq.fps, bool(seq.alpha), storage, sources, seq.time, seq.color,
    )
    ds.attrs["storage"] = storage.to_attrs()
    ds.attrs.update(seq.selection or {})
    flags = None if t.overwrite else _resumable_flags(t.store, seq.group, ds, names)
    fresh = flags is None
    if fresh:
        store.write_node(t.store, seq.group, ds, storage, compute=False)
        flags = {name: np.zeros(len(videos[name]), bool) for name in names}
    per_write = storage.shard_frames(n_frames)
    tasks = [Task(f"{seq.group}/{name}/{c}", n_frames, copy_video, (t.store, seq.group, c, info))
             if name == "images" and storage.codec == "copy" else
             Task(f"{seq.group}/{name}/{c}", n_frames, fill_video,
                  (t.store, seq.group, name, c, info, per_write, t.decoder_threads, seq.frames))
             for name in names for c, info in enumerate(videos[name]) if not flags[name][c]]
    return NodeWork(seq.group, tasks, seq.frame_items - sum(task.items for task in tasks), fresh=fresh, note=seq.note)


CRF_SAMPLE_FRAMES = 8
"""Frames of a sequence's first video the h264 / hevc CRF is chosen on (one GOP of them)."""


def _crf_sample(seq: SequencePlan, storage: StorageSpec) -> np.ndarray:
    """The first frames of the sequence's first image video (those kept), the sample its CRF is chosen on."""
    n = min(CRF_SAMPLE_FRAMES, storage.frames_per_chunk, len(seq.time))
    frames = iter_frames(seq.images[0], batch=n, frames=seq.frames)
    try:
        return next(frames).copy()
    finally:
        frames.close()


def copy_gops(storage: StorageSpec, checked: ConversionPlan) -> dict[str, int]:
    """For the ``copy`` preset: the group of pictures of each sequence's image videos (its chunk length), read
    from the files before anything is written. Raises UsageError / SourceError (one line, naming what to use
    instead) where the packets cannot be chunks of one length."""
    gops = {}
    for seq in (s for p in checked.participants for s in p.sequences if s.images):
        if seq.selection:
            raise UsageError(f"{seq.group}: --codec copy stores the mp4s' packets, so it keeps every frame; drop "
                             "--every-nth / --fps, or use --codec h264")
        if any(info.n_frames != len(seq.time) for info in seq.images):
            raise SourceError(f"{seq.group}: its cameras have different frame counts, and --codec copy keeps whole "
                              "videos; use --codec h264 (re-encoded, lossy) or zstd")
        lengths = {gop_length(info) for info in seq.images}
        if len(lengths) > 1:
            raise SourceError(f"{seq.group}: the cameras' keyframes fall every {sorted(lengths)} frames, and a "
                              "chunk grid has one length; use --codec h264 (re-encoded, lossy) or zstd")
        gop = lengths.pop()
        if storage.frames_per_chunk not in (0, gop):
            raise UsageError(f"{seq.group}: --frames-per-chunk {storage.frames_per_chunk} with --codec copy, but "
                             f"the videos' keyframes fall every {gop} frames; leave --frames-per-chunk out")
        gops[seq.group] = gop
    return gops


def _appendable_timesteps(target: Location, seq: SequencePlan) -> list[int] | None:
    """The timesteps to add to a complete point-cloud node, or None if it must be rewritten
    (incomplete, missing, or storing other fields than the files now have)."""
    group = seq.pointcloud_group
    if not store.is_complete(target, group):
        return None
    node = store.open_group(target, group)
    first = next(iter(seq.pointclouds.values()))
    if ("normals" in node) != first.has_normals or ("colors" in node) != first.has_colors:
        return None
    stored = set(node["timestep"][:].tolist())
    return [t for t in seq.pointclouds if t not in stored]


def _grow_pointclouds(target: Location, group: str, steps: list[int], counts: list[int], offsets: list[int],
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
        store.open_for_writing(target, f"{group}/{name}")[n_old:] = values
    node.attrs["sources"] = list(node.attrs.get("sources", [])) + sources
    return n_old


def pointclouds(t: Target, seq: SequencePlan, parent_fresh: bool) -> NodeWork:
    """A sequence's ``pointclouds`` node (ragged, see schema): written afresh, resumed, or grown by the
    timesteps it lacks; one task per batch of clouds that starts on a chunk boundary."""
    group = seq.pointcloud_group
    new = None if parent_fresh or t.overwrite else _appendable_timesteps(t.store, seq)
    if new == []:
        return NodeWork(group, skipped=True, done_items=len(seq.pointclouds))
    done = 0
    if new is None:
        steps, start, chunk = list(seq.pointclouds), 0, None
    else:
        steps = new
        done = len(seq.pointclouds) - len(new)
        node = store.open_group(t.store, group)
        counts, offsets = node["count"][:], node["offset"][:]
        chunk = node["positions"].chunks[0]
        start = -(-int((offsets + counts).max()) // chunk) * chunk if len(counts) else 0
    infos = [seq.pointclouds[s] for s in steps]
    counts = [i.n_points for i in infos]
    if chunk is None:
        chunk = min(schema.POINT_CHUNK, max(sum(counts), 1))
    offsets, batches = cloud_layout(counts, start, chunk)
    end = offsets[-1] + counts[-1] if counts else start
    sources = [t.relative(i.path) for i in infos]
    if new is None:
        ds = schema.pointcloud_template(steps, counts, offsets, end, infos[0].has_normals, infos[0].has_colors,
                                        sources)
        flags = None if t.overwrite else _resumable_flags(t.store, group, ds, ["cloud"])
        if flags is None:
            store.write_node(t.store, group, ds, t.storage, compute=False)
            flags = {"cloud": np.zeros(len(steps), bool)}
        first = 0
    else:
        first = _grow_pointclouds(t.store, group, steps, counts, offsets, end, sources)
        flags = {"cloud": np.zeros(len(steps), bool)}
    tasks = [Task(f"{group}/{b.start}", len(b), fill_clouds,
                  (t.store, group, infos[b.start:b.stop], offsets[b.start:b.stop], first + b.start))
             for b in batches if not flags["cloud"][b].all()]
    return NodeWork(group, tasks, done + len(steps) - sum(task.items for task in tasks))


def tracking(t: Target, seq: SequencePlan, version: int, parent_fresh: bool) -> NodeWork:
    """A FLAME tracking node (one task writes it whole). Its time dimension is ``time`` when its frames are
    the videos' 0..n-1, else ``tracking_time`` (with a note)."""
    group = seq.tracking_group(version)
    if not (parent_fresh or t.needed(group)):
        return NodeWork(group, skipped=True, done_items=1)
    flame = seq.tracking[version]
    aligned = not seq.images or np.array_equal(flame.frames, np.arange(seq.images[0].n_frames))
    ds = schema.tracking_dataset(flame, version, "time" if aligned else "tracking_time",
                                 t.relative(seq.source.tracking[version]))
    note = None if aligned else (
        f"{group}: the tracking's frames are not 0..{seq.images[0].n_frames - 1}, so its time dimension is "
        "named tracking_time (the images' time index cannot be shared)")
    return NodeWork(group, [Task(group, 1, write_small_node, (t.store, group, ds))], note=note)


def _svfr_is_current(target: Location, images: list[layout.SvfrImageSource]) -> bool:
    if not store.is_complete(target, schema.SVFR):
        return False
    stored = store.open_array(target, f"{schema.SVFR}/image")[:].tolist()
    return stored == [f"{i.participant_id:03d}/{i.key}" for i in images]


def svfr(t: Target, images: list[layout.SvfrImageSource]) -> NodeWork:
    """The ``svfr`` node: every selected SVFR image (rewritten whole unless it holds exactly these)."""
    if not t.overwrite and _svfr_is_current(t.store, images):
        return NodeWork(schema.SVFR, skipped=True, done_items=len(images))
    ds = schema.svfr_template(images, *layout.SVFR_SIZE)
    ds.attrs["sources"] = [t.relative(i.path) for i in images]
    store.write_node(t.store, schema.SVFR, ds, t.storage, compute=False)
    return NodeWork(schema.SVFR, [Task(schema.SVFR, len(images), fill_svfr, (t.store, images))])


def scaled(t: Target, group: str, factor: int, runner: Runner, source_written: bool) -> NodeWork:
    """The level ``factor`` of a complete node (a sequence's frames, or a calibration), computed from the
    store itself and written here (frames area-averaged one by one with dask, then gathered into whole
    shards); redone when its full-resolution node was just written."""
    import dask

    path = f"{schema.scale_path(factor)}/{group}"
    if not (source_written or t.needed(path)):
        return NodeWork(path, skipped=True)
    src = xr.open_zarr(t.store.zarr_store(read_only=True), group=group, consolidated=False, chunks={}, zarr_format=3)
    storage = StorageSpec() if t.storage.codec == "copy" else t.storage  # copy has no packets of scaled frames
    if "images" in src:
        ds = scales.downscale(src, factor)
        ds = ds.chunk({"time": storage.shard_frames(ds.sizes["time"])})
    else:
        ds = src.assign(intrinsics=scales.scale_intrinsics(src.intrinsics, factor))
    ds.attrs.update(scale_factor=factor, complete=False)
    config = {"scheduler": runner.client} if runner.distributed else {"scheduler": "threads",
                                                                        "num_workers": runner.workers}
    if "storage" in ds.attrs:
        ds.attrs["storage"] = storage.to_attrs()
    with dask.config.set(config):
        store.write_node(t.store, path, ds, storage)
    return NodeWork(path)
