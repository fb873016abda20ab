"""Preprocessing benchmark (issue 6): composite on white + downscale 2 of one nvs camera.

    python benchmarks/bench_preprocess.py [--frames 120] [--workdir DIR]

Rows: ``nersemble-cube preprocess`` with 1 and with 2 dask workers (speedup), against the way
training scripts do it today, per frame: the toolkit's ``load_image`` (cv2 seek + read, verbatim)
and ``load_alpha_map``, numpy compositing and ``cv2.resize(..., INTER_AREA)``; and the peak memory
(VmHWM) of a fresh process preprocessing 1/3 and all of the frames.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

import nersemble_cube
from nersemble_cube.preprocessing import Steps, preprocess

from common import SEQ, arguments, nvs_sample, print_table, timed, toolkit_composite, workdir

PEAK = "print(int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024)"


def toolkit_loop(src: Path, serial: str, n: int) -> None:
    import cv2

    for t in range(n):
        out, _ = toolkit_composite(src, serial, t)
        out = cv2.resize(out, (out.shape[1] // 2, out.shape[0] // 2), interpolation=cv2.INTER_AREA)
        (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def main() -> None:
    args = arguments(__doc__, frames=120)
    work = workdir(args, "pre")
    rows = []
    cubes = {}
    for n in (args.frames // 3, args.frames):
        src = nvs_sample(work / f"sample-{args.content}-1x{n}", n, content=args.content)
        cubes[n] = work / f"cube-1x{n}.zarr"
        if not cubes[n].exists():
            nersemble_cube.convert(src, cubes[n], check_space=False)
    cube, src = cubes[args.frames], work / f"sample-1x{args.frames}"
    steps = Steps(composite="white", downscale=2)
    times = {}
    for workers in (1, 2):
        def run(workers=workers):
            out = work / "pre.zarr"
            shutil.rmtree(out, ignore_errors=True)
            preprocess(cube, out, steps, workers=workers)
        times[workers] = median = statistics.median(timed(run) for _ in range(args.repeats))
        rows.append((f"preprocess, {workers} worker(s)", f"{args.frames / median:.1f} frames/s", "", ""))
    rows[-1] = (rows[-1][0], rows[-1][1], f"1 worker: {args.frames / times[1]:.1f} frames/s",
                f"{times[1] / times[2]:.2f}x speedup")
    serial = str(nersemble_cube.open(cube)[SEQ].camera.values[0])
    t_tool = statistics.median(timed(lambda: toolkit_loop(src, serial, args.frames)) for _ in range(args.repeats))
    rows.append(("preprocess, 2 workers", f"{args.frames / times[2]:.1f} frames/s",
                 f"toolkit load_image + numpy + cv2.resize loop: {args.frames / t_tool:.1f} frames/s",
                 f"{t_tool / times[2]:.1f}x faster"))
    peaks = []
    for n in (args.frames // 3, args.frames):
        out = work / f"mem-{n}.zarr"
        shutil.rmtree(out, ignore_errors=True)
        code = ("from nersemble_cube.preprocessing import preprocess, Steps; "
                f"preprocess({str(cubes[n])!r}, {str(out)!r}, Steps(composite='white', downscale=2), workers=2); " + PEAK)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        peaks.append(float(res.stdout.strip().splitlines()[-1]))
    rows.append((f"peak memory, {args.frames // 3} / {args.frames} frames", f"{peaks[0]:.0f} / {peaks[1]:.0f} MiB", "-",
                 f"{peaks[1] / peaks[0]:.2f}x"))
    print_table(f"one nvs camera (1100x1604), composite on white + downscale 2, medians of {args.repeats}", rows)


if __name__ == "__main__":
    main()
