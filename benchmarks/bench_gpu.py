"""Random frames into GPU memory (issue 29, item 2): CPU threads against nvCOMP's batched zstd on the GPU, for a
zstd cube stored a frame per chunk and the same frames stored in row blocks (``StorageSpec(row_blocks=N)``).

    python benchmarks/bench_gpu.py CUBE SEQUENCE [--row-blocks 16] [--threads 1,4,8,16] [--batches 1,16,64,256]
                                   [--repeats 5] [--workdir DIR]

CUBE: a zstd cube (e.g. one ``convert`` wrote from ``benchmarks/realistic.py``'s sample); its ``images`` are
written again in row blocks into a copy under ``--workdir`` (the library's own encoding and shard writer).
Random (camera, frame) picks with replacement, the same for every path; medians of ``--repeats``. Rows: one
FrameReader on one thread (frames/s, each layout: what row blocks cost CPU reads); N threads each reading
with its own FrameReader and copying the frame to the GPU; a pinned batch's host-to-device copy alone (the
bus); :class:`~nersemble_cube.training.gpu.GpuFrames` at each batch size (frames/s, GB/s of decoded frames,
peak GPU memory), its frames compared with FrameReader's (bit-equal or the run stops).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import zarr

import nersemble_cube
from nersemble_cube import StorageSpec
from nersemble_cube.cube.schema import sequence_group
from nersemble_cube.cube.shards import ShardWriter
from nersemble_cube.training.gpu import GpuFrames


def in_row_blocks(cube: Path, seq: str, out: Path, blocks: int) -> Path:
    """A copy of ``cube`` whose ``images`` of ``seq`` are stored in ``blocks`` row blocks (zstd)."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(cube, out)
    path = f"{sequence_group(seq)}/images"
    old = zarr.open_array(str(cube), path=path, mode="r")
    enc = StorageSpec(row_blocks=blocks).frame_encoding(old.shape[1], old.shape[2:])
    shutil.rmtree(out / path)
    new = zarr.create_array(str(out), name=path, shape=old.shape, dtype=old.dtype, chunks=enc["chunks"],
                            shards=enc.get("shards"), compressors=enc["compressors"], fill_value=0,
                            attributes=old.attrs.asdict(), dimension_names=old.metadata.dimension_names)
    ShardWriter(new).write((0,) * old.ndim, old[:])
    return out


def median_rate(fn, n: int, repeats: int) -> float:
    """Items per second of ``fn()`` handling ``n`` items, median of ``repeats`` (after one untimed call)."""
    fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cube", type=Path)
    ap.add_argument("sequence")
    ap.add_argument("--row-blocks", type=int, default=16)
    ap.add_argument("--threads", default="1,4,8,16")
    ap.add_argument("--batches", default="1,16,64,256")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/benchgpu"))
    args = ap.parse_args()
    blocked = in_row_blocks(args.cube, args.sequence, args.workdir / "blocks.zarr", args.row_blocks)
    cubes = {"frame per chunk": args.cube, f"{args.row_blocks} row blocks": blocked}
    reader = nersemble_cube.FrameReader(args.cube, args.sequence)
    frame_bytes = reader.read(reader.cameras[0], 0).nbytes
    rng = np.random.default_rng(0)
    keys = [(reader.cameras[rng.integers(len(reader.cameras))], int(rng.integers(reader.n_frames))) for _ in range(256)]
    print(f"{args.cube} {args.sequence}: {len(reader.cameras)} cameras x {reader.n_frames} frames, "
          f"{frame_bytes / 1e6:.2f} MB a frame; {torch.cuda.get_device_name()}")

    for name, cube in cubes.items():
        one = nersemble_cube.FrameReader(cube, args.sequence)
        rate = median_rate(lambda: [one.read(*k) for k in keys[:32]], 32, args.repeats)
        print(f"| {name} | FrameReader, 1 thread, host memory | {rate:.0f} frames/s | {rate * frame_bytes / 1e9:.2f} GB/s |")
        local = threading.local()

        def to_gpu(key, cube=cube):
            if not hasattr(local, "readers"):
                local.readers = {}
            if cube not in local.readers:
                local.readers[cube] = nersemble_cube.FrameReader(cube, args.sequence)
            r = local.readers[cube]
            return torch.from_numpy(r.read(*key)).to("cuda", non_blocking=False)

        for n in map(int, args.threads.split(",")):
            with ThreadPoolExecutor(n) as pool:
                rate = median_rate(lambda: list(pool.map(to_gpu, keys)), len(keys), args.repeats)
            print(f"| {name} | {n} threads, FrameReader + .to(cuda) | {rate:.0f} frames/s | {rate * frame_bytes / 1e9:.2f} GB/s |")

    batch = torch.from_numpy(np.stack([reader.read(*k) for k in keys[:64]])).pin_memory()
    rate = median_rate(lambda: batch.to("cuda", non_blocking=True), 64, args.repeats)
    print(f"| - | pinned host-to-device copy of 64 frames alone | {rate:.0f} frames/s | {rate * frame_bytes / 1e9:.2f} GB/s |")

    for name, cube in cubes.items():
        gpu = GpuFrames(cube, args.sequence)
        for b in map(int, args.batches.split(",")):
            got = gpu.read(keys[:b])
            for i in sorted({0, b // 2, b - 1}):
                want = reader.read(*keys[i])
                if not np.array_equal(got[i].cpu().numpy(), want):
                    raise SystemExit(f"{name}, batch {b}: frame {keys[i]} differs from FrameReader's")
            torch.cuda.reset_peak_memory_stats()
            rate = median_rate(lambda b=b: gpu.read(keys[:b]), b, args.repeats)
            peak = torch.cuda.max_memory_allocated() / 1e9
            print(f"| {name} | GpuFrames, batch {b} | {rate:.0f} frames/s | {rate * frame_bytes / 1e9:.2f} GB/s | "
                  f"peak {peak:.2f} GB (torch) | bit-equal |", flush=True)


if __name__ == "__main__":
    main()
