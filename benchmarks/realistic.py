"""Realistic frame content for the benchmarks (issue 16): natural photos moving slowly under sensor noise,
encoded like the real NeRSemble mp4s (about 60-75 KB per 1100x1604 frame of the benchmark; about 20 KB per
2200x3208 frame of the full dataset: 8.7 MB per video of ~430 frames).

    python benchmarks/realistic.py OUT [--frames 240] [--cameras 4] [--dataset]

The sample's own frames (a smooth synthetic head) compress far better than camera footage, which
flatters every lossless codec and H.264 alike. Here each camera sees a mosaic of scikit-image's
bundled photographs (textured, natural: faces, fur, coffee, a rocket, tissue, galaxies) drifting by
about half a pixel per frame, with Gaussian sensor noise (sigma 2 grey levels), encoded with libx264
yuv420p at the CRF whose first 24 frames land nearest 67 KB per frame (about CRF 11 here: x264
discards noise of this size at the CRFs used for smooth content). The folder is the nvs sample
(``write_sample``: layout, calibration, mattes) with these videos in place of its images; with ``--dataset``
the full-dataset sample (``write_dataset_sample`` at full size: participant 18, EXP-1-head) with videos of
3208x2200 at the CRF nearest :data:`DATASET_TARGET_BYTES` showing what the dataset's cameras see
(:func:`head_frames`: a static backdrop, a moving textured head, noise): what inter-frame coding exploits.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import nersemble_cube
from nersemble_cube.source.converters.video import ffmpeg_exe

HEIGHT, WIDTH, FPS = 1604, 1100, 73
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "cat")
NOISE_SIGMA = 2.0
DRIFT = (0.45, 0.3)  # pixels per frame, x and y
TARGET_BYTES = 67_000  # per frame, the middle of what the real mp4s hold (60-75 KB)
DATASET_SIZE = (3208, 2200)
DATASET_TARGET_BYTES = 20_000  # per frame: 1490 GB / 170631 videos (the toolkit's AVERAGE_GB_PER_VIDEO) / ~430 frames
CRF_RANGE = (4, 51)  # searched by bisection: the bytes fall as the CRF rises


def mosaic(seed: int, margin: int, size: tuple[int, int] = (HEIGHT, WIDTH)) -> np.ndarray:
    """A ``(height + margin, width + margin, 3)`` uint8 canvas tiled with the photographs at their own
    resolution (no upscaling, which would smooth them), each tile randomly chosen and flipped."""
    import skimage.data

    rng = np.random.default_rng(seed)
    photos = [getattr(skimage.data, name)() for name in PHOTOS]
    canvas = np.zeros((size[0] + margin, size[1] + margin, 3), np.uint8)
    y = 0
    while y < canvas.shape[0]:
        x, row_h = 0, 0
        while x < canvas.shape[1]:
            photo = photos[rng.integers(len(photos))]
            if rng.random() < 0.5:
                photo = photo[:, ::-1]
            h, w = min(photo.shape[0], canvas.shape[0] - y), min(photo.shape[1], canvas.shape[1] - x)
            canvas[y:y + h, x:x + w] = photo[:h, :w]
            x += w
            row_h = max(row_h, h)
        y += row_h
    return canvas


def frames(n: int, seed: int, size: tuple[int, int] = (HEIGHT, WIDTH)) -> Iterator[np.ndarray]:
    """``n`` frames ``(height, width, 3)`` uint8: the mosaic seen through a window drifting by
    :data:`DRIFT` pixels per frame (bilinear, so motion is sub-pixel), plus sensor noise."""
    height, width = size
    canvas = mosaic(seed, int(max(DRIFT) * n) + 2, size).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    for t in range(n):
        x, y = DRIFT[0] * t, DRIFT[1] * t
        x0, y0, fx, fy = int(x), int(y), x - int(x), y - int(y)
        window = canvas[y0:y0 + height + 1, x0:x0 + width + 1]
        top = window[:-1, :-1] * (1 - fx) + window[:-1, 1:] * fx
        bottom = window[1:, :-1] * (1 - fx) + window[1:, 1:] * fx
        frame = top * (1 - fy) + bottom * fy + rng.normal(0, NOISE_SIGMA, (height, width, 3)).astype(np.float32)
        yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def head_frames(n: int, seed: int, size: tuple[int, int] = DATASET_SIZE) -> Iterator[np.ndarray]:
    """``n`` frames ``(height, width, 3)`` uint8 like the full dataset's: a STATIC backdrop (the mosaic, still, as
    the studio behind a fixed camera) and a textured head (an ellipse over a third of the frame's height, its
    own mosaic texture, shaded) moving and turning slowly in front of it, plus sensor noise on everything."""
    height, width = size
    backdrop = mosaic(seed, 0, size).astype(np.float32)
    ry, rx = 0.17 * height, 0.13 * width
    texture = mosaic(seed + 7, 8, (int(2.4 * ry), int(2.4 * rx))).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    y, x = np.mgrid[0:int(2 * ry) + 4, 0:int(2 * rx) + 4].astype(np.float32)
    for t in range(n):
        cy = 0.45 * height + 0.02 * height * np.sin(t / 11)  # a few pixels per frame, sub-pixel
        cx = 0.5 * width + 0.03 * width * np.sin(t / 17 + 1)
        y0, x0 = int(cy - ry) - 2, int(cx - rx) - 2
        dy, dx = (y + y0 - cy) / ry, (x + x0 - cx) / rx
        inside = np.clip((1 - np.sqrt(dy ** 2 + dx ** 2)) * 40, 0, 1)[..., None]  # a soft edge over ~2 px
        turn = 3.0 * np.sin(t / 23)  # the texture slides inside the head: it turns
        ty, tx = y + 4 + 0.5 * np.sin(t / 19), x + 4 + turn
        iy, ix = np.clip(ty.astype(int), 0, texture.shape[0] - 2), np.clip(tx.astype(int), 0, texture.shape[1] - 2)
        fy, fx = (ty - np.floor(ty))[..., None], (tx - np.floor(tx))[..., None]
        skin = (texture[iy, ix] * (1 - fx) + texture[iy, ix + 1] * fx) * (1 - fy) + \
               (texture[iy + 1, ix] * (1 - fx) + texture[iy + 1, ix + 1] * fx) * fy
        shade = np.clip(1.1 - 0.5 * (dy ** 2 + dx ** 2), 0.4, 1.1)[..., None]
        frame = backdrop.copy()
        window = frame[y0:y0 + y.shape[0], x0:x0 + y.shape[1]]
        window[:] = window * (1 - inside) + skin * shade * inside
        frame += rng.normal(0, NOISE_SIGMA, frame.shape).astype(np.float32)
        yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def encode(path: Path, video: Iterator[np.ndarray], crf: int, size: tuple[int, int] = (HEIGHT, WIDTH)) -> int:
    """Encode ``video`` (frames of ``size``, height x width) to ``path`` as H.264 yuv420p at ``crf``; returns
    the file's bytes."""
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[1]}x{size[0]}",
           "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "medium", "-crf", str(crf),
           "-pix_fmt", "yuv420p", str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for frame in video:
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed to encode {path}")
    return path.stat().st_size


