"""Verification of a cube against its source folder: re-read a random sample and compare."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cluster import Progress
from ..cube import schema, store
from ..cube.integrity import DAMAGE_ERRORS
from ..cube.location import Location, locate
from ..errors import VerificationError
from ..source.converters.image import read_jpeg, read_png
from ..source.converters.pcd import read_pcd
from ..source.converters.video import read_frames
from ..source.files import as_path
from .plan import ConversionPlan, SequencePlan, plan

LOSSY_MIN_PSNR = 40.0
"""Frames of a lossy cube (``--codec jpegxl``, ``h264``, ``hevc``) must be at least this close to the source (dB)."""


@dataclass
class VerifyReport:
    """What :func:`verify` compared (``checked`` items: frames, clouds, tracking files, calibrations,
    images) and every mismatch found, one line each."""

    checked: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def raise_for_mismatches(self) -> None:
        """Raise :class:`VerificationError` (exit 4) if any sample differed from the source."""
        if self.mismatches:
            first = self.mismatches[0].split(":")[0]
            raise VerificationError(f"{len(self.mismatches)} of {self.checked} samples differ from the source "
                                    f"(first: {first}); convert that part again with --overwrite")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def _compare(report: VerifyReport, what: str, read_stored: Callable[[], np.ndarray], source: np.ndarray,
             lossy: bool = False) -> None:
    """Compare what ``read_stored()`` reads from the cube with ``source``; a read that fails (a damaged or
    missing chunk) is a mismatch too."""
    report.checked += 1
    try:
        stored = read_stored()
    except DAMAGE_ERRORS as e:  # a damaged or missing chunk (permissions, the network: raised as they are)
        report.mismatches.append(f"{what}: unreadable in the cube ({str(e)[:100]}); run nersemble-cube verify --full")
        return
    if stored.shape != source.shape:
        report.mismatches.append(f"{what}: shape {stored.shape} in the cube, {source.shape} in the source")
    elif lossy:
        if _psnr(stored, source) < LOSSY_MIN_PSNR:
            report.mismatches.append(f"{what}: PSNR {_psnr(stored, source):.1f} dB < {LOSSY_MIN_PSNR} dB")
    elif not np.array_equal(stored, source, equal_nan=stored.dtype.kind == "f"):
        differ = int(np.sum(stored != source))
        report.mismatches.append(f"{what}: {differ} of {stored.size} values differ")


def _verify_sequence(loc: Location, seq: SequencePlan, report: VerifyReport, k: int,
                     rng: np.random.Generator) -> None:
    if seq.images:
        node = store.open_group(loc, seq.group)
        codec = node.attrs.get("storage", {}).get("codec")
        lossy = codec in ("jpegxl", "h264", "hevc")  # copy: the source's packets, decoded alone, are bit-equal
        times = seq.time  # the source frame each stored frame is (all, or every n-th, of the common frames)
        for name, videos in (("images", seq.images), ("alpha", seq.alpha)):
            for camera, info in enumerate(videos):
                picks = sorted(rng.choice(len(times), min(k, len(times)), replace=False).tolist())
                frames = [int(times[p]) for p in picks]
                source = read_frames(info, frames)
                if name == "alpha":
                    source = source[..., 0]
                serial = seq.source.serials[camera]
                _compare(report, f"{seq.group}/{name} camera {serial} frames {frames}",
                         lambda a=node[name], c=camera, p=picks: np.stack([a[c, q] for q in p]), source,
                         lossy and name == "images")  # mattes are lossless whatever the codec
                # frame by frame: zarr's orthogonal selection of a list decodes every chunk of the shard
    if seq.pointclouds:
        t = int(rng.choice(list(seq.pointclouds)))
        cloud = read_pcd(seq.pointclouds[t].path)
        ours = store.open_group(loc, f"{seq.group}/{schema.POINTCLOUDS}")
        i = int(np.flatnonzero(ours["timestep"][:] == t)[0])
        start, n = int(ours["offset"][i]), int(ours["count"][i])
        _compare(report, f"{seq.group}/{schema.POINTCLOUDS} timestep {t}", lambda: ours["positions"][start:start + n],
                 cloud.positions)
    for version in seq.tracking:
        group = f"{seq.group}/{schema.tracking_node(version)}"
        node = store.open_group(loc, group)
        tracking = seq.tracking[version]
        for name in ("expression", "rotation", "translation", "jaw", "neck", "eyes"):
            _compare(report, f"{group}/{name}", lambda a=node[name]: a[:], getattr(tracking, name))


def verify(
    source: str | Path,
    target: str | Path | Location,
    *,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
    cameras: list[str] | None = None,
    every_nth: int = 1,
    fps: float | None = None,
    frames_per_video: int = 2,
    seed: int = 0,
    storage_options: dict | None = None,
    checked: ConversionPlan | None = None,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Compare a random sample of the cube ``target`` with the source folder it was converted from.

    For every selected video ``frames_per_video`` random frames are decoded from the mp4 and
    compared with the stored frames (bit-equal for the lossless codecs and copy, PSNR >= 40 dB for jpegxl, h264 and hevc);
    calibrations and FLAME tracking are compared whole, one random point cloud per sequence and
    ``frames_per_video`` SVFR images; for the full dataset also the colour correction whole and one random
    background still per participant. A node missing or left incomplete in the cube is a mismatch.
    Nothing is written. ``seed`` fixes the sample. The selection (``benchmarks`` ... ``fps``) is
    :func:`~nersemble_cube.convert`'s. ``checked`` is the plan of the conversion just run
    (``convert``'s ``on_plan``), which saves probing every source file again; else the source is planned.
    ``on_start`` gets the number of sequences (plus one for SVFR), ``progress`` is called as each is checked.
    """
    loc = locate(target, storage_options)
    store.check_cube(loc)
    if checked is None:
        checked = plan(as_path(source), benchmarks, participants, sequences, cameras, every_nth, fps)
    rng = np.random.default_rng(seed)
    report = VerifyReport()
    if on_start:
        on_start(sum(len(part.sequences) for part in checked.participants) + bool(checked.svfr))
    for part in checked.participants:
        groups = ([part.group] if part.calibration is not None else []) + [s.group for s in part.sequences]
        groups += [f"{s.group}/{schema.POINTCLOUDS}" for s in part.sequences if s.pointclouds]
        groups += [f"{s.group}/{schema.tracking_node(v)}" for s in part.sequences for v in s.tracking]
        groups += [part.background_group] if part.backgrounds else []
        missing = [g for g in groups if not store.is_complete(loc, g)]
        report.mismatches += [f"{g}: missing or incomplete in the cube; run convert again" for g in missing]
        if part.calibration is not None and part.group not in missing:
            node = store.open_group(loc, part.group)
            calib = part.calibration
            _compare(report, f"{part.group}/camera", lambda: np.array([str(s) for s in node["camera"][:]]),
                     np.array(calib.serials))
            _compare(report, f"{part.group}/world_2_cam", lambda: node["world_2_cam"][:], calib.world_2_cam)
            _compare(report, f"{part.group}/intrinsics", lambda: node["intrinsics"][:], calib.intrinsics)
            if part.color is not None:
                expected = part.color.matrices[[part.color.serials.index(s) for s in calib.serials]]
                _compare(report, f"{part.group}/color_correction", lambda: node["color_correction"][:], expected)
        if part.backgrounds and part.background_group not in missing:
            stills = store.open_array(loc, f"{part.background_group}/{schema.BACKGROUND}")
            c = int(rng.integers(len(part.backgrounds)))
            path = list(part.backgrounds.values())[c]
            _compare(report, f"{part.background_group} {path.name}", lambda: stills[c], read_jpeg(path, part.size))
        for seq in part.sequences:
            if seq.group not in missing:
                _verify_sequence(loc, seq, report, frames_per_video, rng)
            if progress:
                progress(1)
    if checked.svfr:
        if not store.is_complete(loc, schema.SVFR):
            report.mismatches.append(f"{schema.SVFR}: missing or incomplete in the cube; run convert again")
        else:
            images = store.open_array(loc, f"{schema.SVFR}/images")
            for i in sorted(rng.choice(len(checked.svfr), min(frames_per_video, len(checked.svfr)), replace=False)):
                image = checked.svfr[int(i)]
                _compare(report, f"{schema.SVFR} {image.participant_id:03d}/{image.key}",
                         lambda j=int(i): images[j], read_png(image.path, images.shape[1:3]))
        if progress:
            progress(1)
    return report
