"""The full dataset (issue 18): conversion per codec preset at 3208x2200, and colour-corrected random reads.

    python benchmarks/bench_dataset.py --workdir /tmp/benchds --frames 8 --cameras 16 [--codecs zstd,lz4,jpegxl]

Workload: :func:`realistic.realistic_dataset_sample` (16 cameras of 3208x2200 natural photos drifting under
sensor noise, H.264 at the CRF nearest 20 KB per frame, as the real dataset's 8.7 MB per video of ~430
frames; full-size calibration, colour calibration (10 terms) and backgrounds). Rows:

- conversion per preset, ``workers`` = CPU count: frames/s (the 16 background stills included in the time),
  the frames' bytes (the sequence node) against the mp4s', and the background stills' bytes apart;
- a random colour-corrected frame (uint8), warm: the toolkit's own ``NeRSembleParticipantDataManager.load_image(
  ..., as_uint8=True, apply_color_correction=True)`` (OpenCV seek and read, then colour-science; imported
  from its wheel as the tests do: needs the test extra) against ours (``nersemble_cube.compat``'s, backed
  by the zstd cube) and the correction alone.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path

import nersemble_cube
from nersemble_cube import StorageSpec
from nersemble_cube.cube.store import stored_bytes

from common import median_ms_per_call, median_time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the toolkit's import shims

SEQ = "EXP-1-head"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--codecs", default="zstd,lz4,jpegxl")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--reads-only", action="store_true", help="skip the conversions: time reads of the zstd cube")
    args = ap.parse_args()
    from realistic import realistic_dataset_sample

    source = realistic_dataset_sample(args.workdir / "source", args.frames, args.cameras)
    mp4 = sum(p.stat().st_size for p in source.rglob("*.mp4"))
    n = args.frames * args.cameras
    workers = os.cpu_count()
    rows = [f"workload: {args.cameras} cameras x {args.frames} frames of 3208x2200, "
            f"{(source / 'realistic.txt').read_text().strip()}; mp4s {mp4 / 1e6:.1f} MB; {workers} workers", ""]
    rows += ["| preset | frames/s | frames' bytes | x mp4 bytes | per frame | background stills |",
             "|---|---|---|---|---|---|"]
    cubes = {codec: args.workdir / f"{codec}.zarr" for codec in args.codecs.split(",")}
    for codec, target in cubes.items():
        if args.reads_only:
            continue
        shutil.rmtree(target, ignore_errors=True)
        t0 = time.perf_counter()
        nersemble_cube.convert(source, target, storage=StorageSpec(codec), workers=workers, check_space=False)
        secs = time.perf_counter() - t0
        size = stored_bytes(target, f"dataset/018/sequences/{SEQ}")
        stills = stored_bytes(target, "dataset/018/background")
        rows.append(f"| {codec} | {n / secs:.1f} | {size / 1e6:.1f} MB | {size / mp4:.1f}x | {size / n / 1e6:.2f} MB "
                    f"| {stills / 1e6:.1f} MB |")
    print("\n".join(rows))

    from toolkit import dataset_data

    from nersemble_cube.compat import NeRSembleParticipantDataManager
    from nersemble_cube.source.converters.color import correct_color

    theirs = dataset_data().NeRSembleParticipantDataManager(str(source), 18)
    ours = NeRSembleParticipantDataManager(cubes.get("zstd", next(iter(cubes.values()))), 18)
    serials = ours.list_cameras(SEQ)
    rng = random.Random(0)
    picks = [(rng.choice(serials), rng.randrange(args.frames)) for _ in range(args.repeats)]
    for serial in serials:  # warm: shard indexes, the colour tables (built once per camera)
        t0 = time.perf_counter()
        ours.load_image(SEQ, serial, 0, as_uint8=True, apply_color_correction=True)
    first = (time.perf_counter() - t0) * 1e3
    t_theirs = median_ms_per_call(
        lambda s, t: theirs.load_image(SEQ, s, t, as_uint8=True, apply_color_correction=True), picks)
    t_ours = median_ms_per_call(lambda s, t: ours.load_image(SEQ, s, t, as_uint8=True, apply_color_correction=True),
                                picks)
    frame = ours.load_image(SEQ, serials[0], 0, as_uint8=True)
    ccm = ours.load_color_calibration()[serials[0]]
    t_correct = median_ms_per_call(lambda: correct_color(frame, ccm), [()] * args.repeats)
    from nersemble_cube.source.converters import color

    t_direct = 1e3 * median_time(lambda: color._compute(frame, ccm), 3)
    print("\n| colour-corrected random frame, uint8, warm (median) | ms |\n|---|---|")
    print(f"| toolkit load_image(..., as_uint8=True, apply_color_correction=True) | {t_theirs:.0f} |")
    print(f"| ours: compat load_image, same arguments (zstd cube) | {t_ours:.0f} |")
    print(f"| of which the correction alone (numpy, one thread, through the camera's colour table) | {t_correct:.0f} |")
    print(f"| the correction computed pixel by pixel (no table) | {t_direct:.0f} |")
    print(f"| ours, first frame of a camera (builds its colour table) | {first:.0f} |")
    print(f"\nours {t_theirs / t_ours:.1f}x faster")


if __name__ == "__main__":
    main()
