"""Conversion of a benchmark download folder into a cube: plan (probe everything), then write.

Nothing is written until every selected file has been probed and found consistent, so a bad
input costs nothing. The store is written node by node (calibration, sequence frames, point
clouds, each FLAME tracking version, SVFR images); each node is marked ``complete`` only after all
its arrays are written. A node that fails half-way on bad data is removed again; a killed run
leaves ``complete = False``, which the next run redoes and :func:`nersemble_cube.open` warns about.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr

from . import layout, schema, store
from .codecs import CODECS, StorageSpec, encoded_size
from .converters.calibration import Calibration, read_calibration
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

    store: Path
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


def _check_free_space(target: Path, checked: ConversionPlan, storage: StorageSpec, overwrite: bool,
                      scales: tuple[int, ...]) -> None:
    anchor = target
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

def _to_zarr(target: Path, group: str, ds, storage: StorageSpec | None = None, compute: bool = True) -> None:
    ds.to_zarr(str(target), group=group, mode="w", compute=compute, zarr_format=3, consolidated=False,
               encoding=schema.encoding(ds, storage))


def _open_for_writing(target: Path, array_path: str) -> zarr.Array:
    # write_empty_chunks: store all-fill chunks too (an all-black matte is a written frame, not a missing
    # one), and skip zarr's all-equal scan of every chunk, which costs more than compressing it.
    # (open_array ignores config= for an existing array, hence with_config.)
    return zarr.open_array(str(target), path=array_path, mode="r+").with_config({"write_empty_chunks": True})


def _write_calibration(target: Path, part: ParticipantPlan, root: Path) -> None:
    src = part.source
    ds = schema.calibration_dataset(src.benchmark, src.participant_id, part.calibration,
                                    _relative(src.calibration, root))
    _to_zarr(target, part.group, ds)
    store.mark_complete(target, part.group)


def _fill_video(target: Path, array_path: str, camera: int, info: VideoInfo, first_channel: bool,
                frames_per_write: int, progress: Progress) -> None:
    """Decode one video and write it a whole shard at a time (the decoder runs ahead in its own process)."""
    arr = _open_for_writing(target, array_path)
    t = 0
    for batch in iter_frames(info, batch=frames_per_write):
        arr[camera, t:t + len(batch)] = batch[..., 0] if first_channel else batch
        t += len(batch)
        progress(len(batch))


def _write_sequence(target: Path, seq: SequencePlan, root: Path, storage: StorageSpec,
                    workers: int, progress: Progress) -> None:
    src = seq.source
    if not seq.images:
        _to_zarr(target, seq.group, schema.sequence_without_video(src.benchmark, src.participant_id, src.sequence,
                                                                  seq.n_frames))
        store.mark_complete(target, seq.group)
        return
    ref = seq.images[0]
    sources = {"images": {s: _relative(i.path, root) for s, i in zip(src.serials, seq.images)}}
    if seq.alpha:
        sources["alpha"] = {s: _relative(i.path, root) for s, i in zip(src.serials, seq.alpha)}
    ds = schema.sequence_template(
        src.benchmark, src.participant_id, src.sequence, seq.calibration, ref.n_frames, ref.height, ref.width,
        ref.fps, bool(seq.alpha), storage, sources,
    )
    ds.attrs["storage"] = storage.to_attrs()
    _to_zarr(target, seq.group, ds, storage, compute=False)
    jobs = [(f"{seq.group}/images", c, info, False) for c, info in enumerate(seq.images)]
    jobs += [(f"{seq.group}/alpha", c, info, True) for c, info in enumerate(seq.alpha)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        per_write = storage.shard_frames(ref.n_frames)
        futures = [pool.submit(_fill_video, target, *job, per_write, progress) for job in jobs]
        for f in futures:
            f.result()
    store.mark_complete(target, seq.group)


def _point_arrays(target: Path, group: str, info: PcdInfo) -> dict[str, zarr.Array]:
    names = ["positions"] + ["normals"] * info.has_normals + ["colors"] * info.has_colors
    return {name: _open_for_writing(target, f"{group}/{name}") for name in names}


def _write_clouds(target: Path, group: str, infos: list[PcdInfo], start: int, progress: Progress) -> None:
    """Read the clouds one at a time and write them one after the other from point index ``start``."""
    arrays = _point_arrays(target, group, infos[0])
    offset = start
    for info in infos:
        cloud = read_pcd(info.path)
        if len(cloud) != info.n_points:
            raise SourceError(f"{info.path}: {len(cloud)} points but the header said {info.n_points}")
        values = {"positions": cloud.positions, "normals": cloud.normals, "colors": cloud.colors}
        for name, arr in arrays.items():
            arr[offset:offset + len(cloud)] = values[name]
        offset += len(cloud)
        progress(1)


def _write_pointclouds(target: Path, seq: SequencePlan, root: Path, storage: StorageSpec, progress: Progress) -> None:
    group = f"{seq.group}/{schema.POINTCLOUDS}"
    infos = list(seq.pointclouds.values())
    ds = schema.pointcloud_template(list(seq.pointclouds), [i.n_points for i in infos], infos[0].has_normals,
                                    infos[0].has_colors, [_relative(i.path, root) for i in infos])
    _to_zarr(target, group, ds, storage, compute=False)
    _write_clouds(target, group, infos, 0, progress)
    store.mark_complete(target, group)


def _appendable_timesteps(target: Path, seq: SequencePlan) -> list[int] | None:
    """The timesteps to add to a complete point-cloud node, or None if it must be rewritten
    (incomplete, missing, or storing other fields than the files now have)."""
    group = f"{seq.group}/{schema.POINTCLOUDS}"
    if not store.is_complete(target, group):
        return None
    node = zarr.open_group(str(target), path=group, mode="r", use_consolidated=False)
    first = next(iter(seq.pointclouds.values()))
    if ("normals" in node) != first.has_normals or ("colors" in node) != first.has_colors:
        return None
    stored = set(node["timestep"][:].tolist())
    return [t for t in seq.pointclouds if t not in stored]


def _append_pointclouds(target: Path, seq: SequencePlan, new: list[int], root: Path, progress: Progress) -> None:
    """Add the timesteps ``new`` to a complete point-cloud node without touching the chunks already
    written: the new points start at the next chunk boundary, then the index arrays grow."""
    group = f"{seq.group}/{schema.POINTCLOUDS}"
    node = zarr.open_group(str(target), path=group, mode="r+", use_consolidated=False)
    node.attrs["complete"] = False
    counts, offsets = node["count"][:], node["offset"][:]
    end = int((offsets + counts).max()) if len(counts) else 0
    chunk = node["positions"].chunks[0]
    start = -(-end // chunk) * chunk
    new_counts = np.array([seq.pointclouds[t].n_points for t in new], np.int64)
    new_offsets = start + np.concatenate([[0], np.cumsum(new_counts)[:-1]]).astype(np.int64)
    total = int(start + new_counts.sum())
    for name in ("positions", "normals", "colors"):
        if name in node:
            node[name].resize((total, 3))
    _write_clouds(target, group, [seq.pointclouds[t] for t in new], start, progress)
    n_old = len(counts)
    for name, values in (("count", new_counts), ("offset", new_offsets), ("timestep", np.array(new, np.int32))):
        node[name].resize((n_old + len(new),))
        node[name][n_old:] = values
    node.attrs["sources"] = list(node.attrs.get("sources", [])) + [_relative(seq.pointclouds[t].path, root)
                                                                   for t in new]
    node.attrs["complete"] = True


def _write_scaled(target: Path, group: str, factor: int, storage: StorageSpec, workers: int) -> None:
    """Write the level ``factor`` of a complete node (a sequence's frames, or a calibration) from the store
    itself: frames are area-averaged one by one (dask), then gathered into whole shards."""
    import dask
    import xarray as xr

    from .accessor import scale_intrinsics

    src = xr.open_zarr(str(target), group=group, consolidated=False, chunks={}, zarr_format=3)
    if "images" in src:
        ds = src.nersemble.downscale(factor)
        ds = ds.chunk({"time": storage.shard_frames(ds.sizes["time"])})
    else:
        ds = src.assign(intrinsics=scale_intrinsics(src.intrinsics, factor))
    ds.attrs.update(scale_factor=factor, complete=False)
    path = f"{schema.scale_path(factor)}/{group}"
    with dask.config.set(scheduler="threads", num_workers=workers):
        ds.to_zarr(str(target), group=path, mode="w", zarr_format=3, consolidated=False,
                   encoding=schema.encoding(ds, storage))
    store.mark_complete(target, path)


def _write_tracking(target: Path, seq: SequencePlan, version: int, root: Path) -> str | None:
    """Write one tracking version; returns a note if its frames could not be aligned with the images."""
    tracking = seq.tracking[version]
    aligned = not seq.images or np.array_equal(tracking.frames, np.arange(seq.images[0].n_frames))
    time_dim = "time" if aligned else "tracking_time"
    group = f"{seq.group}/{schema.tracking_node(version)}"
    _to_zarr(target, group, schema.tracking_dataset(tracking, version, time_dim,
                                                    _relative(seq.source.tracking[version], root)))
    store.mark_complete(target, group)
    if not aligned:
        return (f"{group}: the tracking's frames are not 0..{seq.images[0].n_frames - 1}, so its time dimension is "
                "named tracking_time (the images' time index cannot be shared)")
    return None


def _write_svfr(target: Path, images: list[layout.SvfrImageSource], root: Path, storage: StorageSpec,
                progress: Progress) -> None:
    ds = schema.svfr_template(images, *SVFR_SIZE)
    ds.attrs["sources"] = [_relative(i.path, root) for i in images]
    _to_zarr(target, schema.SVFR, ds, storage, compute=False)
    arr = _open_for_writing(target, f"{schema.SVFR}/images")
    for i, image in enumerate(images):
        arr[i] = read_png(image.path, SVFR_SIZE)
        progress(1)
    store.mark_complete(target, schema.SVFR)


def _svfr_is_current(target: Path, images: list[layout.SvfrImageSource]) -> bool:
    if not store.is_complete(target, schema.SVFR):
        return False
    stored = zarr.open_array(str(target), path=f"{schema.SVFR}/image", mode="r")[:].tolist()
    return stored == [f"{i.participant_id:03d}/{i.key}" for i in images]


class _Writer:
    """Writes the nodes of a plan, each once, recording what it wrote and removing what failed half-way."""

    def __init__(self, target: Path, root: Path, overwrite: bool, report: ConversionReport):
        self.target, self.root, self.overwrite, self.report = target, root, overwrite, report

    def needed(self, group: str) -> bool:
        if self.overwrite or not store.is_complete(self.target, group):
            return True
        self.report.skipped.append(group)
        return False

    def write(self, group: str, items: int, fn: Callable[[], str | None]) -> None:
        try:
            note = fn()
        except SourceError as e:
            store.remove_group(self.target, group)
            raise SourceError(f"{e} (the half-written {group} was removed from {self.target})") from None
        self.report.written.append(group)
        self.report.items += items
        if note:
            self.report.notes.append(note)


def convert(
    source: str | Path,
    target: str | Path,
    *,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
    storage: StorageSpec | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    on_plan: Callable[[ConversionPlan], None] | None = None,
    check_space: bool = True,
    scales: tuple[int, ...] = (1,),
) -> ConversionReport:
    """Convert a download folder (all three benchmarks) into the cube at ``target``.

    ``source`` is the folder given to ``nersemble-benchmark-download``; ``benchmarks``,
    ``participants`` and ``sequences`` restrict what is converted. Nodes already complete in
    ``target`` are skipped unless ``overwrite``; point clouds of timesteps downloaded since the last
    run are appended to a complete point-cloud node without rewriting it. ``workers`` videos decode
    in parallel (default: the number of CPUs). ``on_plan`` sees the checked plan before anything is
    written (the CLI sizes its progress bar with it); ``progress`` is called with each number of
    items written.

    ``scales`` other than 1 also store reduced-resolution copies of the calibration and frames
    (area-averaged by each integer factor) under ``scales/{factor}/``, opened with
    ``nersemble_cube.open(store, scale=factor)``.

    With ``check_space`` the store's size is estimated first (:func:`estimate_bytes`) and a disk
    without room for it is refused, naming the codec presets that would fit.

    Raises :class:`SourceError` for bad input and :class:`StoreError` when ``target`` exists and is
    not a cube, lies inside ``source`` or would not fit on its disk, in all cases before anything
    is written. The source folder is only read.
    """
    root = Path(source).expanduser()
    target = Path(target).expanduser()
    storage = storage or StorageSpec()
    progress = progress or (lambda n: None)
    workers = workers or os.cpu_count() or 1
    if target.resolve().is_relative_to(root.resolve()):
        raise StoreError(f"{target}: inside the benchmark folder {root}, which is never modified; choose a path outside it")
    store.check_target(target)
    checked = plan(root, benchmarks, participants, sequences)
    if check_space:
        _check_free_space(target, checked, storage, overwrite, scales)
    if on_plan is not None:
        on_plan(checked)
    store.prepare_target(target)
    report = ConversionReport(target)
    w = _Writer(target, root, overwrite, report)
    try:
        for part in checked.participants:
            src = part.source
            store.set_attrs(target, schema.participant_path(src.benchmark, src.participant_id),
                            {"benchmark": src.benchmark, "participant_id": src.participant_id})
            if part.calibration is not None and w.needed(part.group):
                w.write(part.group, 0, lambda part=part: _write_calibration(target, part, root))
            for seq in part.sequences:
                _convert_sequence(w, seq, storage, workers, progress)
            _convert_scales(w, part, scales, storage, workers)
        if any(f != 1 for f in scales):
            levels = sorted(set(zarr.open_group(str(target), mode="r", use_consolidated=False).attrs.get(
                "multiscales", [1])) | set(scales))
            store.set_attrs(target, "", {"multiscales": levels})
        if checked.svfr:
            if not overwrite and _svfr_is_current(target, checked.svfr):
                report.skipped.append(schema.SVFR)
                progress(len(checked.svfr))
            else:
                w.write(schema.SVFR, len(checked.svfr),
                        lambda: _write_svfr(target, checked.svfr, root, storage, progress))
    finally:
        store.consolidate(target)
    return report


def _convert_scales(w: _Writer, part: ParticipantPlan, scales: tuple[int, ...], storage: StorageSpec,
                    workers: int) -> None:
    """The reduced-resolution levels of a participant's calibration and video sequences."""
    groups = ([part.group] if part.calibration is not None else []) + [s.group for s in part.sequences if s.images]
    for factor in (f for f in scales if f != 1):
        for group in groups:
            scaled = f"{schema.scale_path(factor)}/{group}"
            if group in w.report.written or w.needed(scaled):
                w.write(scaled, 0, lambda g=group, f=factor: _write_scaled(w.target, g, f, storage, workers))


def _convert_sequence(w: _Writer, seq: SequencePlan, storage: StorageSpec, workers: int, progress: Progress) -> None:
    target, root = w.target, w.root
    frames = seq.frame_items
    # rewriting the sequence node deletes its children, so they are rewritten after it
    rewrite = w.needed(seq.group)
    if rewrite:
        w.write(seq.group, frames, lambda: _write_sequence(target, seq, root, storage, workers, progress))
    else:
        progress(frames)
    if seq.pointclouds:
        group = f"{seq.group}/{schema.POINTCLOUDS}"
        new = None if rewrite or w.overwrite else _appendable_timesteps(target, seq)
        if new is None:
            w.write(group, len(seq.pointclouds), lambda: _write_pointclouds(target, seq, root, storage, progress))
        elif new:
            progress(len(seq.pointclouds) - len(new))
            w.write(group, len(new), lambda: _append_pointclouds(target, seq, new, root, progress))
        else:
            w.report.skipped.append(group)
            progress(len(seq.pointclouds))
    for version in seq.tracking:
        group = f"{seq.group}/{schema.tracking_node(version)}"
        if rewrite or w.needed(group):
            w.write(group, 1, lambda v=version: _write_tracking(target, seq, v, root))
        progress(1)
