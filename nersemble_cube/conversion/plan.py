"""The plan of a conversion: what a download folder holds, probed and checked, and the cube node each
part becomes. Nothing is written until the whole plan is made, so a bad input costs nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cube import schema
from ..errors import SourceError, UsageError
from ..source import dataset, layout
from ..source.converters.calibration import Calibration, read_calibration
from ..source.converters.color import ColorCalibration, read_color_calibration
from ..source.converters.flame import FlameTracking
from ..source.converters.image import jpeg_size
from ..source.converters.pcd import PcdInfo
from ..source.converters.video import VideoInfo, fps_filter_frames
from ..source.files import SourcePath, as_path
from ..source.probe import check_svfr_images, load_tracking, probe_pointclouds, probe_videos


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
    frames: Sequence[int] | None = None
    """The source frame indices written, sorted (full dataset: of the frames every camera has, every
    ``every_nth`` or those of ffmpeg's fps filter); None: every frame of the videos."""
    color: ColorCalibration | None = None
    note: str | None = None
    selection: dict | None = None
    """How ``frames`` were chosen, for the node's attrs: ``{"every_nth": n}`` or ``{"fps_filter": fps}``, with
    ``"source_fps"``; None: all frames."""

    @property
    def fps(self) -> float:
        """The rate of the frames written (the videos', or what the selection made of it)."""
        rate = self.images[0].fps
        if self.selection and "every_nth" in self.selection:
            return rate / self.selection["every_nth"]
        return float(self.selection["fps_filter"]) if self.selection else rate

    @property
    def time(self) -> np.ndarray:
        """The source frame index of each frame written (the node's ``time`` coordinate)."""
        return np.asarray(self.frames if self.frames is not None else range(self.images[0].n_frames))

    @property
    def group(self) -> str:
        """The cube node of the sequence's frames (``nvs/388/sequences/GLASSES``)."""
        return schema.sequence_path(self.source.benchmark, self.source.participant_id, self.source.sequence)

    @property
    def pointcloud_group(self) -> str:
        return f"{self.group}/{schema.POINTCLOUDS}"

    def tracking_group(self, version: int) -> str:
        return f"{self.group}/{schema.tracking_node(version)}"

    @property
    def n_frames(self) -> int | None:
        """Frames of the videos, else of the newest tracking, else unknown (None)."""
        if self.images:
            return len(self.time)
        return self.tracking[max(self.tracking)].n_frames if self.tracking else None

    @property
    def frame_items(self) -> int:
        """Frames to decode: images and alpha mattes of every camera."""
        return self.n_frames * (len(self.images) + len(self.alpha)) if self.images else 0

    @property
    def total_items(self) -> int:
        return self.frame_items + len(self.pointclouds) + len(self.tracking)


@dataclass(frozen=True)
class ParticipantPlan:
    """A participant's checked calibration and sequences; for the full dataset also its colour calibration,
    background stills (serial -> jpg) and the frame size (height, width) of its cameras."""

    source: layout.ParticipantSource | dataset.DatasetParticipant
    calibration: Calibration | None
    sequences: list[SequencePlan]
    color: ColorCalibration | None = None
    backgrounds: dict[str, Path] = field(default_factory=dict)
    size: tuple[int, int] | None = None

    @property
    def background_group(self) -> str:
        """The cube node of the background stills (``dataset/018/background``)."""
        return f"{schema.participant_path(self.source.benchmark, self.source.participant_id)}/{schema.BACKGROUND}"

    @property
    def group(self) -> str:
        """The cube node of the participant's calibration (``nvs/388/calibration``)."""
        return schema.calibration_path(self.source.benchmark, self.source.participant_id)


@dataclass(frozen=True)
class ConversionPlan:
    """Everything :func:`~nersemble_cube.convert` will write, checked."""

    root: Path
    participants: list[ParticipantPlan]
    svfr: list[layout.SvfrImageSource]
    metadata: dict[str, Path] = field(default_factory=dict)
    """Full dataset: the metadata tables at its root (file name -> path)."""

    @property
    def nodes(self) -> list[str]:
        """The cube nodes this conversion writes (each with everything below it): calibration, background,
        sequence (with its point clouds and tracking) and SVFR nodes."""
        out = ["svfr"] if self.svfr else []
        for part in self.participants:
            out += ([part.group] if part.calibration is not None else []) + \
                ([part.background_group] if part.backgrounds else []) + [s.group for s in part.sequences]
        return out

    @property
    def total_items(self) -> int:
        """Progress units of the whole conversion: video frames (images and mattes count separately),
        point clouds, tracking files, SVFR images and background stills."""
        return (sum(s.total_items for p in self.participants for s in p.sequences) + len(self.svfr)
                + sum(len(p.backgrounds) for p in self.participants))


def _plan_sequence(seq: layout.SequenceSource, calib: Calibration | None, calib_path: Path | None) -> SequencePlan:
    images, alpha = probe_videos(seq, calib, calib_path)
    tracking = load_tracking(seq, images[0].n_frames if images else None)
    return SequencePlan(seq, calib.select(seq.serials) if images else None, images, alpha,
                        probe_pointclouds(seq), tracking)


def _plan_dataset_sequence(seq: layout.SequenceSource, calib: Calibration | None, calib_path: Path | None,
                           color: ColorCalibration | None, every_nth: int, fps: float | None) -> SequencePlan:
    """A full-dataset sequence: cameras whose videos are longer than the shortest keep only the frames every
    camera has (named in the plan's note), then every ``every_nth`` of them, or those ffmpeg's fps filter
    picks at ``fps`` (:func:`~nersemble_cube.source.converters.video.fps_filter_frames`)."""
    images, _ = probe_videos(seq, calib, calib_path, same_length=False)
    common = min(i.n_frames for i in images)
    rate = images[0].fps
    if fps is not None and not 0 < fps < rate:
        raise UsageError(f"--fps {fps:g}: choose a rate below the videos' {rate:g} fps")
    longer = {s: i.n_frames for s, i in zip(seq.serials, images) if i.n_frames != common}
    note = None if not longer else (
        f"{seq.folder}: cameras differ in length; kept the {common} frames every camera has "
        f"(dropped the last frames of {', '.join(f'{s} ({n})' for s, n in longer.items())})")
    if fps is not None:
        frames, selection = fps_filter_frames(common, rate, fps).tolist(), {"fps_filter": fps, "source_fps": rate}
    else:
        frames = range(0, common, every_nth)
        selection = {"every_nth": every_nth, "source_fps": rate} if every_nth != 1 else None
    return SequencePlan(seq, calib.select(seq.serials), images, [], {}, {}, frames, color, note, selection)


def _plan_dataset(folder: dataset.DatasetFolder, every_nth: int, fps: float | None) -> ConversionPlan:
    people = []
    for part in folder.participants:
        calib = read_calibration(part.calibration) if part.calibration else None
        color = read_color_calibration(part.color_calibration) if part.color_calibration else None
        if calib is not None and color is not None:
            missing = [s for s in calib.serials if s not in color.serials]
            if missing:
                raise SourceError(f"{part.color_calibration}: no colour calibration for cameras {missing}; "
                                  "download the color_calibration asset again")
        seqs = [_plan_dataset_sequence(s, calib, part.calibration, color, every_nth, fps) for s in part.sequences]
        sizes = {(s.images[0].height, s.images[0].width) for s in seqs}
        sizes |= {jpeg_size(p) for p in part.backgrounds.values()}
        if len(sizes) > 1:
            raise SourceError(f"{part.folder}: videos and background stills differ in size ({sorted(sizes)}); "
                              "download the participant again")
        people.append(ParticipantPlan(part, calib, seqs, color, part.backgrounds, sizes.pop() if sizes else None))
    return ConversionPlan(folder.root, people, [], folder.metadata)


def plan(
    source: str | Path | SourcePath,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
    cameras: list[str] | None = None,
    every_nth: int = 1,
    fps: float | None = None,
) -> ConversionPlan:
    """Discover and check everything :func:`~nersemble_cube.convert` would write; raises
    :class:`~nersemble_cube.errors.SourceError` on bad input. A full-dataset folder
    (``nersemble-data download``, :mod:`~nersemble_cube.source.dataset`) is recognised as well as a
    benchmark folder; ``cameras``, ``every_nth`` and ``fps`` apply to it only."""
    root = as_path(source)
    if every_nth != 1 and fps is not None:
        raise UsageError("choose --every-nth or --fps, not both")
    confused = layout.part_of_a_download(root)
    if confused:
        raise SourceError(confused)
    if root.is_dir() and not layout.is_benchmark_folder(root) and dataset.is_dataset_folder(root):
        if benchmarks:
            raise UsageError(f"{root}: a full-dataset folder (nersemble-data download) has no benchmarks; "
                             "leave out --benchmark")
        return _plan_dataset(dataset.discover(root, participants, sequences, cameras), every_nth, fps)
    folder = layout.discover(root, benchmarks, participants, sequences)  # a missing folder says so first
    if cameras or every_nth != 1 or fps is not None:
        raise UsageError(f"{root}: --camera, --every-nth and --fps apply to a full-dataset folder "
                         "(nersemble-data download), not to a benchmark folder")
    people = []
    for part in folder.participants:
        calib = read_calibration(part.calibration) if part.calibration else None
        seqs = [_plan_sequence(s, calib, part.calibration) for s in part.sequences]
        people.append(ParticipantPlan(part, calib, seqs))
    check_svfr_images(folder.svfr)
    return ConversionPlan(folder.root, people, folder.svfr)
