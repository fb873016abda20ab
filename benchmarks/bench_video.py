"""Every storage preset on one content kind, side by side (issue 28): bytes against the mp4s, worst-frame PSNR,
random and sequential reads, conversion against its limit.

    python benchmarks/bench_video.py [--content benchmark|dataset|smooth] [--frames 48] [--cameras 2]
                                     [--presets zstd,jpegxl,h264,hevc,copy,h264:20] [--workers 2] [--workdir DIR]

Content: ``benchmark`` (benchmarks/realistic.py: photos drifting under noise, ~67 KB per 1100x1604 frame),
``dataset`` (realistic.head_frames: a static backdrop and a moving textured head, ~20 KB per 2200x3208 frame)
or ``smooth`` (the test sample's synthetic head). Per preset: the images' stored bytes over the mp4s' bytes;
PSNR of every frame of the first camera against PyAV's decode of its mp4 (worst and mean); the median time
of 9 random frames read with :class:`~nersemble_cube.FrameReader` (one decoder thread, and as many as the
machine's cores); frames per second reading the first camera in order with FrameReader and with xarray/dask
(``ds.images.sel(camera=c).values``); conversion frames per second and its ratio to the same run's limit
(decoding every video with ffmpeg plus encoding its frames with that preset's encoder alone, one thread each,
spread over ``--workers``).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import av
import numpy as np

import nersemble_cube
from nersemble_cube import StorageSpec
from nersemble_cube.cluster import usable_cores
from nersemble_cube.cube.codecs import jpegxl, video
from nersemble_cube.conversion.tasks import gop_chunks
from nersemble_cube.cube.storage import encoded_size
from nersemble_cube.source.converters.video import iter_frames, probe, read_packets

from bench_video_reads import random_reads
from common import nvs_sample, workdir

SEQ = "nvs/388/sequences/GLASSES"
DATASET_SEQ = "dataset/018/sequences/EXP-1-head"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255 ** 2 / mse))


def decode(mp4: Path) -> np.ndarray:
    with av.open(str(mp4)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def source(args: argparse.Namespace, folder: Path) -> tuple[Path, str, Path]:
    """(source folder, sequence node, its images folder)."""
    if args.content == "dataset":
        from realistic import realistic_dataset_sample

        root = realistic_dataset_sample(folder / "src", args.frames, args.cameras)
        return root, DATASET_SEQ, root / "018" / "sequences" / "EXP-1-head" / "images"
    content = "realistic" if args.content == "benchmark" else "synthetic"
    root = nvs_sample(folder / "src", args.frames, args.cameras, content=content)
    return root, SEQ, root / SEQ / "images"


def limit_seconds(videos: list[Path], spec: StorageSpec, workers: int) -> float:
    """ffmpeg decoding every video (one thread) plus encoding its frames as ``spec`` would (one thread; copy
    encodes nothing), and the same for each camera's matte video (zstd), spread over ``workers``: a lower bound
    on the conversion's wall time."""
    total = 0.0
    for mattes in (p.parent.parent / "alpha_maps" / p.name for p in videos):
        if mattes.exists():
            info = probe(mattes)
            t0 = time.perf_counter()
            for batch in iter_frames(info, batch=16, threads=1):
                for frame in batch:
                    encoded_size(np.ascontiguousarray(frame[..., 0]), spec.for_mattes())
            total += time.perf_counter() - t0
    for mp4 in videos:
        info = probe(mp4)
        t0 = time.perf_counter()
        frames = np.concatenate(list(iter_frames(info, batch=16, threads=1))) if spec.codec != "copy" else None
        total += time.perf_counter() - t0
        t0 = time.perf_counter()
        if spec.codec in video.ENCODERS:
            n = spec.frames_per_chunk
            for i in range(0, len(frames), n):
                video.encode(frames[i:i + n], spec.codec, spec.crf, spec.preset, threads=1)
        elif spec.codec != "copy":
            for frame in frames:
                encoded_size(frame, spec)
        total += time.perf_counter() - t0
    return total / workers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--content", choices=("benchmark", "dataset", "smooth"), default="benchmark")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--presets", default="zstd,jpegxl,h264,hevc,copy")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    folder = workdir(args, "video")
    root, seq, images = source(args, folder)
    videos = sorted(images.glob("cam_*.mp4"))
    mp4_bytes = sum(p.stat().st_size for p in videos)
    reference = decode(videos[0])
    cores = usable_cores()
    print(f"content {args.content}: {len(videos)} cameras x {len(reference)} frames of "
          f"{reference.shape[2]}x{reference.shape[1]}, {mp4_bytes / len(videos) / len(reference) / 1e3:.1f} KB per "
          f"frame in the mp4s; {cores} cores, {args.workers} workers\n")
    print(f"| preset | bytes x mp4 | worst / mean PSNR | random frame, 1 / {cores} threads | in order: reader / dask "
          "| convert frames/s | x its limit |\n|---|---|---|---|---|---|---|")
    for preset in args.presets.split(","):  # a name, or h264:CRF for a fixed CRF (no choice on sample frames)
        name, _, crf = preset.partition(":")
        spec = StorageSpec(name, crf=int(crf) if crf else None)
        cube = folder / f"{preset.replace(':', '-')}.zarr"
        subprocess.run(["rm", "-rf", str(cube)], check=True)
        t0 = time.perf_counter()
        nersemble_cube.convert(root, cube, storage=spec, workers=args.workers)
        wall = time.perf_counter() - t0
        chosen = nersemble_cube.open(cube)[seq].attrs["storage"]
        spec = StorageSpec.from_attrs(chosen)  # with the CRF the conversion chose (and the copy preset's GOP)
        limit = limit_seconds(videos, spec, args.workers)
        stored = sum(p.stat().st_size for p in (cube / seq / "images" / "c").rglob("*") if p.is_file())
        reader = nersemble_cube.FrameReader(cube, seq)
        serial = reader.cameras[0]
        video.DECODE_THREADS = jpegxl.DECODE_THREADS = cores
        t0 = time.perf_counter()
        ours = np.stack([reader.read(serial, t) for t in range(reader.n_frames)])
        in_order = len(ours) / (time.perf_counter() - t0)
        ds = nersemble_cube.open(cube)[seq].to_dataset()
        t0 = time.perf_counter()
        ds.images.sel(camera=serial).values
        dask_rate = len(ours) / (time.perf_counter() - t0)
        quality = [psnr(ours[t], reference[t]) for t in range(len(ours))]
        one, many = random_reads(cube, seq, 1, n=9), random_reads(cube, seq, cores, n=9)
        frames = len(videos) * len(reference)
        label = f"{name} (crf {spec.crf}{', fixed' if crf else ''})" if name in video.ENCODERS else name
        print(f"| {label} | {stored / mp4_bytes:.2f}x | {min(quality):.1f} / {np.mean(quality):.1f} dB | "
              f"{one:.0f} / {many:.0f} ms | {in_order:.0f} / {dask_rate:.0f} frames/s | {frames / wall:.1f} | "
              f"{wall / limit:.2f}x |", flush=True)
    if "copy" in args.presets.split(","):
        copy, decode_all = copy_against_decode(videos)
        print(f"\ncopy preset, the image videos alone: packets read and chunked in {copy:.2f} s, decoded by ffmpeg in "
              f"{decode_all:.2f} s ({decode_all / copy:.0f}x)")


def copy_against_decode(videos: list[Path]) -> tuple[float, float]:
    """Seconds to read every image video's packets and pack them into chunks (what the copy preset does), and
    to decode them with ffmpeg (its default threads): the copy preset's gain over any decoding conversion."""
    t0 = time.perf_counter()
    for mp4 in videos:
        gop_chunks(read_packets(probe(mp4)))
    copy = time.perf_counter() - t0
    t0 = time.perf_counter()
    for mp4 in videos:
        for _ in iter_frames(probe(mp4), batch=16):
            pass
    return copy, time.perf_counter() - t0


if __name__ == "__main__":
    main()
