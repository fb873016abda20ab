"""Conversion against its physical limit, and its scale-out curve (issue 16, items 1 and 4).

    python benchmarks/bench_convert.py [--cameras 4] [--frames 96] [--workers 1,2] [--codecs zstd]
        [--row-blocks 1] [--schedulers threads] [--repeats 3] [--workdir DIR]

The limit, per frame, is ffmpeg's decode of the mp4 plus the codec's bare encode of the decoded frame
(``storage.encoded_size``, no zarr, no file): measured here with the same worker count, every worker
decoding one video (the same ffmpeg pipe the converter uses) and encoding each frame it gets. Rows,
medians of ``--repeats``, all in this run: frames/s of the limit and of ``convert`` (threads, or a
local dask.distributed cluster of worker processes started outside the timing), their ratio, and the
parallel efficiency ``rate(n) / (n * rate(1))`` when 1 is among the worker counts. Images and mattes
count as frames. ``--row-blocks 1,8``: each lossless preset also with frames stored in that many row blocks
(``StorageSpec.row_blocks``, the GPU layout), against the same limit.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import nersemble_cube
from nersemble_cube.cube.storage import StorageSpec, encoded_size
from nersemble_cube.source.converters.video import iter_frames, probe

from common import add_content_argument, nvs_sample, print_table, timed, workdir


def limit(videos: list[Path], spec: StorageSpec, workers: int) -> int:
    """Decode every video and encode each frame bare with ``spec`` (mattes as one channel); returns frames."""
    def one(path: Path) -> int:
        matte = path.parent.name == "alpha_maps"
        n = 0
        for batch in iter_frames(probe(path), batch=spec.frames_per_shard, reuse=True):
            for frame in batch:
                encoded_size(frame[..., 0] if matte else frame, spec)
            n += len(batch)
        return n

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(one, videos))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--codecs", default="zstd", help="comma-separated presets")
    ap.add_argument("--row-blocks", default="1", help="comma-separated row-block counts (lossless presets)")
    ap.add_argument("--schedulers", default="threads", help="threads and/or processes, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    add_content_argument(ap)
    args = ap.parse_args()
    work = workdir(args, "convert")
    src = nvs_sample(work / f"sample-{args.content}-{args.cameras}x{args.frames}", args.frames, args.cameras,
                     content=args.content)
    videos = sorted(src.rglob("*.mp4"))
    frames = args.cameras * args.frames * 2
    target = work / "bench.zarr"
    rates: dict[tuple, float] = {}
    rows = []
    layouts = [(c, b) for c in args.codecs.split(",") for b in map(int, args.row_blocks.split(","))
               if b == 1 or StorageSpec(c).lossless]
    for codec, blocks in layouts:
        spec = StorageSpec(codec, row_blocks=blocks)
        if blocks > 1:
            codec = f"{codec} in {blocks} row blocks"
        for n in map(int, args.workers.split(",")):
            rates[codec, "limit", n] = frames / statistics.median(
                timed(lambda: limit(videos, StorageSpec(spec.codec), n)) for _ in range(args.repeats))
            for scheduler in args.schedulers.split(","):
                if scheduler == "processes":
                    from distributed import LocalCluster

                    cluster = LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None)
                else:
                    cluster = nullcontext()
                with cluster:
                    where = cluster.scheduler_address if scheduler == "processes" else "threads"

                    def run() -> None:
                        shutil.rmtree(target, ignore_errors=True)
                        nersemble_cube.convert(src, target, storage=spec, workers=n, scheduler=where, check_space=False)

                    rates[codec, scheduler, n] = frames / statistics.median(timed(run) for _ in range(args.repeats))
                ours, bound = rates[codec, scheduler, n], rates[codec, "limit", n]
                one = rates.get((codec, scheduler, 1))
                efficiency = f"{ours / (n * one):.2f}" if one else "-"
                rows.append((f"{codec}, {scheduler}, {n} workers", f"{ours:.1f} frames/s",
                             f"decode + bare encode: {bound:.1f} frames/s",
                             f"{ours / bound:.2f}x of the limit ({bound / ours:.2f}x slower); efficiency {efficiency}"))
                print(rows[-1], flush=True)
    shutil.rmtree(target, ignore_errors=True)
    print_table(f"{args.cameras} cameras x {args.frames} frames of 1604x1100 + mattes ({frames} frames, "
                f"{args.content}), medians of {args.repeats}", rows)


if __name__ == "__main__":
    main()
