"""The benchmark suite: every hot path against the toolkit and against what the machine allows.

    pip install -e ".[bench]"
    python benchmarks/bench_suite.py [--frames 120] [--cameras 3] [--repeats 3] [--workdir DIR]

Builds an nvs-resolution workload with the sample generator (3 cameras x 120 frames, images and
alpha mattes; kept in --workdir to reuse), and prints one table whose every row is a ratio against
a baseline measured in the same run (medians; the machine is shared and noisy):

- random single-frame read in a fresh process vs the toolkit's ``load_image`` (cv2 seek + read,
  reproduced verbatim: the toolkit itself pulls torch and open3d), and vs the codec alone decoding
  the same frame;
- sequential read of a whole camera vs the toolkit's ``load_all_images`` (imageio's pyav plugin,
  verbatim) and vs a numpy copy of the same bytes;
- conversion vs the ffmpeg binary decoding the same mp4s to rawvideo (same parallelism);
- export vs the ffmpeg binary encoding the same raw frames with the same settings (bench_export.py);
- store size per codec vs the mp4s, and PSNR of the lossy preset;
- peak memory of convert and export at 1/3 and all of the frames.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imageio_ffmpeg
import numpy as np

import nersemble_cube
from nersemble_cube import StorageSpec, convert
from nersemble_cube.cube.store import stored_bytes
from nersemble_cube.cube.storage import CODECS

from common import (add_content_argument, median_ms_per_call, median_time, nvs_sample, print_table,
                    toolkit_load_all_images)

HERE = Path(__file__).parent
SEQ = "nvs/388/sequences/GLASSES"


def fresh_process_ms(code: str, repeats: int) -> float:
    """Median of the time a fresh Python process reports for ``code`` (which prints its own seconds)."""
    out = []
    for _ in range(repeats):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out.append(float(res.stdout.strip().splitlines()[-1]) * 1e3)
    return statistics.median(out)


# Fresh-process reads are timed from before the imports: what a new worker process pays for its first frame.
TOOLKIT_LOAD_IMAGE = """
import time
t0 = time.perf_counter()
import cv2
video_capture = cv2.VideoCapture({path!r})            # VideoFrameLoader.__init__
video_capture.set(cv2.CAP_PROP_POS_FRAMES, {t})       # VideoFrameLoader.load_frame
success, image = video_capture.read()
image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
print(time.perf_counter() - t0)
"""

CUBE_OPEN_READ = """
import time
t0 = time.perf_counter()
import nersemble_cube
ds = nersemble_cube.open({cube!r}, dask=False)[{seq!r}].to_dataset()
frame = ds.images.sel(camera={serial!r}, time={t}).values
print(time.perf_counter() - t0)
"""

CUBE_READ_FRAME = """
import time
t0 = time.perf_counter()
import nersemble_cube
frame = nersemble_cube.read_frame({cube!r}, {seq!r}, {serial!r}, {t})
print(time.perf_counter() - t0)
"""

PEAK = "print(int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024)"
"""Peak resident memory (MiB) of the process that runs it: VmHWM is per address space, so unlike
ru_maxrss it does not carry over the parent's peak through fork and exec."""


