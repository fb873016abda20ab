"""The plan of a conversion: what a download folder holds, probed and checked, and the cube node each
part becomes. Nothing is written until the whole plan is made, so a bad input costs nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..cube import schema
from ..source import layout
from ..source.converters.calibration import Calibration, read_calibration
from ..source.converters.flame import FlameTracking
from ..source.converters.pcd import PcdInfo
from ..source.converters.video import VideoInfo
from ..source.files import SourcePath
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
        """The cube node of the participant's calibration (``nvs/388/calibration``)."""
        return schema.calibration_path(self.source.benchmark, self.source.participant_id)


@dataclass(frozen=True)
class ConversionPlan:
    """Everything :func:`~nersemble_cube.convert` will write, checked."""

    root: Path
    participants: list[ParticipantPlan]
    svfr: list[layout.SvfrImageSource]

    @property
    def total_items(self) -> int:
        """Progress units of the whole conversion: video frames (images and mattes count separately),
        point clouds, tracking files and SVFR images."""
        return sum(s.total_items for p in self.participants for s in p.sequences) + len(self.svfr)


def _plan_sequence(seq: layout.SequenceSource, calib: Calibration | None, calib_path: Path | None) -> SequencePlan:
    images, alpha = probe_videos(seq, calib, calib_path)
    tracking = load_tracking(seq, images[0].n_frames if images else None)
    return SequencePlan(seq, calib.select(seq.serials) if images else None, images, alpha,
                        probe_pointclouds(seq), tracking)


def plan(
    source: str | Path | SourcePath,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
) -> ConversionPlan:
    """Discover and check everything :func:`~nersemble_cube.convert` would write; raises
    :class:`~nersemble_cube.errors.SourceError` on bad input."""
    folder = layout.discover(source, benchmarks, participants, sequences)
    people = []
    for part in folder.participants:
        calib = read_calibration(part.calibration) if part.calibration else None
        seqs = [_plan_sequence(s, calib, part.calibration) for s in part.sequences]
        people.append(ParticipantPlan(part, calib, seqs))
    check_svfr_images(folder.svfr)
    return ConversionPlan(folder.root, people, folder.svfr)
