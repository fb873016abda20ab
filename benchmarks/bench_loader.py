"""Training samples per second through PyTorch's DataLoader over :class:`~nersemble_cube.FrameDataset` (issue 29),
for 1..N worker processes, and into GPU memory where there is one.

    python benchmarks/bench_loader.py [CUBE SEQUENCE] [--frames 6] [--workers 1,2,4,8,16] [--batch 16]
                                      [--batches 40] [--workdir DIR]

Without CUBE: a realistic nvs cube (benchmarks/realistic.py, 1 camera, ``--frames``, zstd) is written first.
Random frames (``RandomFrames`` with replacement), uint8 channels last, mattes included; workers started with
"spawn"; the first batch (workers starting) is not timed. Per worker count: frames/s and GB/s of decoded image
bytes delivered to the loop, and, with CUDA, the same with ``pin_memory=True`` and each batch copied to the
GPU (``non_blocking``, synchronised per batch); and the same with :meth:`FrameDataset.batches` (that many threads
of one process, batches made tensors with ``torch.from_numpy`` and copied to the GPU from pageable memory).
Baselines from the same run: one FrameReader in the main
process (frames/s of one core) and the host-to-device copy of a pinned batch alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import nersemble_cube
from nersemble_cube import FrameDataset, RandomFrames

from common import SEQ, nvs_sample, workdir


def loader_rate(data: FrameDataset, workers: int, batch: int, batches: int, cuda: bool) -> float:
    """Frames per second over ``batches`` batches after the first."""
    loader = DataLoader(data, batch_size=batch, sampler=RandomFrames(data, (batches + 1) * batch, replacement=True),
                        num_workers=workers, multiprocessing_context="spawn" if workers else None,
                        pin_memory=cuda, prefetch_factor=4 if workers else None)
    it = iter(loader)
    next(it)  # the workers start
    t0 = time.perf_counter()
    n = 0
    for sample in it:
        if cuda:
            sample["image"].to("cuda", non_blocking=True)
            sample["alpha"].to("cuda", non_blocking=True)
            torch.cuda.synchronize()
        n += len(sample["image"])
    return n / (time.perf_counter() - t0)


def threads_rate(data: FrameDataset, threads: int, batch: int, batches: int, cuda: bool) -> float:
    """Frames per second of :meth:`FrameDataset.batches` with ``threads`` threads (no worker processes, so no
    frame copied between them), each batch made a tensor and, with ``cuda``, copied to the GPU."""
    order = list(RandomFrames(data, (batches + 1) * batch, replacement=True))
    it = data.batches([order[i:i + batch] for i in range(0, len(order), batch)], threads=threads)
    next(it)  # the readers open
    t0 = time.perf_counter()
    for sample in it:
        image = torch.from_numpy(sample["image"])
        if cuda:
            image.to("cuda")
            torch.cuda.synchronize()
    return batches * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cube", nargs="*", help="CUBE SEQUENCE (default: a realistic nvs cube written first)")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--workers", default="1,2,4,8,16")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    if args.cube:
        cube, seq = Path(args.cube[0]), args.cube[1]
    else:
        folder = workdir(args, "loader")
        cube, seq = folder / "cube.zarr", SEQ
        if not cube.exists():
            nersemble_cube.convert(nvs_sample(folder / "src", args.frames, 1, content="realistic"), cube)
    data = FrameDataset(cube, [seq])
    frame_bytes = data[0]["image"].nbytes
    cuda = torch.cuda.is_available()
    reader = nersemble_cube.FrameReader(cube, seq)
    serial, times = reader.cameras[0], [int(t) for t in data.sequences[0].times]
    t0 = time.perf_counter()
    for t in times * 4:
        reader.read(serial, t)
    one = 4 * len(times) / (time.perf_counter() - t0)
    print(f"{cube} {seq}: {len(data)} samples of {frame_bytes / 1e6:.2f} MB; one FrameReader in this process: "
          f"{one:.0f} frames/s")
    if cuda:
        pinned = torch.empty((args.batch, frame_bytes), dtype=torch.uint8).pin_memory()
        pinned.to("cuda")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(20):
            pinned.to("cuda", non_blocking=True)
        torch.cuda.synchronize()
        h2d = 20 * pinned.numel() / (time.perf_counter() - t0)
        print(f"host-to-device copy of a pinned batch alone: {h2d / 1e9:.1f} GB/s = {h2d / frame_bytes:.0f} frames/s")
    print(f"\n| workers | DataLoader frames/s | GB/s | x one reader |{' into GPU memory, frames/s |' if cuda else ''}"
          f" FrameDataset.batches, threads: frames/s |{' into GPU memory |' if cuda else ''}\n"
          f"|---|---|---|---|{'---|---|' if cuda else ''}---|")
    for workers in [int(w) for w in args.workers.split(",")]:
        rate = loader_rate(data, workers, args.batch, args.batches, False)
        gpu = f" {loader_rate(data, workers, args.batch, args.batches, True):.0f} |" if cuda else ""
        threaded = f" {threads_rate(data, max(workers, 1), args.batch, args.batches, False):.0f} |"
        if cuda:
            threaded += f" {threads_rate(data, max(workers, 1), args.batch, args.batches, True):.0f} |"
        print(f"| {workers} | {rate:.0f} | {rate * frame_bytes / 1e9:.2f} | {rate / one:.1f}x |{gpu}{threaded}",
              flush=True)


if __name__ == "__main__":
    main()
