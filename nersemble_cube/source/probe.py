"""Probing what a download holds: every file opened far enough to know its size and consistency.

Nothing is decoded in full; each function raises :class:`~nersemble_cube.errors.SourceError` naming
the file and the fix when a file is unreadable or disagrees with its siblings, so a conversion can
refuse bad input before it writes anything.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SourceError
from . import layout
from .converters.calibration import Calibration
from .converters.flame import FlameTracking, read_flame_tracking
from .converters.image import png_size
from .converters.pcd import PcdInfo, probe_pcd
from .converters.video import VideoInfo, probe


def probe_videos(seq: layout.SequenceSource, calib: Calibration | None, calib_path: Path | None,
                 same_length: bool = True) -> tuple[list[VideoInfo], list[VideoInfo]]:
    """The image and alpha-matte videos of ``seq``, one :class:`VideoInfo` per camera, checked: every
    camera calibrated, every video with frames, all of one size and frame rate, and (``same_length``)
    of one frame count."""
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
        if (info.n_frames if same_length else ref.n_frames, info.height, info.width) != (ref.n_frames, ref.height, ref.width):
            raise SourceError(
                f"{seq.folder}: cameras disagree, {info.path.name} has {info.n_frames} frames of "
                f"{info.width}x{info.height} but {ref.path.name} has {ref.n_frames} of {ref.width}x{ref.height}; "
                "download the sequence again"
            )
        if abs(info.fps - ref.fps) > 1e-3 * ref.fps:
            raise SourceError(f"{info.path}: {info.fps:g} fps but {ref.path.name} has {ref.fps:g}; the cameras of "
                              f"{seq.folder} must share one frame rate, download the sequence again")
        if info.n_frames == 0:
            raise SourceError(f"{info.path}: the video has no frames; download it again")
    return images, alpha


def probe_pointclouds(seq: layout.SequenceSource) -> dict[int, PcdInfo]:
    """The headers of ``seq``'s point clouds by timestep; all must have the same fields."""
    infos = {t: probe_pcd(p) for t, p in seq.pointclouds.items()}
    kinds = {(i.has_normals, i.has_colors) for i in infos.values()}
    if len(kinds) > 1:
        raise SourceError(f"{seq.folder}/pointclouds: the .pcd files have different fields; download them again")
    return infos


def load_tracking(seq: layout.SequenceSource, n_frames: int | None) -> dict[int, FlameTracking]:
    """``seq``'s FLAME tracking by version, loaded and checked against the videos' ``n_frames`` (if any)."""
    tracking = {v: read_flame_tracking(p) for v, p in seq.tracking.items()}
    for version, t in tracking.items():
        if n_frames is not None and t.n_frames != n_frames:
            raise SourceError(
                f"{seq.tracking[version]}: FLAME tracking has {t.n_frames} frames but the videos of "
                f"{seq.folder} have {n_frames}; download the sequence again"
            )
    return tracking


def check_svfr_images(images: list[layout.SvfrImageSource]) -> None:
    """Every SVFR input image must be a 512x512 png."""
    for image in images:
        size = png_size(image.path)
        if size != layout.SVFR_SIZE:
            raise SourceError(f"{image.path}: image is {size[1]}x{size[0]}, expected 512x512; download it again")
