"""Random frames into GPU memory (issue 29, item 2): CPU threads against nvCOMP's batched zstd on the GPU, for a
zstd cube stored a frame per chunk and the same frames stored in row blocks (``StorageSpec(row_blocks=N)``).

    python benchmarks/bench_gpu.py CUBE SEQUENCE [--row-blocks 1,16] [--frames 96] [--threads 1,4,8,16]
                                   [--processes 16] [--batches 1,16,64,256] [--stream 256] [--repeats 5]
                                   [--workdir DIR]

CUBE: a zstd cube (e.g. one ``convert`` wrote from ``benchmarks/realistic.py``'s sample); its ``images`` are
written again under ``--workdir`` (the library's own encoding and shard writer) in each layout of
``--row-blocks`` (1: a frame per chunk), the sequence's frames repeated to ``--frames`` (0: as they are), so that
random frames are distinct bytes on disk. Random (camera, frame) picks with replacement, the same for every path;
medians of ``--repeats``. Rows: one FrameReader on one thread (frames/s, each layout: what row blocks cost CPU
reads); N threads each reading with its own FrameReader and copying the frame to the GPU; ``--processes`` spawned
processes each reading with its own FrameReaders (host memory: the decoding without the GIL; 0: not measured);
for these CPU rows the layouts take turns within each repeat and each row gives its time against the first
layout's; a pinned batch's host-to-device copy alone (the bus); :class:`~nersemble_cube.training.gpu.GpuFrames`
at each batch size, one ``read`` at a time (frames/s, GB/s of decoded frames, peak GPU memory), its frames
compared with FrameReader's (bit-equal or the run stops), and ``GpuFrames.batches`` over 8 batches of
``--stream`` (the next batch read from disk while the GPU decodes one). Last, one byte of a stored chunk is changed in a copy: the read must
raise the crc32c error (checked on the GPU). ``--dataset-check CUBE ...``: for each cube, ``FrameDataset.gpu_batches``
against ``FrameDataset.batches`` (the CPU path) in several configurations (scale, dtype, channels, mattes, colour
correction where the cube has it; batches of one time and random batches across sequences): equal or the run stops;
and the rate of ``gpu_batches`` on the row-block copy (random batches of ``--stream``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import torch
import zarr

import nersemble_cube
from nersemble_cube import StorageSpec
from nersemble_cube.cube.schema import sequence_group
from nersemble_cube.cube.shards import ShardWriter
from nersemble_cube.training.gpu import GpuFrames


def rewritten(cube: Path, seq: str, out: Path, blocks: int, frames: int) -> Path:
    """A copy of ``cube`` whose ``images`` of ``seq`` are stored in ``blocks`` row blocks (zstd; 1: a frame per
    chunk), its frames repeated to ``frames`` (0: as they are; the ``time`` coordinate follows)."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(cube, out)
    group = sequence_group(seq)
    old = zarr.open_array(str(cube), path=f"{group}/images", mode="r")
    data = old[:]
    if frames:
        data = np.concatenate([data] * -(-frames // data.shape[1]), axis=1)[:, :frames]
        for other in ("alpha", "alpha_complete"):  # the mattes keep their frames: left out of the copy
            shutil.rmtree(out / group / other, ignore_errors=True)
        times = zarr.open_array(str(out), path=f"{group}/time", mode="r")
        shutil.rmtree(out / group / "time")
        zarr.create_array(str(out), name=f"{group}/time", data=np.arange(frames, dtype=times.dtype),
                          attributes=times.attrs.asdict(), dimension_names=times.metadata.dimension_names)
    enc = StorageSpec(row_blocks=blocks).frame_encoding(data.shape[1], data.shape[2:])
    shutil.rmtree(out / group / "images")
    new = zarr.create_array(str(out), name=f"{group}/images", shape=data.shape, dtype=old.dtype, chunks=enc["chunks"],
                            shards=enc.get("shards"), compressors=enc["compressors"], fill_value=0,
                            attributes=old.attrs.asdict(), dimension_names=old.metadata.dimension_names)
    ShardWriter(new).write((0,) * old.ndim, data)
    zarr.consolidate_metadata(str(out))  # xarray (FrameDataset) reads the consolidated copy
    return out


def damaged(cube: Path, seq: str, out: Path) -> Path:
    """A copy of ``cube`` with one byte in the middle of the first stored chunk of ``seq``'s images changed."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(cube, out)
    reader = nersemble_cube.FrameReader(out, seq)
    coords, _ = reader.chunk_of(reader.cameras[0], 0)
    shard, offset, spans = reader._chunks.frame_ranges(coords)
    with open(out / shard, "r+b") as f:
        f.seek(offset + int(spans[0, 1]) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x10]))
    return out


def check_dataset(cube: Path) -> None:
    """``FrameDataset.gpu_batches`` equals ``FrameDataset.batches`` on ``cube`` (or the run stops)."""
    from nersemble_cube.training.dataset import FrameDataset, MultiViewBatches, RandomFrames

    base = FrameDataset(cube)
    configs = [{}, {"scale": 2, "dtype": "float32", "channels": "first"}, {"scale": 3}]
    if all(s.path.startswith("dataset/") for s in base.sequences):
        configs += [{"color_correction": True}, {"color_correction": True, "scale": 2, "channels": "first"}]
    for config in configs:
        data = FrameDataset(cube, **config)
        random = list(RandomFrames(data, seed=1))
        samplers = [list(MultiViewBatches(data))[:3]]
        sizes = {tuple(data[i]["image"].shape) for i in range(len(data))}
        if len(sizes) == 1:  # one frame size: random batches across sequences
            samplers.append([random[i:i + 5] for i in range(0, min(len(random), 15), 5)])
        checked = 0
        for sampler in samplers:
            for want, got in zip(data.batches(sampler, threads=4), data.gpu_batches(sampler, threads=4)):
                assert list(want) == list(got), (list(want), list(got))
                for key, value in want.items():
                    other = got[key]
                    if isinstance(other, torch.Tensor):
                        host = other.cpu().numpy()
                        assert other.is_cuda and np.array_equal(host, value), (
                            config, key, host.shape, value.shape, int((host != value).sum()) if host.shape == value.shape else None)
                        assert other.dtype == torch.from_numpy(value).dtype, (config, key)
                    elif isinstance(value, dict):
                        assert all(np.array_equal(value[k], other[k]) for k in value), (config, key)
                    else:
                        assert np.array_equal(np.asarray(value), np.asarray(other)), (config, key)
                checked += 1
        print(f"{cube.name} {config or 'defaults'}: gpu_batches equals batches ({checked} batches; "
              f"keys {', '.join(want)})", flush=True)


def median_rate(fn, n: int, repeats: int) -> float:
    """Items per second of ``fn()`` handling ``n`` items, median of ``repeats`` (after one untimed call)."""
    return interleaved({"": fn}, n, repeats)[""]


def interleaved(fns: dict, n: int, repeats: int) -> dict[str, float]:
    """Items per second of each ``fns[name]()`` handling ``n`` items: the functions run in turn within each of
    ``repeats`` rounds (after one untimed round), so that a drift of the machine's speed hits each alike; medians."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    return {name: n / statistics.median(t) for name, t in times.items()}


def report(rates: dict[str, float], what: str, frame_bytes: int) -> None:
    """One table row per layout, each with its slowdown against the first layout's rate (the same run)."""
    first = next(iter(rates.values()))
    for name, rate in rates.items():
        print(f"| {name} | {what} | {rate:.0f} frames/s | {rate * frame_bytes / 1e9:.2f} GB/s | "
              f"{first / rate:.2f}x the time of {next(iter(rates))} |", flush=True)


_READERS: dict = {}
"""A worker process's FrameReaders (``--processes``), one per layout."""


def _open_readers(cubes: list[Path], sequence: str) -> None:
    _READERS.update({cube: nersemble_cube.FrameReader(cube, sequence) for cube in cubes})


def _read_frames(job: tuple[Path, list]) -> int:
    cube, keys = job
    for key in keys:
        _READERS[cube].read(*key)
    return len(keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cube", type=Path)
    ap.add_argument("sequence")
    ap.add_argument("--row-blocks", default="1,16")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--threads", default="1,4,8,16")
    ap.add_argument("--gpu-threads", type=int, default=8)
    ap.add_argument("--processes", type=int, default=16)
    ap.add_argument("--batches", default="1,16,64,256")
    ap.add_argument("--stream", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/benchgpu"))
    ap.add_argument("--dataset-check", type=Path, nargs="*", default=[])
    args = ap.parse_args()
    for cube in args.dataset_check:
        check_dataset(cube)
    cubes = {}
    for blocks in map(int, args.row_blocks.split(",")):
        name = "frame per chunk" if blocks == 1 else f"{blocks} row blocks"
        cubes[name] = rewritten(args.cube, args.sequence, args.workdir / f"b{blocks}.zarr", blocks, args.frames)
    first = next(iter(cubes.values()))
    reader = nersemble_cube.FrameReader(first, args.sequence)
    frame_bytes = reader.read(reader.cameras[0], 0).nbytes
    rng = np.random.default_rng(0)
    n = max(256, 8 * args.stream)
    keys = [(reader.cameras[rng.integers(len(reader.cameras))], int(rng.integers(reader.n_frames))) for _ in range(n)]
    print(f"{args.cube} {args.sequence} (frames repeated to {reader.n_frames}): {len(reader.cameras)} cameras x "
          f"{reader.n_frames} frames, {frame_bytes / 1e6:.2f} MB a frame; {torch.cuda.get_device_name()}")

    for name, cube in cubes.items():
        stored = sum(f.stat().st_size for f in (cube / sequence_group(args.sequence) / "images").rglob("*") if f.is_file())
        print(f"{name}: {stored / 1e6:.0f} MB stored")
    ones = {name: nersemble_cube.FrameReader(cube, args.sequence) for name, cube in cubes.items()}
    report(interleaved({name: lambda one=one: [one.read(*k) for k in keys[:32]] for name, one in ones.items()},
                       32, args.repeats), "FrameReader, 1 thread, host memory", frame_bytes)
    local = threading.local()

    def to_gpu(cube: Path, key) -> torch.Tensor:
        if not hasattr(local, "readers"):
            local.readers = {}
        if cube not in local.readers:
            local.readers[cube] = nersemble_cube.FrameReader(cube, args.sequence)
        return torch.from_numpy(local.readers[cube].read(*key)).to("cuda", non_blocking=False)

    for t in map(int, args.threads.split(",")):  # the layouts in turn within each repeat: drift hits all alike
        with ThreadPoolExecutor(t) as pool:
            rates = interleaved({name: lambda cube=cube: list(pool.map(partial(to_gpu, cube), keys[:256]))
                                 for name, cube in cubes.items()}, 256, args.repeats)
        report(rates, f"{t} threads, FrameReader + .to(cuda)", frame_bytes)
    if args.processes:
        with mp.get_context("spawn").Pool(args.processes, _open_readers, (list(cubes.values()), args.sequence)) as pool:
            groups = [keys[i:i + 8] for i in range(0, 256, 8)]
            rates = interleaved({name: lambda cube=cube: pool.map(_read_frames, [(cube, g) for g in groups])
                                 for name, cube in cubes.items()}, 256, args.repeats)
        report(rates, f"{args.processes} processes, FrameReader (host memory)", frame_bytes)

    batch = torch.from_numpy(np.stack([reader.read(*k) for k in keys[:64]])).pin_memory()
    rate = median_rate(lambda: batch.to("cuda", non_blocking=True), 64, args.repeats)
    print(f"| - | pinned host-to-device copy of 64 frames alone | {rate:.0f} frames/s | {rate * frame_bytes / 1e9:.2f} GB/s |")

    for name, cube in cubes.items():
        gpu = GpuFrames(cube, args.sequence, threads=args.gpu_threads)
        for b in map(int, args.batches.split(",")):
            got = gpu.read(keys[:b])
            for i in sorted({0, b // 2, b - 1}):
                want = reader.read(*keys[i])
                if not np.array_equal(got[i].cpu().numpy(), want):
                    raise SystemExit(f"{name}, batch {b}: frame {keys[i]} differs from FrameReader's")
            torch.cuda.reset_peak_memory_stats()
            rate = median_rate(lambda b=b, gpu=gpu: gpu.read(keys[:b]), b, args.repeats)
            peak = torch.cuda.max_memory_allocated() / 1e9
            print(f"| {name} | GpuFrames.read, batch {b} | {rate:.0f} frames/s | {rate * frame_bytes / 1e9:.2f} GB/s | "
                  f"peak {peak:.2f} GB (torch) | bit-equal |", flush=True)
        s = args.stream
        groups = [keys[i * s:(i + 1) * s] for i in range(8)]
        seen = [0]

        def stream(groups=groups, gpu=gpu):
            for j, frames in enumerate(gpu.batches(groups)):
                if j == 7:
                    if not np.array_equal(frames[-1].cpu().numpy(), reader.read(*groups[-1][-1])):
                        raise SystemExit(f"{name}: the last frame of batches() differs from FrameReader's")
                    seen[0] += 1
        torch.cuda.reset_peak_memory_stats()
        rate = median_rate(stream, 8 * s, args.repeats)
        peak = torch.cuda.max_memory_allocated() / 1e9
        print(f"| {name} | GpuFrames.batches, 8 batches of {s} | {rate:.0f} frames/s | {rate * frame_bytes / 1e9:.2f} GB/s | "
              f"peak {peak:.2f} GB (torch) | bit-equal ({seen[0]} runs) |", flush=True)
        del gpu, stream  # its last batch, kept until a next read, would count in the next layout's peaks

    from nersemble_cube.training.dataset import FrameDataset, RandomFrames

    for name, cube in cubes.items():
        data = FrameDataset(cube, [args.sequence], alpha=False)
        picks = list(RandomFrames(data, num_samples=8 * args.stream, replacement=True, seed=2))
        groups = [picks[i * args.stream:(i + 1) * args.stream] for i in range(8)]
        rate = median_rate(lambda data=data, groups=groups: all(b is not None for b in data.gpu_batches(groups)),
                           8 * args.stream, args.repeats)
        print(f"| {name} | FrameDataset.gpu_batches, 8 random batches of {args.stream} | {rate:.0f} frames/s | "
              f"{rate * frame_bytes / 1e9:.2f} GB/s |", flush=True)

    broken = damaged(first, args.sequence, args.workdir / "damaged.zarr")
    try:
        GpuFrames(broken, args.sequence).read([(reader.cameras[0], 0)])
    except ValueError as e:
        print(f"damaged chunk: {e}")
    else:
        raise SystemExit("a damaged chunk was read without an error")


if __name__ == "__main__":
    main()