def ffmpeg_decode_all(videos: list[Path], workers: int) -> None:
    exe = imageio_ffmpeg.get_ffmpeg_exe()

    def one(path: Path) -> None:
        subprocess.run([exe, "-v", "error", "-nostdin", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-y", "/dev/null"], check=True)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, videos))


def convert_peak_mib(src: Path, target: Path) -> float:
    code = f"import nersemble_cube; nersemble_cube.convert({str(src)!r}, {str(target)!r}, check_space=False); " + PEAK
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reads", type=int, default=15)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the generated sample here to reuse it")
    add_content_argument(ap)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nersemble-bench-"))
    rows: list[tuple[str, str, str, str]] = []
    src = work / f"sample-{args.content}-{args.cameras}x{args.frames}"
    print(f"writing the {args.content} workload to {src} (if it is not there) ...", file=sys.stderr)
    nvs_sample(src, args.frames, args.cameras, content=args.content)
    videos = sorted(src.rglob("*.mp4"))
    frames_total = args.frames * len(videos)
    mp4_bytes = sum(v.stat().st_size for v in videos)

    # -- conversion ---------------------------------------------------------------------------------------------
    t_ffmpeg = median_time(lambda: ffmpeg_decode_all(videos, args.workers), args.repeats)
    sizes, cubes = {}, {}
    for codec in CODECS:
        target = work / f"cube-{codec}.zarr"

        def run(target=target, codec=codec):
            shutil.rmtree(target, ignore_errors=True)
            convert(src, target, storage=StorageSpec(codec), workers=args.workers, check_space=False)

        t_conv = median_time(run, args.repeats if codec in ("zstd", "lz4") else 1)
        sizes[codec], cubes[codec] = stored_bytes(target), target
        rows.append((f"conversion, {codec}", f"{frames_total / t_conv:.0f} frames/s",
                     f"ffmpeg decoding to rawvideo: {frames_total / t_ffmpeg:.0f} frames/s", f"{t_ffmpeg / t_conv:.2f}x"))
    cube = cubes["zstd"]

    # -- random single-frame reads --------------------------------------------------------------------------------
    ds = nersemble_cube.open(cube, dask=False)[SEQ].to_dataset()
    serials = ds.camera.values.tolist()
    rng = random.Random(0)
    picks = [(rng.choice(serials), rng.randrange(args.frames)) for _ in range(args.reads)]
    path = {s: str(src / SEQ / f"images/cam_{s}.mp4") for s in serials}
    t_tool = statistics.median(fresh_process_ms(TOOLKIT_LOAD_IMAGE.format(path=path[s], t=t), 1) for s, t in picks)
    for label, code in (("read_frame", CUBE_READ_FRAME), ("open(dask=False) + .sel", CUBE_OPEN_READ)):
        t_cube = statistics.median(fresh_process_ms(code.format(cube=str(cube), seq=SEQ, serial=s, t=t), 1)
                                   for s, t in picks)
        rows.append((f"random frame, fresh process, {label}", f"{t_cube:.1f} ms",
                     f"toolkit load_image (cv2 open + seek + read): {t_tool:.1f} ms", f"{t_tool / t_cube:.1f}x faster"))

    def per_read(fn) -> float:
        return median_ms_per_call(fn, picks)

    import zarr

    arr = zarr.open_array(str(cube), path=f"{SEQ}/images", mode="r")
    codec = arr.compressors[0]
    import numcodecs

    zstd = numcodecs.Zstd(level=codec.level)
    blobs = {(s, t): zstd.encode(np.ascontiguousarray(arr[serials.index(s), t])) for s, t in picks}
    t_codec = per_read(lambda s, t: zstd.decode(blobs[(s, t)]))
    t_warm = per_read(lambda s, t: ds.images.sel(camera=s, time=t).values)
    t_dask_ds = nersemble_cube.open(cube)[SEQ].to_dataset()
    t_dask = per_read(lambda s, t: t_dask_ds.images.sel(camera=s, time=t).values)
    rows.append(("random frame, open(dask=False), warm", f"{t_warm:.2f} ms",
                 f"zstd decoding that frame alone: {t_codec:.2f} ms", f"{t_warm / t_codec:.2f}x of it"))
    rows.append(("random frame, open() with dask, warm", f"{t_dask:.2f} ms",
                 f"zstd decoding that frame alone: {t_codec:.2f} ms", f"{t_dask / t_codec:.2f}x of it"))
    reader = nersemble_cube.FrameReader(cube, SEQ)
    t_reader = per_read(reader.read)
    rows.append(("random frame, FrameReader.read, warm", f"{t_reader:.2f} ms",
                 f"zstd decoding that frame alone: {t_codec:.2f} ms", f"{t_reader / t_codec:.2f}x of it"))
    from nersemble_cube.cube.codecs.jpegxl import DECODE_THREADS

    jxl = zarr.open_array(str(cubes["jpegxl"]), path=f"{SEQ}/images", mode="r")
    jxl_blobs = {(s, t): jxl.metadata.codecs[0].codecs[0]._encode(arr[serials.index(s), t]) for s, t in picks}
    import imagecodecs

    t_jxl_codec = per_read(lambda s, t: imagecodecs.jpegxl_decode(jxl_blobs[(s, t)], numthreads=DECODE_THREADS))
    jxl_reader = nersemble_cube.FrameReader(cubes["jpegxl"], SEQ)
    t_jxl = per_read(jxl_reader.read)
    rows.append((f"random frame, jpegxl, FrameReader.read, warm ({DECODE_THREADS} decode threads)", f"{t_jxl:.2f} ms",
                 f"JPEG-XL decoding that frame alone: {t_jxl_codec:.2f} ms", f"{t_jxl / t_jxl_codec:.2f}x of it"))

    # -- sequential read of a whole camera ---------------------------------------------------------------------------
    serial = serials[0]
    t_tool_all = median_time(lambda: toolkit_load_all_images(path[serial]), args.repeats)
    t_seq = median_time(lambda: arr[0], args.repeats)
    block = arr[0]
    t_copy = median_time(lambda: block.copy(), args.repeats)
    fps = args.frames / t_seq
    rows.append(("whole camera, zarr array[c]", f"{fps:.0f} frames/s",
                 f"toolkit load_all_images (pyav): {args.frames / t_tool_all:.0f} frames/s",
                 f"{t_tool_all / t_seq:.1f}x faster"))
    rows.append(("whole camera, zarr array[c]", f"{block.nbytes / t_seq / 1e9:.2f} GB/s",
                 f"numpy copy of the same bytes: {block.nbytes / t_copy / 1e9:.2f} GB/s", f"{t_copy / t_seq:.2f}x of it"))

    # -- size ------------------------------------------------------------------------------------------------------
    for codec, nbytes in sizes.items():
        quality = ""
        if codec == "jpegxl":
            lossy = zarr.open_array(str(cubes[codec]), path=f"{SEQ}/images", mode="r")[0]
            mse = np.mean((lossy.astype(np.float64) - block) ** 2, axis=(1, 2, 3))
            psnr = 10 * np.log10(255 ** 2 / mse)
            quality = f", PSNR {np.mean(psnr):.1f} dB (worst frame {psnr.min():.1f}) vs the decoded mp4"
        files = sum(1 for p in (cubes[codec] / SEQ / "images").rglob("*") if p.is_file())
        rows.append((f"store size, {codec}", f"{nbytes / 1e6:.1f} MB ({files} files for {args.cameras} cameras){quality}",
                     f"the mp4s: {mp4_bytes / 1e6:.1f} MB", f"{nbytes / mp4_bytes:.1f}x"))

    # -- peak memory of convert -----------------------------------------------------------------------------------
    short = nvs_sample(work / f"sample-{args.content}-{args.cameras}x{args.frames // 3}", args.frames // 3, args.cameras,
                       content=args.content)
    m_short = convert_peak_mib(short, work / "mem-short.zarr")
    m_long = convert_peak_mib(src, work / "mem-long.zarr")
    rows.append((f"peak memory, convert {args.frames // 3} / {args.frames} frames", f"{m_short:.0f} / {m_long:.0f} MiB",
                 "-", f"{m_long / m_short:.2f}x"))

    # -- export ----------------------------------------------------------------------------------------------------
    sys.path.insert(0, str(HERE))
    import bench_export

    rows += bench_export.rows(args.frames, args.repeats, work)

    for p in list(work.glob("cube-*.zarr")) + list(work.glob("mem-*.zarr")):
        shutil.rmtree(p, ignore_errors=True)
    print_table(f"nvs sample, {args.cameras} cameras x {args.frames} frames at 1100x1604 (images + alpha = "
                f"{len(videos)} videos), {args.workers} workers, medians of {args.repeats} runs / {args.reads} reads",
                rows)


if __name__ == "__main__":
    main()
