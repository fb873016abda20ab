"""Export benchmark (issue 4): submission encoding throughput and peak memory.

    python benchmarks/bench_export.py [--frames 300] [--repeats 3]

Baseline: the ffmpeg binary alone encoding the same raw frames from a file with the same settings
(libx264, yuv420p, crf 14, 73 fps: the toolkit's mediapy call). Ours: ``export_submission`` of one
nvs-sized camera (1604x1100) from a dask-backed prediction, one chunk per frame, streamed into
ffmpeg. Peak memory: maximum resident set of a fresh process exporting 1/3 and all of the frames
(Python side, and the ffmpeg child separately), to show it does not grow with the video's length.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import print_table

HEIGHT, WIDTH = 1604, 1100


def frames_lazy(n: int):
    """A dask array (n, H, W, 3) uint8 of moving textured frames; at most 8 distinct frames in memory."""
    import dask.array as da

    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = [np.clip(128 + 60 * np.sin(x / 17 + k / 3) * np.cos(y / 23) + 30 * np.sin((x + y) / 5), 0, 255)
            .astype(np.uint8)[..., None].repeat(3, -1) for k in range(8)]
    # one dask array over the 8 frames, indexed per frame: no copies (da.from_array per frame would copy each)
    return da.from_array(np.stack(base), chunks=(1, HEIGHT, WIDTH, 3))[np.arange(n) % 8]


def export_once(n: int, zip_path: Path) -> None:
    import xarray as xr

    from nersemble_cube import export_submission

    images = frames_lazy(n)[None]
    ds = xr.Dataset({"images": (("camera", "time", "y", "x", "channel"), images)},
                    coords={"camera": ["222200037"], "time": np.arange(n)},
                    attrs={"participant_id": 388, "sequence": "GLASSES", "fps": 73.0})
    tree = xr.DataTree.from_dict({"/388/GLASSES": ds})
    export_submission(tree, zip_path, "nvs", partial=True, workers=1)


def child_peak(n: int, zip_path: Path) -> dict:
    """Run one export in a fresh process: its own peak RSS (VmHWM, MiB) and ffmpeg's (GNU time's %M around
    ffmpeg: ru_maxrss of a forked child would include the forking process's own peak)."""
    peak_file = zip_path.with_suffix(".ffmpeg-peak")
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_export as b, json;"
            "import nersemble_cube.submission.export as ex; orig = ex.encode_command;"
            f"ex.encode_command = lambda *a: ['/usr/bin/time', '-f', '%M', '-o', {str(peak_file)!r}] + orig(*a);"
            f"from pathlib import Path; b.export_once({n}, Path({str(zip_path)!r}));"
            "print(int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    own = int(out.stdout.strip().splitlines()[-1])
    return {"python_mib": own / 1024, "ffmpeg_mib": int(peak_file.read_text().split()[-1]) / 1024}


def rows(frames: int, repeats: int, work: Path) -> list[tuple[str, str, str, str]]:
    """The export rows of the suite's table."""
    from nersemble_cube.submission.export import encode_command

    raw = work / "frames.rgb"
    with raw.open("wb") as f:
        for block in frames_lazy(frames).to_delayed().ravel():
            f.write(np.ascontiguousarray(block.compute()).tobytes())
    cmd = encode_command(work / "base.mp4", WIDTH, HEIGHT, 73.0)
    cmd[cmd.index("-i") + 1] = str(raw)
    base, ours = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        export_once(frames, work / "ours.zip")
        ours.append(time.perf_counter() - t0)
    raw.unlink()
    tb, to = statistics.median(base), statistics.median(ours)
    small = child_peak(frames // 3, work / "m1.zip")
    large = child_peak(frames, work / "m2.zip")
    return [
        (f"export of one camera ({frames} frames)", f"{frames / to:.1f} frames/s",
         f"ffmpeg alone encoding the raw frames: {frames / tb:.1f} frames/s", f"{tb / to:.2f}x"),
        (f"peak memory, export {frames // 3} / {frames} frames",
         f"python {small['python_mib']:.0f} / {large['python_mib']:.0f} MiB, "
         f"ffmpeg {small['ffmpeg_mib']:.0f} / {large['ffmpeg_mib']:.0f} MiB", "-",
         f"{large['python_mib'] / small['python_mib']:.2f}x"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nersemble-bench-export-") as tmp:
        table = rows(args.frames, args.repeats, Path(tmp))
    print_table(f"one nvs camera, {args.frames} frames of {WIDTH}x{HEIGHT}, dask-backed, medians of {args.repeats}",
                table)


if __name__ == "__main__":
    main()
