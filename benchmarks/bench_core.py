"""Core benchmark (issue 2): conversion throughput, random single-frame reads, store size.

Every figure is a ratio against a baseline measured in the same run (the machine is shared and
noisy); times are medians of several repetitions.

    pip install -e ".[bench]"
    python benchmarks/bench_core.py [--frames 60] [--cameras 3] [--repeats 3] [--reads 30]

Baselines:
- conversion: the ffmpeg binary (imageio-ffmpeg's) decoding the same mp4s to rawvideo, with the same
  number of videos in parallel;
- random single-frame read: the toolkit's ``NVSDataManager.load_image`` code path, reproduced
  exactly (``VideoFrameLoader``: cv2.VideoCapture, set CAP_PROP_POS_FRAMES, read, cvtColor), and
  decompressing the one chunk with the codec alone;
- size: the mp4 files the cube came from.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import zarr

import nersemble_cube
from nersemble_cube import StorageSpec, convert, write_sample
from nersemble_cube.access import stored_bytes


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ffmpeg_decode_all(videos: list[Path], workers: int) -> None:
    exe = imageio_ffmpeg.get_ffmpeg_exe()

    def one(path: Path) -> None:
        subprocess.run([exe, "-v", "error", "-nostdin", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-y", "/dev/null"], check=True)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, videos))


def toolkit_load_image(video_path: str, frame_id: int) -> np.ndarray:
    """nersemble_benchmark.util.video.VideoFrameLoader(video_path).load_frame(frame_id), verbatim."""
    import cv2

    video_capture = cv2.VideoCapture(video_path)
    video_capture.set(cv2.CAP_PROP_POS_FRAMES, frame_id)
    success, image = video_capture.read()
    image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reads", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nersemble-bench-"))
    try:
        src = write_sample(work / "bench", benchmarks=("nvs",), n_frames=args.frames, n_cameras=args.cameras)
        videos = sorted(src.rglob("*.mp4"))
        n_frames_total = args.frames * len(videos)
        mp4_bytes = sum(v.stat().st_size for v in videos)
        rows = []

        # -- conversion throughput -------------------------------------------------------------------------------
        t_ffmpeg = median_time(lambda: ffmpeg_decode_all(videos, args.workers), args.repeats)
        sizes = {}
        for codec in ("zstd", "lz4"):
            target = work / f"cube-{codec}.zarr"

            def run(target=target, codec=codec):
                shutil.rmtree(target, ignore_errors=True)
                convert(src, target, storage=StorageSpec(codec), workers=args.workers)

            t_conv = median_time(run, args.repeats)
            sizes[codec] = stored_bytes(target)
            rows.append((f"conversion ({codec})", f"{n_frames_total / t_conv:.1f} frames/s",
                         f"ffmpeg decode {n_frames_total / t_ffmpeg:.1f} frames/s", f"{t_ffmpeg / t_conv:.2f}x"))

        # -- random single-frame reads ---------------------------------------------------------------------------
        cube = work / "cube-zstd.zarr"
        ds = nersemble_cube.open(cube)["nvs/388/sequences/GLASSES"].to_dataset()
        serials = ds.camera.values.tolist()
        rng = random.Random(0)
        picks = [(rng.choice(serials), rng.randrange(args.frames)) for _ in range(args.reads)]
        arr = zarr.open_array(str(cube), path="nvs/388/sequences/GLASSES/images", mode="r")
        codec = arr.compressors[0]
        video = {s: str(src / f"nvs/388/sequences/GLASSES/images/cam_{s}.mp4") for s in serials}

        def per_read(fn) -> float:
            times = []
            for serial, t in picks:
                t0 = time.perf_counter()
                fn(serial, t)
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

        t_tool = per_read(lambda s, t: toolkit_load_image(video[s], t))
        t_cube = per_read(lambda s, t: ds.images.sel(camera=s, time=t).values)
        ds_nodask = nersemble_cube.open(cube, dask=False)["nvs/388/sequences/GLASSES"].to_dataset()
        t_nodask = per_read(lambda s, t: ds_nodask.images.sel(camera=s, time=t).values)
        t_zarr = per_read(lambda s, t: arr[serials.index(s), t])
        raw = {(s, t): (cube / f"nvs/388/sequences/GLASSES/images/c/{serials.index(s)}/{t}/0/0/0").read_bytes()
               for s, t in picks}
        import numcodecs

        zstd = numcodecs.Zstd(level=codec.level)
        t_codec = per_read(lambda s, t: zstd.decode(raw[(s, t)]))
        rows.append(("random frame, xarray .sel().values", f"{t_cube * 1e3:.1f} ms",
                     f"toolkit load_image {t_tool * 1e3:.1f} ms", f"{t_tool / t_cube:.1f}x faster"))
        rows.append(("random frame, open(dask=False) .sel().values", f"{t_nodask * 1e3:.1f} ms",
                     f"toolkit load_image {t_tool * 1e3:.1f} ms", f"{t_tool / t_nodask:.1f}x faster"))
        rows.append(("random frame, zarr array[c, t]", f"{t_zarr * 1e3:.1f} ms",
                     f"toolkit load_image {t_tool * 1e3:.1f} ms", f"{t_tool / t_zarr:.1f}x faster"))
        rows.append(("random frame, xarray .sel().values", f"{t_cube * 1e3:.1f} ms",
                     f"zstd decode of the chunk alone {t_codec * 1e3:.1f} ms", f"{t_cube / t_codec:.2f}x of it"))

        # -- size ------------------------------------------------------------------------------------------------
        for codec_name, nbytes in sizes.items():
            rows.append((f"store size ({codec_name})", f"{nbytes / 1e6:.1f} MB", f"mp4s {mp4_bytes / 1e6:.2f} MB",
                         f"{nbytes / mp4_bytes:.0f}x the mp4s"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nworkload: nvs sample, {args.cameras} cameras x {args.frames} frames at 1100x1604 "
          f"(images + alpha = {len(videos)} videos), {args.workers} workers, medians of {args.repeats} runs / "
          f"{args.reads} reads\n")
    print("| path | ours | baseline (same run) | ratio |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
