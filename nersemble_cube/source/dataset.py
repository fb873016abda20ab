"""The layout of a full-dataset folder written by ``nersemble-data download`` (the ``nersemble_data`` toolkit).

Copied to the letter from ``nersemble_data.constants`` (version 0.0.6): path templates, the 16 camera
serials (the benchmark's, in the same order), the sequence names, the two metadata tables; and
:func:`discover`, which finds what a (possibly partial) download holds. Unlike a benchmark folder
there is no benchmark level, no alpha mattes, no point clouds and no FLAME tracking; every participant
has one ``camera_params.json`` with ONE shared 3x3 ``intrinsics``, a ``color_calibration.json`` and
one background still per camera in ``sequences/BACKGROUND`` (not a sequence: no video).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SourceError
from . import layout
from .files import SourcePath, as_path

BENCHMARK = "dataset"
"""The first level of every cube node converted from a full-dataset folder (``dataset/018/...``)."""

METADATA_PARTICIPANTS = "metadata_participants.csv"
METADATA_SEQUENCES = "metadata_sequences.csv"
CALIBRATION = "{p_id:03d}/calibration/camera_params.json"
COLOR_CALIBRATION = "{p_id:03d}/calibration/color_calibration.json"
IMAGES = "{p_id:03d}/sequences/{seq_name}/images/cam_{serial}.mp4"
BACKGROUND = "{p_id:03d}/sequences/BACKGROUND/image_{serial}.jpg"
BACKGROUND_FOLDER = "BACKGROUND"

SERIALS = layout.SERIALS
SEQUENCES = (
    "GLASSES",
    "EXP-1-head", "EXP-2-eyes", "EXP-3-cheeks+nose", "EXP-4-lips", "EXP-5-mouth", "EXP-6-tongue-1",
    "EXP-7-tongue-2", "EXP-8-jaw-1", "EXP-9-jaw-2",
    "HAIR",
    "FREE",
    "EMO-1-shout+laugh", "EMO-2-surprise+fear", "EMO-3-angry+sad", "EMO-4-disgust+happy",
    "SEN-01-cramp_small_danger", "SEN-02-same_phrase_thirty_times", "SEN-03-pluck_bright_rose",
    "SEN-04-two_plus_seven", "SEN-05-glow_eyes_sweet_girl", "SEN-06-problems_wise_chief",
    "SEN-07-fond_note_friend", "SEN-08-clothes_and_lodging", "SEN-09-frown_events_bad",
    "SEN-10-port_strong_smokey",
)
"""The video sequences of ``nersemble_data.constants.SEQUENCE_NAMES`` (which also lists BACKGROUND)."""
SPELLINGS = {"SEN-07-fond_note_fried": "SEN-07-fond_note_friend"}
"""Older spellings of sequence names (the benchmark toolkit's) -> the dataset toolkit's. A folder keeps the
name it was downloaded under; a ``sequences`` filter matches either spelling."""
FRAME_SIZE = (3208, 2200)
"""(height, width) in pixels of every camera: what the shared intrinsics are for."""
FPS = 73.0
_BACKGROUND_FILE = re.compile(r"^image_(\d+)\.jpg$")


def same_sequence(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name one sequence, allowing for :data:`SPELLINGS`."""
    return SPELLINGS.get(a, a) == SPELLINGS.get(b, b)


@dataclass(frozen=True)
class DatasetParticipant:
    """One participant folder: its calibration files (None if not downloaded), background stills by
    serial, and its sequences (:class:`~.layout.SequenceSource` with images only)."""

    participant_id: int
    folder: Path
    calibration: Path | None
    color_calibration: Path | None
    backgrounds: dict[str, Path]
    sequences: list[layout.SequenceSource] = field(default_factory=list)

    @property
    def benchmark(self) -> str:
        """The first level of this participant's cube nodes: :data:`BENCHMARK`."""
        return BENCHMARK


@dataclass(frozen=True)
class DatasetFolder:
    """What a full-dataset download holds: participants, and the metadata tables found at its root."""

    root: Path
    participants: list[DatasetParticipant]
    metadata: dict[str, Path]


def is_dataset_folder(root: SourcePath) -> bool:
    """Whether ``root`` looks like a ``nersemble-data download`` folder: a metadata table, or a
    participant folder (three digits) with ``calibration/`` or ``sequences/``, at its top."""
    if any((root / name).is_file() for name in (METADATA_SEQUENCES, METADATA_PARTICIPANTS)):
        return True
    return any(p.is_dir() and layout.PARTICIPANT.match(p.name) and ((p / "sequences").is_dir() or (p / "calibration").is_dir())
               for p in root.iterdir())


def discover(root: str | Path | SourcePath, participants: list[int] | None = None,
             sequences: list[str] | None = None, cameras: list[str] | None = None) -> DatasetFolder:
    """Find what a full-dataset folder holds, filtered by ``participants``, ``sequences`` (either spelling of
    SEN-07) and camera serials ``cameras`` (which filter backgrounds too).

    Partial downloads are normal (the downloader skips what the server lacks): a participant is kept if it
    has any video or background. Raises :class:`SourceError` for filters that match nothing or unknown serials.
    """
    root = as_path(root)
    unknown = [c for c in cameras or [] if c not in SERIALS]
    if unknown:
        raise SourceError(f"unknown cameras {unknown}; the rig's serials are {', '.join(SERIALS)}")
    metadata = {name: root / name for name in (METADATA_PARTICIPANTS, METADATA_SEQUENCES) if (root / name).is_file()}
    people = []
    for pdir, p_id in layout.participant_dirs(root, participants):
        def asset(template: str) -> Path | None:
            path = root / template.format(p_id=p_id)
            return path if path.is_file() else None

        backgrounds = {s: p for s, p in layout.camera_files(pdir / "sequences" / BACKGROUND_FOLDER, _BACKGROUND_FILE).items()
                       if not cameras or s in cameras}
        part = DatasetParticipant(p_id, pdir, asset(CALIBRATION), asset(COLOR_CALIBRATION), backgrounds)
        seq_root = pdir / "sequences"
        for sdir in sorted(seq_root.iterdir(), key=lambda p: p.name) if seq_root.is_dir() else []:
            if not sdir.is_dir() or sdir.name == BACKGROUND_FOLDER:
                continue
            if sequences and not any(same_sequence(sdir.name, s) for s in sequences):
                continue
            images = {s: p for s, p in layout.camera_files(sdir / "images", layout.CAMERA_FILE).items()
                      if not cameras or s in cameras}
            if images:
                part.sequences.append(layout.SequenceSource(BENCHMARK, p_id, sdir.name, sdir, images, {}))
        if part.sequences or part.backgrounds:
            people.append(part)
    if not people or (sequences and not any(p.sequences for p in people)):
        what = ", ".join(f"{k} {v}" for k, v in (("participants", participants), ("sequences", sequences),
                                                   ("cameras", cameras)) if v)
        raise SourceError(f"{root}: no videos or backgrounds found{' for ' + what if what else ''}; "
                          f"it holds: {layout.holdings(root, skip=(BACKGROUND_FOLDER,))}")
    return DatasetFolder(root, people, metadata)
