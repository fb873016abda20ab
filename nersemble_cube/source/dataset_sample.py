"""A small but faithful sample of the full NeRSemble dataset, written where ``nersemble-data download`` writes.

Same paths (:mod:`.dataset`), formats and codecs: H.264 yuv420p mp4 per camera (no mattes), one
``camera_params.json`` per participant with a ``world_2_cam`` per serial and ONE shared 3x3
``intrinsics``, a ``color_calibration.json`` with a ``(3, terms)`` Cheung-2004 matrix per serial, one
JPEG background still per camera in ``sequences/BACKGROUND``, and the two metadata tables at the root.
The frames show the sample's sphere head (:func:`.sample.render`) in front of that camera's background,
as the real frames show the person in front of the studio. Two things are smaller than the real data: the
frame size (3208x2200 divided by ``downscale``; the intrinsics are for the frames written) and the number
of frames. ``metadata_sequences.csv`` has the toolkit's columns (``ID``, ``wears_glasses``, one per
sequence name, ``x`` where the sequence exists); ``metadata_participants.csv`` has an ``ID`` column and
an invented ``age_group`` one (the real table's other columns are not published).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np

from ..cluster import Progress
from . import dataset
from .sample import encode_video, render, rig, run_jobs

DEFAULT_PARTICIPANTS = (18, 30)
DEFAULT_SEQUENCES = ("EXP-1-head", "SEN-07-fond_note_friend")
JPEG_QUALITY = 95


def shared_intrinsics(height: int, width: int) -> np.ndarray:
    """The one 3x3 pinhole matrix of the sample rig for frames of ``height`` x ``width`` pixels."""
    focal = 6000.0 * height / dataset.FRAME_SIZE[0]
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


def color_matrix(serial: str, terms: int) -> np.ndarray:
    """A plausible ``(3, terms)`` colour-correction matrix: near identity on R, G, B plus small higher terms."""
    rng = np.random.default_rng(int(serial))
    ccm = rng.normal(0, 0.02, (3, terms))
    ccm[:, :3] += np.diag(rng.uniform(0.9, 1.15, 3))
    return ccm


def background(serial: str, height: int, width: int) -> np.ndarray:
    """The studio behind the head as camera ``serial`` sees it: ``(y, x, 3)`` uint8, a lit grey wall with texture."""
    rng = np.random.default_rng(int(serial) + 1)
    v, u = np.mgrid[0:height, 0:width] / max(height, width)
    light = 0.55 + 0.25 * np.exp(-((u - rng.uniform(0.2, 0.6)) ** 2 + (v - 0.3) ** 2) / 0.1)
    grain = np.sin(40 * u + 7 * np.sin(15 * v)) * 0.03
    tint = np.array([0.95, 0.97, 1.0]) * rng.uniform(0.9, 1.0)
    return (np.clip((light + grain)[..., None] * tint, 0, 1) * 255 + 0.5).astype(np.uint8)


def _write_camera(root: Path, p_id: int, seq: str, serial: str, w2c: np.ndarray, k: np.ndarray,
                  size: tuple[int, int], n_frames: int) -> None:
    height, width = size
    bg = background(serial, height, width).astype(np.float64)
    rng = np.random.default_rng([p_id, int(serial), len(seq)])
    frames = []
    for t in range(n_frames):
        rgb, alpha = render(w2c, k, height, width, t, dataset.FPS, rng)
        frames.append((rgb + bg * (1 - alpha[..., None] / 255.0) + 0.5).clip(0, 255).astype(np.uint8))
    encode_video(root / dataset.IMAGES.format(p_id=p_id, seq_name=seq, serial=serial), frames, dataset.FPS)


def write_dataset_sample(
    folder: str | Path,
    participants: tuple[int, ...] = DEFAULT_PARTICIPANTS,
    sequences: tuple[str, ...] = DEFAULT_SEQUENCES,
    n_frames: int = 8,
    n_cameras: int | None = 4,
    downscale: int = 8,
    terms: int = 10,
    short_camera: bool = False,
    workers: int = 2,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Path:
    """Write a sample full-dataset folder into ``folder`` and return it.

    Each of ``participants`` gets ``sequences``, seen by the first ``n_cameras`` serials (all 16 if None)
    at 3208x2200 / ``downscale`` (even sizes; the default 401x275 is rounded to 402x276) and 73 fps,
    ``n_frames`` frames each; calibration and colour calibration (``terms`` per matrix) for all 16 serials;
    a background still per camera written. ``short_camera`` makes the last camera's video of every
    sequence one frame shorter (as real downloads sometimes are). Deterministic. ``on_start`` gets the
    number of videos to encode, ``progress`` is called as each is written.
    """
    root = Path(folder).expanduser()
    unknown = [s for s in sequences if s not in dataset.SEQUENCES and s not in dataset.SPELLINGS]
    if unknown:
        raise ValueError(f"not dataset sequences: {unknown}")
    size = tuple(2 * -(-n // (2 * downscale)) for n in dataset.FRAME_SIZE)  # H.264 yuv420p needs even sizes
    serials = list(dataset.SERIALS[:n_cameras])
    k = shared_intrinsics(*size)
    jobs = []
    for p_id in participants:
        cams = rig("nvs", p_id)
        calib = root / dataset.CALIBRATION.format(p_id=p_id)
        calib.parent.mkdir(parents=True, exist_ok=True)
        calib.write_text(json.dumps({"world_2_cam": {s: cams[s][0].tolist() for s in dataset.SERIALS},
                                     "intrinsics": k.tolist()}))
        (root / dataset.COLOR_CALIBRATION.format(p_id=p_id)).write_text(
            json.dumps({s: color_matrix(s, terms).tolist() for s in dataset.SERIALS}))
        for s in serials:
            path = root / dataset.BACKGROUND.format(p_id=p_id, serial=s)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(imagecodecs.jpeg8_encode(background(s, *size), level=JPEG_QUALITY))
        for seq in sequences:
            for i, s in enumerate(serials):
                short = short_camera and i == len(serials) - 1
                jobs.append((_write_camera, root, p_id, seq, s, cams[s][0], k, size, n_frames - short))
    _write_metadata(root, participants, sequences)
    run_jobs(jobs, workers, progress, on_start)
    return root


def _write_metadata(root: Path, participants: tuple[int, ...], sequences: tuple[str, ...]) -> None:
    columns = ["BACKGROUND", *dataset.SEQUENCES]
    with open(root / dataset.METADATA_SEQUENCES, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["ID", "wears_glasses", *columns])
        for p_id in participants:
            marks = ["x" if c == "BACKGROUND" or any(dataset.same_sequence(c, s) for s in sequences) else ""
                     for c in columns]
            out.writerow([p_id, "no", *marks])
    with open(root / dataset.METADATA_PARTICIPANTS, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["ID", "age_group"])
        out.writerows([p_id, "20-30"] for p_id in participants)
