"""How many bytes and how much time a planned conversion will take, and whether the target's disk has room."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..cube import store
from ..cube.location import Location
from ..cube.storage import CODECS, DEFAULT_CRF, StorageSpec, encoded_size
from ..errors import StoreError
from ..source.converters.video import VideoInfo, iter_frames
from .plan import ConversionPlan


SAMPLED_SEQUENCES = 24
"""At most this many sequences (spread over the plan) are encoded for a size estimate; the others are sized
like them per pixel (the full dataset has ~9.4 K sequences, and decoding a frame of each would take long)."""


def _sample_frames(info: VideoInfo, index: int = 8, count: int = 1) -> np.ndarray:
    """``count`` frames ``(count, y, x, channel)`` of ``info`` from frame ``index`` (fewer at its end; from the
    last if it is shorter): past the first keyframe, whose extra detail would overstate what the later frames take."""
    start = max(0, min(index, info.n_frames - count))
    frames = iter_frames(info, batch=1)
    kept = []
    try:
        for i, batch in zip(range(start + count), frames):
            if i >= start:
                kept.append(batch[0].copy())
        return np.stack(kept)
    finally:
        frames.close()


VIDEO_SAMPLE = 4
"""Frames a video preset is sized with: a keyframe and predicted frames, extrapolated to its GOP."""


def _file_bytes_per_frame(info: VideoInfo) -> float:
    """What the copy preset stores per frame: the mp4's bytes over its frames."""
    return info.path.stat().st_size / max(info.n_frames, 1)


