"""What a benchmark submission is, stated once: which videos (participant, sequence, camera) a video
benchmark renders, where each goes in the zip, its frame size, rate and encoding; which meshes and
landmarks an SVFR submission holds; and which zip entry names are safe. The template, the export and
the validator all follow these rules (as the toolkit's ``*SubmissionDataWriter`` / ``*Reader`` do).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ..errors import PredictionError
from ..source import layout

VIDEO_BENCHMARKS = layout.VIDEO_BENCHMARKS
CRF = 14
"""H.264 constant rate factor of submission videos (mediapy's ``write_video(..., crf=14)`` in the toolkit)."""
CODEC, PIX_FMT = "h264", "yuv420p"
FLAME_VERTICES = 5023
"""Vertices of a mesh in FLAME topology; any other SVFR mesh needs its 7 NoW landmarks."""
SVFR_TASKS = ("posed", "neutral")
LANDMARKS_SHAPE = (7, 3)


def check_benchmark(benchmark: str) -> str:
    """``benchmark`` if it is one of :data:`~nersemble_cube.source.layout.BENCHMARKS`, else :class:`PredictionError`."""
    if benchmark not in layout.BENCHMARKS:
        raise PredictionError(f"unknown benchmark {benchmark!r}; choose from {', '.join(layout.BENCHMARKS)}")
    return benchmark


def expected_videos(benchmark: str) -> dict[tuple[int, str], list[str]]:
    """(participant_id, sequence) -> serials a complete submission renders, in the toolkit's order."""
    if benchmark == "nvs":
        return {(p, s): list(layout.NVS_HOLD_OUT_SERIALS) for p, s in layout.NVS_IDS_AND_SEQUENCES}
    if benchmark == "mono_flame_avatar":
        serials = [layout.MONO_TRAIN_SERIAL, *layout.MONO_HOLD_OUT_SERIALS]
        return {(p, s): serials for p in layout.MONO_IDS for s in layout.MONO_SEQUENCES_TEST}
    raise ValueError(f"{benchmark!r} is no video benchmark; choose from {', '.join(VIDEO_BENCHMARKS)}")


def video_path(participant_id: int, sequence: str, serial: str) -> str:
    """Path of a video inside the submission zip (the toolkit's ``get_video_path``)."""
    return f"{participant_id:03d}/{sequence}/cam_{serial}.mp4"


def frame_size(benchmark: str) -> tuple[int, int]:
    """(height, width) in pixels of a video benchmark's frames: nvs 1604x1100, mono_flame_avatar 512x512."""
    return layout.FRAME_SIZE[benchmark]


def fps(benchmark: str) -> float:
    """Frame rate of a video benchmark's videos: nvs 73, mono_flame_avatar 24.3."""
    return layout.FPS[benchmark]


def svfr_image_keys() -> dict[str, tuple[int, str, int, str]]:
    """``"{p_id:03d}/{seq}_{timestep:03d}_{serial}"`` -> (participant, sequence, timestep, serial), all 391."""
    return {f"{p:03d}/{s}_{t:03d}_{c}": (p, s, t, c) for p, keys in layout.SVFR_IMAGE_KEYS.items() for s, t, c in keys}


def svfr_entries(key: str, task: str) -> tuple[str, str]:
    """The mesh and landmark entries of one SVFR image key and task (``posed`` or ``neutral``)."""
    return f"{key}/mesh_{task}.ply", f"{key}/landmarks_{task}.npy"


def is_unsafe(name: str) -> bool:
    """An entry that would escape an extraction folder: absolute, drive-qualified, or with a ``..`` part."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in PurePosixPath(name.replace("\\", "/")).parts