def choose_crf(folder: Path, probe_frames: int = 24, size: tuple[int, int] = (HEIGHT, WIDTH),
               target: int = TARGET_BYTES, content=frames) -> tuple[int, float]:
    """The CRF whose encode of the first ``probe_frames`` frames (of ``size``) lands nearest ``target`` bytes
    per frame (bisection over :data:`CRF_RANGE`), and that size in bytes per frame."""
    probe = folder / "crf-probe.mp4"
    sizes: dict[int, float] = {}

    def per_frame(crf: int) -> float:
        if crf not in sizes:
            sizes[crf] = encode(probe, content(probe_frames, 0, size), crf, size) / probe_frames
        return sizes[crf]

    lo, hi = CRF_RANGE
    while hi - lo > 1:  # invariant: per_frame(lo) >= target > per_frame(hi), or the range's end
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if per_frame(mid) >= target else (lo, mid)
    probe.unlink(missing_ok=True)
    crf = min((lo, hi), key=lambda c: abs(per_frame(c) - target))
    return crf, per_frame(crf)


def realistic_sample(folder: Path, n_frames: int, cameras: int = 1) -> Path:
    """The nvs sample folder with realistic image videos, written only if ``folder`` does not hold it yet."""
    images = folder / "nvs" / "388" / "sequences" / "GLASSES" / "images"
    done = folder / "realistic.txt"
    if done.exists():
        return folder
    nersemble_cube.write_sample(folder, benchmarks=("nvs",), n_frames=n_frames, n_cameras=cameras,
                                pointcloud_frames=())
    crf, per_frame = choose_crf(folder)
    for i, mp4 in enumerate(sorted(images.glob("cam_*.mp4"))):
        size = encode(mp4, frames(n_frames, seed=100 + i), crf)
        per_frame = size / n_frames
    done.write_text(f"crf {crf}, {per_frame / 1e3:.1f} KB per frame (last camera)\n")
    return folder


def realistic_dataset_sample(folder: Path, n_frames: int, cameras: int = 16) -> Path:
    """The full-dataset sample at full size (participant 18, EXP-1-head; calibration, colour calibration,
    backgrounds) with realistic videos of 3208x2200, written only if ``folder`` does not hold it yet."""
    from nersemble_cube.source.dataset_sample import write_dataset_sample

    done = folder / "realistic.txt"
    if done.exists():
        return folder
    write_dataset_sample(folder, (18,), ("EXP-1-head",), n_frames=1, n_cameras=cameras, downscale=1)
    crf, per_frame = choose_crf(folder, 24, DATASET_SIZE, DATASET_TARGET_BYTES, head_frames)
    videos = sorted((folder / "018" / "sequences" / "EXP-1-head" / "images").glob("cam_*.mp4"))
    for i, mp4 in enumerate(videos):
        per_frame = encode(mp4, head_frames(n_frames, 100 + i, DATASET_SIZE), crf, DATASET_SIZE) / n_frames
    done.write_text(f"crf {crf}, {per_frame / 1e3:.1f} KB per frame (last camera)\n")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--dataset", action="store_true", help="a full-dataset folder at 3208x2200 instead")
    args = ap.parse_args()
    if args.dataset:
        realistic_dataset_sample(args.out, args.frames, args.cameras)
    else:
        realistic_sample(args.out, args.frames, args.cameras)
    print((args.out / "realistic.txt").read_text().strip())


if __name__ == "__main__":
    main()
