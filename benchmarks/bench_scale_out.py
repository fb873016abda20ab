"""Scale-out benchmark (issue 7): conversion on 1 and 2 local dask.distributed worker processes,
requests and bytes to open a cube over HTTP and read one frame, and a paper estimate for the
full benchmark.

    python benchmarks/bench_scale_out.py [--cameras 4] [--frames 96] [--repeats 3] [--workdir DIR]

Rows (medians of ``--repeats`` runs, in the same run so the ratios hold on a noisy machine):
``convert --scheduler processes --workers 1`` and ``--workers 2`` (the speed-up), and the default
threads for reference; a point-cloud conversion rate; then the HTTP figures of a cube served by a
Range-capable static file server on 127.0.0.1. The estimate scales the measured per-frame and
per-point costs to the benchmark's sizes (toolkit README: nvs 3516 frames x 13 cameras, mono
12,013 train frames, 3516 point clouds of 66.3 GB).
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

import nersemble_cube
from nersemble_cube.source.converters.pcd import probe_pcd
from nersemble_cube.testing import serve_folder

from common import SEQ, arguments, nvs_sample, timed, workdir

NVS_FRAMES, NVS_CAMERAS, MONO_FRAMES = 3516, 13, 12_013
CLOUD_BYTES = (69.6 - 3.34) * 1e9


def convert_time(src: Path, work: Path, repeats: int, **kwargs) -> float:
    times = []
    for _ in range(repeats):
        target = work / "bench.zarr"
        shutil.rmtree(target, ignore_errors=True)
        times.append(timed(lambda: nersemble_cube.convert(src, target, check_space=False, **kwargs)))
    return statistics.median(times)


def http_figures(cube: Path) -> dict[str, float]:
    with serve_folder(cube.parent) as served:
        url = f"{served.url}/{cube.name}"
        tree = nersemble_cube.open(url)
        opened = list(served.gets)
        serial = str(tree[SEQ].camera.values[0])
        tree[SEQ].images.sel(camera=serial, time=1).values
        frame = served.gets[len(opened):]
        before = len(served.gets)
        nersemble_cube.read_frame(url, SEQ, serial, 1)
        cheap = served.gets[before:]
    return {"open_requests": len(opened), "open_bytes": sum(r.nbytes for r in opened),
            "frame_requests": len(frame), "frame_bytes": sum(r.nbytes for r in frame),
            "read_frame_requests": len(cheap), "read_frame_bytes": sum(r.nbytes for r in cheap)}


def main() -> None:
    args = arguments(__doc__, frames=96, cameras=4)
    work = workdir(args, "scale")
    src = nvs_sample(work / f"sample-{args.content}-{args.cameras}x{args.frames}", args.frames, args.cameras,
                     content=args.content)
    clouds = nvs_sample(work / "clouds", 2, pointcloud_frames=tuple(range(8)), pointcloud_points=400_000)
    frames = args.cameras * args.frames * 2  # images and alpha mattes
    from distributed import LocalCluster

    cluster_times = {}
    for n in (1, 2):  # the cluster is started once per size, outside the timings (start-up reported apart)
        t0 = time.perf_counter()
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            started = time.perf_counter() - t0
            cluster_times[n] = convert_time(src, work, args.repeats, scheduler=cluster.scheduler_address)
    one, two = cluster_times[1], cluster_times[2]
    threads_one = convert_time(src, work, args.repeats, scheduler="threads", workers=1)
    threads = convert_time(src, work, args.repeats, scheduler="threads", workers=2)
    video_only = convert_time(clouds, work, args.repeats, scheduler="threads", workers=1)
    pcds = sorted((clouds / SEQ / "pointclouds").glob("*.pcd"))
    cloud_bytes = sum(p.stat().st_size for p in pcds)
    shutil.rmtree(work / "bench.zarr", ignore_errors=True)
    print(f"conversion of {args.cameras} cameras x {args.frames} frames of 1604x1100 (+ mattes), "
          f"median of {args.repeats}:")
    print(f"  processes, 1 worker : {one:6.2f} s  {frames / one:6.1f} frames/s")
    print(f"  processes, 2 workers: {two:6.2f} s  {frames / two:6.1f} frames/s  speed-up {one / two:.2f}x")
    print(f"  threads,   1 worker : {threads_one:6.2f} s  {frames / threads_one:6.1f} frames/s")
    print(f"  threads,   2 workers: {threads:6.2f} s  {frames / threads:6.1f} frames/s  speed-up "
          f"{threads_one / threads:.2f}x")
    print(f"  (starting a local cluster of 2 processes: {started:.1f} s, not included above)")
    print(f"point clouds: {len(pcds)} x {probe_pcd(pcds[0]).n_points} points, {cloud_bytes / 1e6:.0f} MB, "
          f"converted with 2 frames of 1 camera in {video_only:.2f} s (1 worker)")

    target = work / "http.zarr"
    shutil.rmtree(target, ignore_errors=True)
    nersemble_cube.convert(src, target, check_space=False)
    h = http_figures(target)
    print(f"HTTP: open {h['open_requests']} requests, {h['open_bytes'] / 1e3:.1f} kB; one frame through the tree "
          f"{h['frame_requests']} requests, {h['frame_bytes'] / 1e6:.2f} MB; read_frame in a fresh call "
          f"{h['read_frame_requests']} requests, {h['read_frame_bytes'] / 1e6:.2f} MB")

    per_frame = one / frames  # seconds per (camera, frame) of 1604x1100, one worker
    per_mono = per_frame * (512 * 512) / (1604 * 1100)  # pixels scale the cost
    per_cloud_byte = max(video_only - 4 * per_frame, 1e-9) / cloud_bytes
    work_s = NVS_FRAMES * NVS_CAMERAS * 2 * per_frame + MONO_FRAMES * 2 * per_mono + CLOUD_BYTES * per_cloud_byte
    longest = 1118 * per_frame  # the longest task: one 1118-frame nvs video
    print("paper estimate, full benchmark with all point clouds (ideal scaling, then the longest task):")
    for w in (1, 8, 64):
        print(f"  {w:2d} workers: {max(work_s / w, longest) / 3600:6.2f} h")


if __name__ == "__main__":
    main()
