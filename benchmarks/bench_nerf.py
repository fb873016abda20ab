"""NeRF-folder export benchmark (issue 9): one 1604x1100 nvs camera at --downscale 2, white background.

    python benchmarks/bench_nerf.py [--frames 120] [--repeats 3] [--workdir DIR]

Rows (medians, same run): ``export_nerf`` with 1 and 2 dask workers (png image + png mask per
frame), against the loop training scripts write by hand: the toolkit's ``load_image`` and
``load_alpha_map`` (cv2 open + seek + read, verbatim), numpy compositing, ``cv2.resize(INTER_AREA)``
and ``cv2.imwrite`` of the image and the mask.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import nersemble_cube
from nersemble_cube.nerf import export_nerf

SEQ = "nvs/388/sequences/GLASSES"


def toolkit_loop(src: Path, serial: str, n: int, out: Path) -> None:
    import cv2

    def load(path: str, t: int) -> np.ndarray:  # VideoFrameLoader.load_frame, verbatim
        video_capture = cv2.VideoCapture(path)
        video_capture.set(cv2.CAP_PROP_POS_FRAMES, t)
        success, image = video_capture.read()
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)

    out.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        image = load(str(src / SEQ / f"images/cam_{serial}.mp4"), t) / 255.0
        alpha = load(str(src / SEQ / f"alpha_maps/cam_{serial}.mp4"), t)[..., [0]] / 255.0
        comp = image * alpha + 1.0 * (1 - alpha)
        size = (comp.shape[1] // 2, comp.shape[0] // 2)
        comp = cv2.resize(comp, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(alpha[..., 0], size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / f"{t:05d}.png"), cv2.cvtColor((np.clip(comp, 0, 1) * 255 + 0.5).astype(np.uint8),
                                                             cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(out / f"{t:05d}_mask.png"), (mask * 255 + 0.5).astype(np.uint8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nersemble-bench-nerf-"))
    src = work / f"sample-1x{args.frames}"
    if not (src / "nvs").exists():
        nersemble_cube.write_sample(src, benchmarks=("nvs",), n_frames=args.frames, n_cameras=1, pointcloud_frames=())
    cube = work / "cube.zarr"
    if not cube.exists():
        nersemble_cube.convert(src, cube)
    serial = str(nersemble_cube.open(cube)[SEQ].camera.values[0])
    times: dict[str, list[float]] = {"ours, 1 worker": [], "ours, 2 workers": [], "toolkit loop": []}
    for _ in range(args.repeats):
        for workers in (1, 2):
            out = work / "nerf"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            export_nerf(cube, out, "nvs/388/GLASSES", downscale=2, workers=workers)
            times[f"ours, {workers} worker{'s' if workers > 1 else ''}"].append(time.perf_counter() - t0)
        out = work / "loop"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        toolkit_loop(src, serial, args.frames, out)
        times["toolkit loop"].append(time.perf_counter() - t0)
    base = statistics.median(times["toolkit loop"])
    print(f"{args.frames} frames of one 1604x1100 camera -> 802x550 png + mask, median of {args.repeats}:")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:16s} {med:6.2f} s  {args.frames / med:6.1f} frames/s  {base / med:5.2f}x the toolkit loop")


if __name__ == "__main__":
    main()
