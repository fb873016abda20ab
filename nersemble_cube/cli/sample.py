"""``sample`` and ``demo``: the shipped synthetic download folders, and the whole flow on them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._app import Benchmark, app, err, out, sized_bar, user_errors
from .convert import run_convert

NFrames = Annotated[int, typer.Option("--n-frames", "-n", min=1, help="Frames per video.")]


@app.command()
@user_errors
def sample(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Where to write the sample benchmark folder.")],
    benchmark: Benchmark = None,
    participant: Annotated[Optional[list[int]], typer.Option(
        "--participant", "-p", help="Participant id of any benchmark (default 388, 393, 17); repeatable. Without "
                                    "--benchmark, only the benchmarks these participants are in.")] = None,
    n_frames: NFrames = 8,
    cameras: Annotated[Optional[int], typer.Option(
        min=1, max=16, help="Only the first N nvs train cameras (at most 13), or N dataset cameras (default 4).")] = None,
    pointcloud_frames: Annotated[Optional[list[int]], typer.Option(
        help="nvs point clouds of these timesteps (default: 0, as the downloader); repeatable.")] = None,
    tracking_v1: Annotated[bool, typer.Option("--tracking-v1", help="Also write the outdated v1 FLAME tracking.")] = False,
    dataset: Annotated[bool, typer.Option(
        "--dataset", help="Write a full-dataset folder (nersemble-data download's layout: participants 18 and 30, "
                          "colour calibration, backgrounds; frames 3208x2200 / 8) instead of a benchmark folder.")] = False,
) -> None:
    """Write a small synthetic benchmark folder (or, with --dataset, full-dataset folder), laid out exactly
    like a real download."""
    from ..source.sample import benchmarks_of, participants_by_benchmark, write_sample

    if dataset:
        _sample_dataset(folder, benchmark, participant, n_frames, cameras)
        return
    try:
        if cameras is not None and cameras > 13:
            raise ValueError("--cameras: the nvs benchmark has 13 train cameras")
        chosen = participants_by_benchmark(participant or ())  # checks the ids before anything is written
        with sized_bar("writing sample videos") as (progress, on_start):
            write_sample(
                folder, benchmarks=tuple(b.value for b in benchmark) if benchmark else benchmarks_of(participant or ()), **chosen,
                n_frames=n_frames, n_cameras=cameras, pointcloud_frames=tuple(pointcloud_frames or (0,)),
                tracking_v1=tracking_v1, progress=progress, on_start=on_start,
            )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    out.print(f"sample benchmark folder written: {folder}", highlight=False)


def _sample_dataset(folder: Path, benchmark, participant: list[int] | None, n_frames: int, cameras: int | None) -> None:
    from ..source.dataset_sample import DEFAULT_PARTICIPANTS, write_dataset_sample

    if benchmark:
        raise typer.BadParameter("a full-dataset folder has no benchmarks; leave out --benchmark")
    if participant and any(not 0 <= p <= 999 for p in participant):
        raise typer.BadParameter("participant ids have at most 3 digits")
    with sized_bar("writing sample videos") as (progress, on_start):
        write_dataset_sample(folder, tuple(participant or DEFAULT_PARTICIPANTS), n_frames=n_frames,
                             n_cameras=cameras or 4, progress=progress, on_start=on_start)
    out.print(f"sample full-dataset folder written: {folder}", highlight=False)


@app.command()
@user_errors
def demo(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Working folder for the sample and its cube.")] = Path("nersemble_cube_demo"),
    n_frames: NFrames = 8,
) -> None:
    """End to end on the shipped sample: write a benchmark folder, convert it, open it lazily, read a frame."""
    from ..cube import access
    from ..cube.store import stored_bytes
    from ..cube.summary import summary
    from ..source.sample import write_sample

    source, store = folder / "benchmark", folder / "cube.zarr"
    err.print(f"1/3 writing a sample benchmark folder to {source}", highlight=False)
    with sized_bar("writing sample videos") as (progress, on_start):
        write_sample(source, n_frames=n_frames, progress=progress, on_start=on_start)
    err.print(f"2/3 converting it to {store}", highlight=False)
    run_convert(str(source), str(store), overwrite=True)
    err.print("3/3 opening the cube lazily")
    tree = access.open(store)
    out.print(summary(tree), highlight=False)
    ds = tree["nvs/388/sequences/GLASSES"].to_dataset()
    serial = str(ds.camera.values[0])
    t0 = time.perf_counter()
    frame = ds.images.sel(camera=serial, time=n_frames // 2).values
    ms = (time.perf_counter() - t0) * 1e3
    out.print(f"read nvs/388/GLASSES camera {serial} frame {n_frames // 2}: {frame.shape} {frame.dtype} "
              f"in {ms:.1f} ms; K =\n{ds.intrinsics.sel(camera=serial).values.round(2)}", highlight=False)
    points, _, _ = access.load_pointcloud(tree["nvs/388/sequences/GLASSES"], 0)
    flame = access.flame_tracking(tree["mono_flame_avatar/393/sequences/FREE"])
    out.print(f"point cloud of frame 0: {points.shape[0]} points; FLAME tracking of hold-out sequence FREE: "
              f"expression {flame.expression.shape} -> render {flame.n_frames} frames", highlight=False)
    mp4 = sum(f.stat().st_size for f in source.rglob("*.mp4"))
    out.print(f"mp4s {mp4 / 1e6:.1f} MB -> cube {stored_bytes(store) / 1e6:.1f} MB (lossless)", highlight=False)
