"""The layout of a benchmark folder written by ``nersemble-benchmark-download``.

Everything about where the official downloader puts files lives here, copied to the letter
from the toolkit (``nersemble_benchmark.constants.ASSETS`` and ``scripts/download_data.py``,
version 0.2.0): path templates, camera serials, benchmark participants and sequences, and
:func:`discover`, which finds what a (possibly partial) download holds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import SourceError
from .files import SourcePath, as_path

BENCHMARKS = ("nvs", "mono_flame_avatar", "svfr")
VIDEO_BENCHMARKS = ("nvs", "mono_flame_avatar")

# Path templates relative to ``{benchmark_folder}/{benchmark}``, as in the toolkit's ASSETS.
CALIBRATION = "{p_id:03d}/calibration/camera_params.json"
IMAGES = "{p_id:03d}/sequences/{seq_name}/images/cam_{serial}.mp4"
ALPHA_MAPS = "{p_id:03d}/sequences/{seq_name}/alpha_maps/cam_{serial}.mp4"
POINTCLOUDS = "{p_id:03d}/sequences/{seq_name}/pointclouds/frame_{timestep:05d}.pcd"
FLAME_TRACKING = {
    1: "{p_id:03d}/sequences/{seq_name}/tracking/flame2023_tracking.npz",
    2: "{p_id:03d}/sequences/{seq_name}/tracking/flame2023_tracking_v2.npz",
}
SVFR_IMAGE = "{p_id:03d}/{seq_name}_{timestep}_{serial}/rgb.png"

SERIALS = (
    "222200042", "222200044", "222200046", "222200040", "222200036", "222200048", "220700191", "222200041",
    "222200037", "222200038", "222200047", "222200043", "222200049", "222200039", "222200045", "221501007",
)

NVS_IDS_AND_SEQUENCES = ((388, "GLASSES"), (422, "EXP-2-eyes"), (443, "FREE"), (445, "EXP-6-tongue-1"), (475, "HAIR"))
NVS_HOLD_OUT_SERIALS = ("222200046", "222200037", "222200039")
NVS_TRAIN_SERIALS = tuple(s for s in SERIALS if s not in NVS_HOLD_OUT_SERIALS)
NVS_FPS = 73.0
NVS_SIZE = (1604, 1100)  # (height, width) in pixels

MONO_IDS = (393, 404, 461, 477, 486)
MONO_SEQUENCES_TRAIN = (
    "EXP-1-head", "EXP-2-eyes", "EXP-3-cheeks+nose", "EXP-4-lips", "EXP-5-mouth", "EXP-8-jaw-1", "EXP-9-jaw-2",
    "EMO-2-surprise+fear", "EMO-3-angry+sad", "EMO-4-disgust+happy",
    "SEN-01-cramp_small_danger", "SEN-02-same_phrase_thirty_times", "SEN-03-pluck_bright_rose",
    "SEN-04-two_plus_seven", "SEN-05-glow_eyes_sweet_girl", "SEN-06-problems_wise_chief",
    "SEN-07-fond_note_fried", "SEN-08-clothes_and_lodging",
)
MONO_SEQUENCES_TEST = ("FREE", "EMO-1-shout+laugh", "SEN-09-frown_events_bad", "SEN-10-port_strong_smokey")
MONO_TRAIN_SERIAL = "222200037"
MONO_HOLD_OUT_SERIALS = ("222200046", "220700191", "222200039")
MONO_FPS = 24.3
MONO_SIZE = (512, 512)


# The 391 SVFR input images: participant -> (sequence, timestep, serial), as in the toolkit's constants,
# kept as package data (svfr_images.json) and checked against the toolkit in the tests.
def _svfr_image_keys() -> dict[int, list[tuple[str, int, str]]]:
    table = json.loads(resources.files(__package__).joinpath("svfr_images.json").read_text(encoding="utf-8"))
    return {int(p): [(s, int(t), c) for s, t, c in keys] for p, keys in table.items()}


SVFR_IMAGE_KEYS: dict[int, list[tuple[str, int, str]]] = _svfr_image_keys()
SVFR_SIZE = (512, 512)  # (height, width) of every SVFR input image

FPS = {"nvs": NVS_FPS, "mono_flame_avatar": MONO_FPS}
FRAME_SIZE = {"nvs": NVS_SIZE, "mono_flame_avatar": MONO_SIZE}


def camera_role(benchmark: str, serial: str) -> str:
    """``"train"`` (video provided), ``"hold_out"`` (rendered for a submission) or ``"unused"``; every camera of
    the full dataset (no benchmark) is ``"train"``."""
    if benchmark not in VIDEO_BENCHMARKS:
        return "train"
    if benchmark == "nvs":
        return "hold_out" if serial in NVS_HOLD_OUT_SERIALS else "train"
    if serial == MONO_TRAIN_SERIAL:
        return "train"
    return "hold_out" if serial in MONO_HOLD_OUT_SERIALS else "unused"


PARTICIPANT = re.compile(r"^\d{3}$")
CAMERA_FILE = re.compile(r"^cam_(\d+)\.mp4$")
_POINTCLOUD_FILE = re.compile(r"^frame_(\d{5})\.pcd$")
# the toolkit's SVFRDataManager.list_image_keys pattern: {seq}_{timestep}_{serial}
_SVFR_FOLDER = re.compile(r"^([a-zA-Z0-9-_+]+)_(\d+)_(\d+)$")
_TRACKING_FILES = {FLAME_TRACKING[v].rsplit("/", 1)[1]: v for v in FLAME_TRACKING}


@dataclass(frozen=True)
class SequenceSource:
    """The files of one downloaded sequence; every mapping is sorted and may be empty.

    ``images`` and ``alpha_maps`` map a camera serial to its mp4 (no images for the mono hold-out
    sequences, which only have tracking); ``pointclouds`` maps a timestep to its ``.pcd``;
    ``tracking`` maps a FLAME tracking version (1, 2) to its npz.
    """

    benchmark: str
    participant_id: int
    sequence: str
    folder: Path
    images: dict[str, Path]
    alpha_maps: dict[str, Path]
    pointclouds: dict[int, Path] = field(default_factory=dict)
    tracking: dict[int, Path] = field(default_factory=dict)

    @property
    def serials(self) -> list[str]:
        return list(self.images)


@dataclass(frozen=True)
class ParticipantSource:
    """One participant folder of a video benchmark: its calibration file (if downloaded) and sequences."""

    benchmark: str
    participant_id: int
    folder: Path
    calibration: Path | None
    sequences: list[SequenceSource] = field(default_factory=list)


@dataclass(frozen=True)
class SvfrImageSource:
    """One SVFR input image ``svfr/{p_id:03d}/{seq}_{timestep}_{serial}/rgb.png``."""

    participant_id: int
    sequence: str
    timestep: int
    serial: str
    path: Path

    @property
    def key(self) -> str:
        """The image key of submission paths, timestep zero-padded to 3 digits (the toolkit's ``ImageKey.to_key``)."""
        return f"{self.sequence}_{self.timestep:03d}_{self.serial}"


@dataclass(frozen=True)
class BenchmarkFolder:
    """What a download folder holds: video-benchmark participants and SVFR images."""

    root: Path
    participants: list[ParticipantSource]
    svfr: list[SvfrImageSource]


def _benchmark_dirs(root: Path) -> dict[str, Path]:
    return {b: root / b for b in BENCHMARKS if (root / b).is_dir()}


def part_of_a_download(root: SourcePath) -> str | None:
    """When ``root`` is a part of a download folder rather than the folder itself (a benchmark subfolder, a
    participant folder of either toolkit, a sequence folder): one line naming the folder and the options to
    pass instead; else None."""
    if not root.is_dir() or is_benchmark_folder(root):
        return None
    name, parent = root.name, root.parent
    if name in BENCHMARKS and any(p.is_dir() and PARTICIPANT.match(p.name) for p in root.iterdir()):
        return f"{root} is the {name}/ subfolder of a benchmark download: pass its parent {parent} (with -b {name})"
    if PARTICIPANT.match(name) and ((root / "sequences").is_dir() or (root / "calibration").is_dir()):
        top, bench = (parent.parent, f" -b {parent.name}") if parent.name in BENCHMARKS else (parent, "")
        return f"{root} is a participant folder: pass the download folder {top} with{bench} -p {int(name)}"
    if parent.name == "sequences" and PARTICIPANT.match(parent.parent.name):
        participant = parent.parent
        above = participant.parent
        top, bench = (above.parent, f" -b {above.name}") if above.name in BENCHMARKS else (above, "")
        return (f"{root} is a sequence folder: pass the download folder {top} with{bench} -p {int(participant.name)} "
                f"-s {name}")
    return None


def holdings(root: SourcePath, skip: tuple[str, ...] = ()) -> str:
    """What a download folder holds, for error messages: ``nvs 388 (GLASSES); mono_flame_avatar 393 (...)``
    (folders of ``sequences/`` named in ``skip`` left out)."""
    parts = []
    for benchmark, bdir in ([(b, d) for b, d in _benchmark_dirs(root).items()] or [("", root)]):
        for pdir, p_id in participant_dirs(bdir, None):
            seqs = sorted(d.name for d in (pdir / "sequences").iterdir() if d.is_dir() and d.name not in skip) \
                if (pdir / "sequences").is_dir() else []
            shown = ", ".join(seqs[:6]) + (f", ... {len(seqs)} in all" if len(seqs) > 6 else "")
            parts.append(f"{benchmark} {p_id:03d} ({shown or 'no sequences'})".strip())
    return "; ".join(parts[:12]) + (f"; ... {len(parts)} participants in all" if len(parts) > 12 else "") or "nothing"


def is_benchmark_folder(root: SourcePath) -> bool:
    """Whether ``root`` holds any of the benchmark folders ``nvs/``, ``mono_flame_avatar/``, ``svfr/``."""
    return root.is_dir() and bool(_benchmark_dirs(root))


def discover(
    root: str | Path | SourcePath,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
) -> BenchmarkFolder:
    """Find what a download folder holds, filtered by ``benchmarks``, ``participants`` and ``sequences``.

    ``root`` is the ``benchmark_folder`` given to ``nersemble-benchmark-download`` (it holds
    ``nvs/``, ``mono_flame_avatar/`` and/or ``svfr/``). Partial downloads are normal: whatever is
    present is returned (a sequence with any of videos, point clouds or tracking). The
    ``sequences`` filter applies to SVFR images too (their sequence name).

    Raises :class:`SourceError` for a missing folder, a folder that is no benchmark folder, a
    sequence whose alpha mattes cover other cameras than its images, or filters that match nothing.
    """
    root = as_path(root)
    if not root.exists():
        raise SourceError(f"{root}: no such folder; pass the folder given to nersemble-benchmark-download "
                          "(or nersemble-data download)")
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder; pass the folder given to nersemble-benchmark-download "
                          "(or nersemble-data download)")
    found = _benchmark_dirs(root)
    if not found:
        hint = ""
        if root.name in BENCHMARKS:
            hint = f" (it looks like a benchmark subfolder: pass its parent {root.parent})"
        raise SourceError(
            f"{root}: not a NeRSemble download folder, it has none of {', '.join(BENCHMARKS)}/ (a benchmark "
            f"folder) nor participant folders or metadata tables (a full-dataset folder){hint}"
        )
    for b in benchmarks or []:
        if b not in BENCHMARKS:
            raise SourceError(f"unknown benchmark {b!r}; choose from {', '.join(BENCHMARKS)}")
    wanted = [b for b in BENCHMARKS if b in found and (not benchmarks or b in benchmarks)]
    people: list[ParticipantSource] = []
    for benchmark in (b for b in wanted if b in VIDEO_BENCHMARKS):
        for pdir, p_id in participant_dirs(found[benchmark], participants):
            calib = pdir / CALIBRATION.format(p_id=p_id).split("/", 1)[1]
            part = ParticipantSource(benchmark, p_id, pdir, calib if calib.is_file() else None)
            seq_root = pdir / "sequences"
            for sdir in sorted(seq_root.iterdir(), key=lambda p: p.name) if seq_root.is_dir() else []:
                if not sdir.is_dir() or (sequences and sdir.name not in sequences):
                    continue
                seq = _sequence_source(benchmark, p_id, sdir)
                if seq is not None:
                    part.sequences.append(seq)
            if part.sequences:
                people.append(part)
    svfr = _svfr_images(found["svfr"], participants, sequences) if "svfr" in wanted else []
    if not people and not svfr:
        what = f"benchmarks {wanted or benchmarks}"
        if participants:
            what += f", participants {participants}"
        if sequences:
            what += f", sequences {sequences}"
        raise SourceError(f"{root}: no data found for {what}; it holds: {holdings(root)}")
    return BenchmarkFolder(root, people, svfr)


