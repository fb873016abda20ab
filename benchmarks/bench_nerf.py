"""NeRF-folder export benchmark (issue 9): one 1604x1100 nvs camera at --downscale 2, white background.

    python benchmarks/bench_nerf.py [--frames 120] [--repeats 3] [--workdir DIR]

Rows (medians, same run): ``export_nerf`` for GaussianAvatars (the default) with 1 and 2 dask
workers (png image + png mask per frame), and for each other reader (``--for``) with 2 workers,
against the loop training scripts write by hand: the toolkit's ``load_image`` and
``load_alpha_map`` (cv2 open + seek + read, verbatim), numpy compositing, ``cv2.resize(INTER_AREA)``
and ``cv2.imwrite`` of the image and the mask.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

import numpy as np

import nersemble_cube
from nersemble_cube.training.nerf import export_nerf
from nersemble_cube.training.readers import DEFAULT_READER, READERS

from common import SEQ, arguments, nvs_sample, timed, toolkit_composite, workdir


def toolkit_loop(src: Path, serial: str, n: int, out: Path) -> None:
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        comp, alpha = toolkit_composite(src, serial, t)
        size = (comp.shape[1] // 2, comp.shape[0] // 2)
        comp = cv2.resize(comp, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(alpha[..., 0], size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / f"{t:05d}.png"), cv2.cvtColor((np.clip(comp, 0, 1) * 255 + 0.5).astype(np.uint8),
                                                             cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(out / f"{t:05d}_mask.png"), (mask * 255 + 0.5).astype(np.uint8))


def main() -> None:
    args = arguments(__doc__, frames=120)
    work = workdir(args, "nerf")
    src = nvs_sample(work / f"sample-{args.content}-1x{args.frames}", args.frames, content=args.content)
    cube = work / "cube.zarr"
    if not cube.exists():
        nersemble_cube.convert(src, cube)
    serial = str(nersemble_cube.open(cube)[SEQ].camera.values[0])
    runs = [(DEFAULT_READER, 1)] + [(reader, 2) for reader in READERS]
    times: dict[str, list[float]] = {f"{r}, {w} worker{'s' if w > 1 else ''}": [] for r, w in runs}
    times["toolkit loop"] = []
    for _ in range(args.repeats):
        for (reader, workers), name in zip(runs, times):
            out = work / "nerf"
            shutil.rmtree(out, ignore_errors=True)
            times[name].append(timed(lambda r=reader, w=workers, o=out: export_nerf(
                cube, o, "nvs/388/GLASSES", reader=r, downscale=2, workers=w)))
        out = work / "loop"
        shutil.rmtree(out, ignore_errors=True)
        times["toolkit loop"].append(timed(lambda o=out: toolkit_loop(src, serial, args.frames, o)))
    base = statistics.median(times["toolkit loop"])
    print(f"{args.frames} frames of one 1604x1100 camera -> 802x550 png + mask, median of {args.repeats}:")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:30s} {med:6.2f} s  {args.frames / med:6.1f} frames/s  {base / med:5.2f}x the toolkit loop")


if __name__ == "__main__":
    main()
