"""Pieces the benchmark scripts share: their arguments, the sample workload, timing, and the
official toolkit's per-frame read path reproduced verbatim (the baseline of several rows)."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import nersemble_cube

SEQ = "nvs/388/sequences/GLASSES"


def arguments(doc: str, frames: int, **extra: int) -> argparse.Namespace:
    """``--frames``, ``--repeats`` (3), ``--workdir`` and the integer options ``extra`` (name: default);
    ``doc`` is the script's docstring (its first line is the description)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--frames", type=int, default=frames)
    for name, default in extra.items():
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the generated samples here to reuse them")
    add_content_argument(ap)
    return ap.parse_args()


def add_content_argument(ap: argparse.ArgumentParser) -> None:
    """``--content realistic`` (the default: benchmarks/realistic.py) or ``synthetic`` (the test sample's head)."""
    ap.add_argument("--content", choices=("realistic", "synthetic"), default="realistic",
                    help="frames of the workload: natural photos with noise at ~67 KB per frame, or the smooth sample")


def workdir(args: argparse.Namespace, name: str) -> Path:
    return args.workdir or Path(tempfile.mkdtemp(prefix=f"nersemble-bench-{name}-"))


def nvs_sample(folder: Path, frames: int, cameras: int = 1, content: str = "synthetic", **kwargs) -> Path:
    """The nvs sample folder, written only if ``folder`` does not hold it yet: ``write_sample``'s, or with
    ``content="realistic"`` its image videos replaced by :func:`realistic.realistic_sample`'s."""
    if content == "realistic":
        from realistic import realistic_sample

        return realistic_sample(folder, frames, cameras)
    if not (folder / "nvs").exists():
        nersemble_cube.write_sample(folder, benchmarks=("nvs",), n_frames=frames, n_cameras=cameras,
                                    **{"pointcloud_frames": (), **kwargs})
    return folder


def print_table(workload: str, rows: list[tuple[str, ...]]) -> None:
    """The benchmark's figures as a markdown table (path, ours, baseline in the same run, ratio) under a
    line saying what was measured."""
    print(f"\nworkload: {workload}\n")
    print("| path | ours | baseline (same run) | ratio |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_ms_per_call(fn: Callable[..., object], calls: list[tuple]) -> float:
    """Median milliseconds of ``fn(*args)`` over ``calls`` (e.g. random ``(serial, frame)`` picks)."""
    times = []
    for args in calls:
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def interleaved_medians_ms(paths: dict[str, Callable[..., object]], calls: list[tuple]) -> dict[str, float]:
    """Median milliseconds of each path over ``calls``, the paths taking turns on every call (in a rotating
    order), so each meets the same caches and allocator state as the others rather than its own warm loop."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for i, args in enumerate(calls):
        for name in names[i % len(names):] + names[:i % len(names)]:
            t0 = time.perf_counter()
            paths[name](*args)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def toolkit_load_frame(path: str, t: int) -> np.ndarray:
    """The toolkit's ``VideoFrameLoader.load_frame`` (what ``load_image`` / ``load_alpha_map`` call), verbatim."""
    import cv2

    video_capture = cv2.VideoCapture(path)
    video_capture.set(cv2.CAP_PROP_POS_FRAMES, t)
    success, image = video_capture.read()
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def toolkit_load_all_images(path: str) -> list:
    """nersemble_benchmark BaseDataManager.load_all_images(..., as_uint8=True) -> VideoFrameLoader.load_all_frames."""
    import imageio.v3 as iio

    return list(iio.imiter(path, plugin="pyav"))


def toolkit_composite(src: Path, serial: str, t: int, background: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """What training scripts do per frame today: ``load_image`` and ``load_alpha_map`` (each re-opens and
    seeks its video), then numpy compositing. Returns (image, alpha) as float64 in [0, 1]."""
    image = toolkit_load_frame(str(src / SEQ / f"images/cam_{serial}.mp4"), t) / 255.0
    alpha = toolkit_load_frame(str(src / SEQ / f"alpha_maps/cam_{serial}.mp4"), t)[..., [0]] / 255.0
    return image * alpha + background * (1 - alpha), alpha