def participant_dirs(bdir: Path, participants: list[int] | None) -> list[tuple[Path, int]]:
    """``(folder, id)`` of the participant folders (three digits) of ``bdir`` among ``participants`` (all if None)."""
    out = []
    for pdir in sorted(bdir.iterdir(), key=lambda p: p.name):
        if pdir.is_dir() and PARTICIPANT.match(pdir.name) and (not participants or int(pdir.name) in participants):
            out.append((pdir, int(pdir.name)))
    return out


def camera_files(folder: Path, pattern: re.Pattern, key=str) -> dict:
    """The files of ``folder`` whose names match ``pattern``, keyed by its first group (through ``key``), sorted."""
    if not folder.is_dir():
        return {}
    found = {}
    for f in folder.iterdir():
        m = pattern.match(f.name)
        if m and f.is_file():
            found[key(m.group(1))] = f
    return dict(sorted(found.items()))


def _sequence_source(benchmark: str, p_id: int, sdir: Path) -> SequenceSource | None:
    images = camera_files(sdir / "images", CAMERA_FILE)
    alpha = camera_files(sdir / "alpha_maps", CAMERA_FILE)
    pointclouds = camera_files(sdir / "pointclouds", _POINTCLOUD_FILE, int)
    tracking = {v: sdir / "tracking" / name for name, v in _TRACKING_FILES.items() if (sdir / "tracking" / name).is_file()}
    if not (images or pointclouds or tracking):
        return None
    if alpha and set(alpha) != set(images):
        only_img = sorted(set(images) - set(alpha))
        only_alpha = sorted(set(alpha) - set(images))
        raise SourceError(
            f"{sdir}: alpha_maps/ and images/ cover different cameras "
            f"(images only: {only_img}, alpha only: {only_alpha}); finish the download or remove the extra files"
        )
    return SequenceSource(benchmark, p_id, sdir.name, sdir, images, alpha, pointclouds, dict(sorted(tracking.items())))


def _svfr_images(bdir: Path, participants: list[int] | None, sequences: list[str] | None) -> list[SvfrImageSource]:
    images = []
    for pdir, p_id in participant_dirs(bdir, participants):
        for folder in sorted(pdir.iterdir(), key=lambda p: p.name):
            m = _SVFR_FOLDER.match(folder.name)
            if not (m and folder.is_dir() and (folder / "rgb.png").is_file()):
                continue
            if sequences and m.group(1) not in sequences:
                continue
            images.append(SvfrImageSource(p_id, m.group(1), int(m.group(2)), m.group(3), folder / "rgb.png"))
    return images
