"""How many bytes a planned conversion will take, and whether the target's disk has room."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import numpy as np

from ..cube import store
from ..cube.location import Location
from ..cube.storage import CODECS, StorageSpec, encoded_size
from ..errors import StoreError
from ..source.converters.video import VideoInfo, iter_frames
from .plan import ConversionPlan


def _first_frame(info: VideoInfo) -> np.ndarray:
    frames = iter_frames(info, batch=1)
    try:
        return next(frames)[0]
    finally:
        frames.close()


def estimate_bytes(checked: ConversionPlan, storages: list[StorageSpec], skip: Callable[[str], bool] = lambda g: False,
                   scales: tuple[int, ...] = (1,), done: Callable[[str, str], int] = lambda g, v: 0
                   ) -> dict[StorageSpec, int]:
    """Estimated bytes the frames of ``checked`` take with each of ``storages``.

    Each sequence's first image frame and first alpha frame are decoded and compressed; the sizes
    are scaled by frames and cameras, plus 10 % margin (later frames of a sequence look alike).
    Sequences for which ``skip(group)`` is true (already complete) are left out, and of the others the
    ``done(group, variable)`` cameras already written (``images`` or ``alpha``). Point clouds,
    tracking, SVFR images and background stills are counted raw (they are small next to the videos). Each extra level
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
            cameras = len(seq.images) - done(seq.group, "images")
            mattes = len(seq.alpha) - done(seq.group, "alpha")
            for spec in storages:
                per_frame = encoded_size(image, spec) * cameras
                if alpha is not None:
                    per_frame += encoded_size(alpha, spec.for_mattes()) * mattes
                totals[spec] += int(1.1 * per_frame * seq.n_frames * levels)
    extra = sum(i.n_points * 27 for p in checked.participants for s in p.sequences for i in s.pointclouds.values())
    extra += len(checked.svfr) * 512 * 512 * 3
    extra += sum(len(p.backgrounds) * p.size[0] * p.size[1] * 3 for p in checked.participants if p.backgrounds)
    return {spec: total + extra for spec, total in totals.items()}


def check_free_space(target: Location, checked: ConversionPlan, storage: StorageSpec, overwrite: bool,
                     scales: tuple[int, ...]) -> None:
    """Raise :class:`StoreError` if a local ``target`` lacks room for what ``checked`` still has to write
    (complete nodes and the cameras an interrupted run finished left out, unless ``overwrite``), naming the
    codec presets that would fit."""
    if not target.is_local:
        return  # object stores have no fixed capacity to check against
    anchor = target.path
    while not anchor.exists():
        anchor = anchor.parent
    free = shutil.disk_usage(anchor).free

    def need(presets: list[StorageSpec]) -> dict[StorageSpec, int]:
        return estimate_bytes(checked, presets, skip=lambda g: not overwrite and store.is_complete(target, g),
                              scales=scales, done=lambda g, v: 0 if overwrite else store.count_flags(target, g, v))

    needed = need([storage])[storage]  # the other presets are encoded only to name one that fits
    if needed <= free:
        return
    others = need([StorageSpec(c) for c in CODECS if c != storage.codec])
    fits = [f"--codec {s.codec} (~{n / 1e9:.1f} GB{'' if s.lossless else ', lossy: ~45 dB'})"
            for s, n in others.items() if n <= free]
    if fits:
        hint = f"; {' or '.join(fits)} would fit"
    else:
        smallest = min(others.items(), key=lambda item: item[1], default=None)
        lossy = f" (the smallest preset, --codec {smallest[0].codec}, needs ~{smallest[1] / 1e9:.1f} GB)" if smallest else ""
        dataset = any(p.source.benchmark == "dataset" for p in checked.participants)
        fewer = "--every-nth, --camera, --sequence, --participant" if dataset else "--benchmark, --participant, --sequence"
        hint = f"; free some space, choose another disk or convert less: {fewer}{lossy}"
    raise StoreError(f"{target}: the cube needs about {needed / 1e9:.1f} GB with --codec {storage.codec} "
                     f"but only {free / 1e9:.1f} GB are free{hint}")
