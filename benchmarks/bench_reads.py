"""Warm random single-frame reads of a zstd cube, each path against the bare decode of the same chunks.

    python benchmarks/bench_reads.py --workdir /tmp/benchreads --cameras 4 --frames 96 [--reads 60]

Workload: :func:`realistic.realistic_sample` converted with the default preset (zstd). Rows, medians of
``--reads`` random (camera, frame) picks after 5 warm-up reads, the paths taking turns on every pick (and
again each path in a loop of its own, where a decode may reuse its freed output buffer's pages):
``open(dask=False).sel(...).values`` (frame arrays read through ``ChunkReader``), xarray's own zarr backend
on the same store (``xr.open_datatree``), ``FrameReader.read``, and the floor: imagecodecs' zstd decode of
the pick's chunk bytes (read beforehand; no checksum, no file read).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import imagecodecs
import xarray as xr
import zarr
from zarr.abc.store import RangeByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import nersemble_cube
from nersemble_cube.cube.shards import ChunkReader

from common import interleaved_medians_ms, median_ms_per_call

SEQ = "nvs/388/sequences/GLASSES"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--reads", type=int, default=60)
    args = ap.parse_args()
    from realistic import realistic_sample

    source = realistic_sample(args.workdir / "source", args.frames, args.cameras)
    cube = args.workdir / "cube.zarr"
    if not cube.exists():
        nersemble_cube.convert(source, cube, check_space=False)
    ours = nersemble_cube.open(cube, dask=False)[SEQ].to_dataset()
    plain = xr.open_datatree(cube, engine="zarr", chunks=None, consolidated=True, zarr_format=3)[SEQ].to_dataset()
    reader = nersemble_cube.FrameReader(cube, SEQ)
    cameras = ours.camera.values.tolist()
    rng = random.Random(0)
    picks = [(rng.choice(cameras), rng.randrange(ours.sizes["time"])) for _ in range(args.reads)]
    # the floor: the stored bytes of each picked chunk, decoded by imagecodecs alone (crc32c trailer cut off)
    array = zarr.open_array(str(cube), path=f"{SEQ}/images", mode="r")
    chunks = ChunkReader(array)
    blobs = []
    for camera, t in picks:
        shard = (cameras.index(camera), t // chunks.per_shard[1], 0, 0, 0)
        offset, length = chunks._index(shard)[(0, t % chunks.per_shard[1], 0, 0, 0)]
        data = sync(array.store.get(chunks.key(shard), default_buffer_prototype(),
                                    RangeByteRequest(int(offset), int(offset + length))))
        blobs.append(data.to_bytes()[:-4])

    floor = "bare zstd decode of the chunk (imagecodecs)"
    paths = {
        "open(dask=False).sel(camera, time).values": lambda c, t, b: ours.images.sel(camera=c, time=t).values,
        "xarray's zarr backend, same selection": lambda c, t, b: plain.images.sel(camera=c, time=t).values,
        "FrameReader.read": lambda c, t, b: reader.read(c, t),
        floor: lambda c, t, b: imagecodecs.zstd_decode(b),
    }
    calls = [(c, t, b) for (c, t), b in zip(picks, blobs)]
    interleaved_medians_ms(paths, calls[:5])  # warm: shard indexes
    rows = interleaved_medians_ms(paths, calls)
    alone = {name: median_ms_per_call(fn, calls) for name, fn in paths.items()}
    print(f"workload: {args.cameras} cameras x {args.frames} realistic frames, zstd; {args.reads} warm random reads\n")
    print("| path | ms, in turns (median) | x the bare decode | ms, each in a loop of its own | x the bare decode |")
    print("|---|---|---|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.2f} | {ms / rows[floor]:.2f}x | {alone[name]:.2f} | {alone[name] / alone[floor]:.2f}x |")

if __name__ == "__main__":
    main()