def estimate_bytes(checked: ConversionPlan, storages: list[StorageSpec], skip: Callable[[str], bool] = lambda g: False,
                   scales: tuple[int, ...] = (1,), done: Callable[[str, str], int] = lambda g, v: 0
                   ) -> dict[StorageSpec, int]:
    """Estimated bytes the frames of ``checked`` take with each of ``storages``.

    A frame past the first keyframe of a sequence's first image video (and matte video) is decoded and
    compressed, for at most :data:`SAMPLED_SEQUENCES` sequences spread over the plan (the others take the
    sampled bytes per pixel); the sizes are scaled by frames and cameras, plus 10 % margin.
    Sequences for which ``skip(group)`` is true (already complete) are left out, and of the others the
    ``done(group, variable)`` cameras already written (``images`` or ``alpha``). Point clouds,
    tracking, SVFR images and background stills are counted raw (they are small next to the videos). Each extra level
    of ``scales`` adds ``1 / factor**2`` of the frames.
    """
    levels = 1 + sum(1 / f ** 2 for f in scales if f != 1)
    todo = [s for p in checked.participants for s in p.sequences if s.images and not skip(s.group)]
    step = max(1, -(-len(todo) // SAMPLED_SEQUENCES))
    per_pixel: dict[tuple[StorageSpec, str], list[float]] = {}
    sized: dict[str, dict[tuple[StorageSpec, str], float]] = {}
    video = any(spec.video for spec in storages)
    chosen: dict[StorageSpec, StorageSpec] = {}
    for seq in todo[::step]:
        frames = {"images": _sample_frames(seq.images[0], count=VIDEO_SAMPLE if video else 1)}
        if seq.alpha:
            frames["alpha"] = _sample_frames(seq.alpha[0])[..., 0]
        sized[seq.group] = {}
        for spec in storages:
            for name, sample in frames.items():
                spec_here = spec.for_mattes() if name == "alpha" else spec
                frame = sample[0]
                if spec_here.codec == "copy":
                    n = _file_bytes_per_frame(seq.images[0])
                elif spec_here.video:  # the CRF chosen on the first sequence sampled sizes the others too
                    spec_here = chosen.setdefault(spec_here, spec_here.with_crf(sample))
                    n = encoded_size(frame, spec_here, sample[1:])
                else:
                    n = encoded_size(frame, spec_here)
                sized[seq.group][spec, name] = n
                per_pixel.setdefault((spec, name), []).append(n / (frame.shape[0] * frame.shape[1]))
    totals = dict.fromkeys(storages, 0)
    for seq in todo:
        pixels = seq.images[0].height * seq.images[0].width
        counts = {"images": len(seq.images) - done(seq.group, "images"), "alpha": len(seq.alpha) - done(seq.group, "alpha")}
        for spec in storages:
            per_frame = 0.0
            for name, cameras in counts.items():
                if cameras:
                    known = sized.get(seq.group, {}).get((spec, name))
                    per_frame += cameras * (known if known is not None else pixels * float(np.mean(per_pixel[spec, name])))
            totals[spec] += int(1.1 * per_frame * seq.n_frames * levels)
    extra = sum(i.n_points * 27 for p in checked.participants for s in p.sequences for i in s.pointclouds.values())
    extra += len(checked.svfr) * 512 * 512 * 3
    extra += sum(len(p.backgrounds) * p.size[0] * p.size[1] * 3 for p in checked.participants if p.backgrounds)
    return {spec: total + extra for spec, total in totals.items()}


def _bytes_still_to_write(target: Location, checked: ConversionPlan, presets: list[StorageSpec], overwrite: bool,
                          scales: tuple[int, ...]) -> dict[StorageSpec, int]:
    """:func:`estimate_bytes` of what ``target`` does not hold yet (all of it with ``overwrite``)."""
    return estimate_bytes(checked, presets, skip=lambda g: not overwrite and store.is_complete(target, g),
                          scales=scales, done=lambda g, v: 0 if overwrite else store.count_flags(target, g, v))


def free_bytes(target: Location) -> int | None:
    """Free bytes on the disk a local ``target`` would be written to; None for an object store."""
    if not target.is_local:
        return None
    anchor = target.path
    while not anchor.exists():
        anchor = anchor.parent
    return shutil.disk_usage(anchor).free


def check_free_space(target: Location, checked: ConversionPlan, storage: StorageSpec, overwrite: bool,
                     scales: tuple[int, ...]) -> None:
    """Raise :class:`StoreError` if a local ``target`` lacks room for what ``checked`` still has to write
    (complete nodes and the cameras an interrupted run finished left out, unless ``overwrite``), naming the
    codec presets that would fit."""
    free = free_bytes(target)
    if free is None:
        return  # object stores have no fixed capacity to check against

    def need(presets: list[StorageSpec]) -> dict[StorageSpec, int]:
        return _bytes_still_to_write(target, checked, presets, overwrite, scales)

    needed = need([storage])[storage]  # the other presets are encoded only to name one that fits
    if needed <= free:
        return
    others = need([StorageSpec(c) for c in CODECS if c != storage.codec])
    fits = [f"--codec {s.codec} (~{_size(n)}{s.quality and ', ' + s.quality})" for s, n in others.items() if n <= free]
    if fits:
        hint = f"; {' or '.join(fits)} would fit"
    else:
        smallest = min(others.items(), key=lambda item: item[1], default=None)
        lossy = f" (the smallest preset, --codec {smallest[0].codec}, needs ~{_size(smallest[1])})" if smallest else ""
        dataset = any(p.source.benchmark == "dataset" for p in checked.participants)
        fewer = "--every-nth, --camera, --sequence, --participant" if dataset else "--benchmark, --participant, --sequence"
        hint = f"; free some space, choose another disk or convert less: {fewer}{lossy}"
    raise StoreError(f"{target}: the cube needs about {_size(needed)} with --codec {storage.codec} "
                     f"but only {_size(free)} are free{hint}")


def _size(n: float) -> str:
    """Bytes in words a person reads at a glance: ``1.2 GB``, ``35 MB``, ``640 kB``."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} bytes"


@dataclass(frozen=True)
class Estimate:
    """What a planned conversion would take, before anything is written: frames to decode (every source frame,
    also those ``--every-nth`` leaves out) and to write (images and mattes), background stills, the store's
    bytes with each codec preset, the CPU-seconds to decode one frame and to encode one with each preset
    (measured on the first frames of the first video), and the free bytes at the target (None: an object store)."""

    decoded: int
    frames: int
    stills: int
    bytes: dict[str, int]
    decode_seconds: float
    encode_seconds: dict[str, float]
    free: int | None

    def wall_seconds(self, codec: str, workers: int) -> float:
        """A lower bound on the conversion's wall time with ``workers`` tasks on as many cores."""
        decode = 0.0 if codec == "copy" else self.decoded * self.decode_seconds  # copy: packets, not pictures
        return (decode + self.frames * self.encode_seconds[codec]) / max(workers, 1)


def _timings(info: VideoInfo, presets: list[StorageSpec], sample: int = 8) -> tuple[float, dict[str, float]]:
    """Seconds to decode a frame of ``info`` (``sample`` frames, ffmpeg's start-up left out, one thread) and to
    encode one with each preset."""
    frames = iter_frames(info, batch=1, threads=1)
    try:
        first = next(frames)[0].copy()
        t0, n = time.perf_counter(), 0
        for _ in range(sample - 1):
            if next(frames, None) is None:
                break
            n += 1
        decode = (time.perf_counter() - t0) / n if n else 0.0
    finally:
        frames.close()
    encode = {}
    for spec in presets:
        t0 = time.perf_counter()
        if spec.codec == "copy":  # packets are copied, not encoded
            encode[spec.codec] = 0.0
        elif spec.video:  # a GOP of copies of the frame: its encode time per frame (at a set CRF: choosing one is
            # a search of several encodes, timed by nothing a conversion repeats per frame)
            fixed = spec if spec.crf is not None else replace(spec, crf=DEFAULT_CRF)
            encoded_size(first, fixed, np.stack([first] * (VIDEO_SAMPLE - 1)))
            encode[spec.codec] = (time.perf_counter() - t0) / VIDEO_SAMPLE
        else:
            encoded_size(first, spec)
            encode[spec.codec] = time.perf_counter() - t0
    return decode, encode


def estimate(target: Location, checked: ConversionPlan, storage: StorageSpec, overwrite: bool = False,
             scales: tuple[int, ...] = (1,)) -> Estimate:
    """Size and time of converting ``checked`` into ``target`` with ``storage`` and with every other preset
    (what ``convert --dry-run`` prints); complete parts of an existing store are left out unless ``overwrite``."""
    presets = [storage] + [StorageSpec(c) for c in CODECS if c != storage.codec]
    sizes = _bytes_still_to_write(target, checked, presets, overwrite, scales)
    videos = [s for p in checked.participants for s in p.sequences
              if s.images and (overwrite or not store.is_complete(target, s.group))]
    decoded = sum(i.n_frames for s in videos for i in s.images + s.alpha)
    frames = sum(s.frame_items for s in videos)
    decode, encode = _timings(videos[0].images[0], presets) if videos else (0.0, {s.codec: 0.0 for s in presets})
    return Estimate(decoded, frames, sum(len(p.backgrounds) for p in checked.participants),
                    {s.codec: n for s, n in sizes.items()}, decode, encode, free_bytes(target))
