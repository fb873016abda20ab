"""Conversion of a benchmark download folder into a cube: plan (probe everything), then write.

Nothing is written until every selected file has been probed and found consistent, so a bad
input costs nothing. Each sequence node is marked ``complete`` only after all its frames are
written; a sequence that fails half-way is removed again, and a killed run leaves
``complete = False``, which the next run redoes and :func:`nersemble_cube.open` warns about.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import zarr

from . import layout, schema, store
from .codecs import StorageSpec
from .converters.calibration import Calibration, read_calibration
from .converters.video import VideoInfo, iter_frames, probe
from .errors import SourceError, StoreError

Progress = Callable[[int], None]
"""Called with the number of frames just written (images and alpha frames count separately)."""


@dataclass(frozen=True)
class SequencePlan:
    """A sequence ready to write: probed videos of every camera and their calibration."""

    source: layout.SequenceSource
    calibration: Calibration
    images: list[VideoInfo]
    alpha: list[VideoInfo]

    @property
    def group(self) -> str:
        return schema.sequence_path(self.source.benchmark, self.source.participant_id, self.source.sequence)

    @property
    def n_frames(self) -> int:
        return self.images[0].n_frames

    @property
    def total_frames(self) -> int:
        """Frames to decode, images and alpha mattes of every camera."""
        return self.n_frames * (len(self.images) + len(self.alpha))


@dataclass(frozen=True)
class ParticipantPlan:
    source: layout.ParticipantSource
    calibration: Calibration
    sequences: list[SequencePlan]

    @property
    def group(self) -> str:
        return schema.calibration_path(self.source.benchmark, self.source.participant_id)


@dataclass
class ConversionReport:
    """What :func:`convert` did: group paths written and skipped (already complete), frames decoded."""

    store: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    frames: int = 0


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _plan_sequence(seq: layout.SequenceSource, calib: Calibration, calib_path: Path) -> SequencePlan:
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
    return SequencePlan(seq, calib.select(seq.serials), images, alpha)


def plan(
    source: str | Path,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
) -> list[ParticipantPlan]:
    """Discover and probe everything :func:`convert` would write; raises :class:`SourceError` on bad input."""
    plans = []
    for part in layout.discover(source, benchmarks, participants, sequences):
        if part.calibration is None:
            raise SourceError(
                f"{part.folder}: calibration/camera_params.json is missing; download the calibration asset"
            )
        calib = read_calibration(part.calibration)
        seqs = [_plan_sequence(s, calib, part.calibration) for s in part.sequences]
        plans.append(ParticipantPlan(part, calib, seqs))
    return plans


def _write_calibration(target: Path, part: ParticipantPlan, root: Path) -> None:
    src = part.source
    ds = schema.calibration_dataset(src.benchmark, src.participant_id, part.calibration,
                                    _relative(src.calibration, root))
    ds.attrs["complete"] = False
    ds.to_zarr(str(target), group=part.group, mode="w", zarr_format=3, consolidated=False,
               encoding=schema.encoding(ds))
    store.mark_complete(target, part.group)


def _fill(target: Path, array_path: str, camera: int, info: VideoInfo, first_channel: bool,
          frames_per_chunk: int, progress: Progress) -> None:
    # write_empty_chunks: store all-fill chunks too (an all-black matte is a written frame, not a missing one),
    # and skip zarr's all-equal scan of every chunk, which costs more than compressing it
    # (open_array ignores config= for an existing array, hence with_config)
    arr = zarr.open_array(str(target), path=array_path, mode="r+").with_config({"write_empty_chunks": True})
    t = 0
    for batch in iter_frames(info, batch=frames_per_chunk):
        arr[camera, t:t + len(batch)] = batch[..., 0] if first_channel else batch
        t += len(batch)
        progress(len(batch))


def _write_sequence(target: Path, seq: SequencePlan, root: Path, storage: StorageSpec,
                    workers: int, progress: Progress) -> None:
    src = seq.source
    ref = seq.images[0]
    sources = {"images": {s: _relative(i.path, root) for s, i in zip(src.serials, seq.images)}}
    if seq.alpha:
        sources["alpha"] = {s: _relative(i.path, root) for s, i in zip(src.serials, seq.alpha)}
    ds = schema.sequence_template(
        src.benchmark, src.participant_id, src.sequence, seq.calibration, ref.n_frames, ref.height, ref.width,
        ref.fps, bool(seq.alpha), storage.frames_per_chunk, sources,
    )
    ds.attrs["storage"] = storage.to_attrs()
    ds.to_zarr(str(target), group=seq.group, mode="w", compute=False, zarr_format=3, consolidated=False,
               encoding=schema.encoding(ds, storage.compressors()))
    jobs = [(f"{seq.group}/images", c, info, False) for c, info in enumerate(seq.images)]
    jobs += [(f"{seq.group}/alpha", c, info, True) for c, info in enumerate(seq.alpha)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_fill, target, *job, storage.frames_per_chunk, progress) for job in jobs]
        for f in futures:
            f.result()
    store.mark_complete(target, seq.group)


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
    on_plan: Callable[[list[ParticipantPlan]], None] | None = None,
) -> ConversionReport:
    """Convert the video benchmarks of a download folder into the cube at ``target``.

    ``source`` is the folder given to ``nersemble-benchmark-download``; ``benchmarks``,
    ``participants`` and ``sequences`` restrict what is converted. Nodes already complete in
    ``target`` are skipped unless ``overwrite``. ``workers`` videos decode in parallel (default:
    the number of CPUs). ``on_plan`` sees the plan before anything is written (the CLI sizes its
    progress bar with it); ``progress`` is called with each number of frames written.

    Raises :class:`SourceError` for bad input and :class:`StoreError` when ``target`` exists and is
    not a cube or lies inside ``source``, in both cases before anything is written. The source
    folder is only read.
    """
    root = Path(source).expanduser()
    target = Path(target).expanduser()
    storage = storage or StorageSpec()
    progress = progress or (lambda n: None)
    workers = workers or os.cpu_count() or 1
    if target.resolve().is_relative_to(root.resolve()):
        raise StoreError(f"{target}: inside the benchmark folder {root}, which is never modified; choose a path outside it")
    store.check_target(target)
    plans = plan(root, benchmarks, participants, sequences)
    if on_plan is not None:
        on_plan(plans)
    store.prepare_target(target)
    report = ConversionReport(target)
    try:
        for part in plans:
            src = part.source
            store.set_attrs(target, schema.participant_path(src.benchmark, src.participant_id),
                            {"benchmark": src.benchmark, "participant_id": src.participant_id})
            if overwrite or not store.is_complete(target, part.group):
                _write_calibration(target, part, root)
                report.written.append(part.group)
            else:
                report.skipped.append(part.group)
            for seq in part.sequences:
                if not overwrite and store.is_complete(target, seq.group):
                    report.skipped.append(seq.group)
                    progress(seq.total_frames)
                    continue
                try:
                    _write_sequence(target, seq, root, storage, workers, progress)
                except SourceError as e:
                    store.remove_group(target, seq.group)
                    raise SourceError(f"{e} (the half-written {seq.group} was removed from {target})") from None
                report.written.append(seq.group)
                report.frames += seq.total_frames
    finally:
        store.consolidate(target)
    return report
