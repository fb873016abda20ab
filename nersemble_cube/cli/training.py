"""``preprocess`` and ``export-nerf``: cubes and folders ready for training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..training.readers import DEFAULT_READER, READERS
from ._app import (Background, Json, Scheduler, Sequence, Store, Workers, app, check_scheduler, choices, err, out,
                   print_json, sized_bar, user_errors)

ReaderChoice = choices("ReaderChoice", READERS)
ImageFormat = choices("ImageFormat", ("png", "jpg"))


@app.command()
@user_errors
def preprocess(
    store: Store,
    target: Annotated[str, typer.Argument(metavar="OUT", help="New cube to write (a path or an fsspec URL).")],
    background: Annotated[Optional[Background], typer.Option(help="Composite onto this colour.")] = None,
    downscale: Annotated[int, typer.Option(min=1, help="Area-average by this integer factor.")] = 1,
    crop_to_alpha: Annotated[Optional[int], typer.Option(
        help="Crop each camera to its foreground in every frame, plus this margin in pixels.")] = None,
    to_float: Annotated[bool, typer.Option("--float", help="Store float32 in [0, 1] instead of uint8.")] = False,
    color_correct: Annotated[bool, typer.Option(
        "--color-correct", help="Full dataset: apply each camera's colour correction first (uint8, as the "
                                "toolkit's load_image(..., as_uint8=True, apply_color_correction=True)).")] = False,
    workers: Workers = None,
    scheduler: Scheduler = "threads",
) -> None:
    """Write a preprocessed copy of a cube (colour correction, composite, crop, downscale, float), calibration
    adjusted."""
    from ..preprocessing import Steps
    from ..preprocessing import preprocess as preprocess_cube

    check_scheduler(scheduler)
    steps = Steps(background.value if background else None, crop_to_alpha, downscale, to_float, color_correct)
    with sized_bar("preprocessing") as (progress, on_start):
        preprocess_cube(store, target, steps, workers=workers, scheduler=scheduler, progress=progress, on_start=on_start)
    err.print(f"wrote {target}", highlight=False)


def _frame_range(frames: str | None) -> tuple[int, int | None]:
    """``--frames START:STOP`` -> (start, stop); a usage error for anything else."""
    try:
        start, colon, stop = (frames or "0:").partition(":")
        if not colon:
            raise ValueError
        return int(start or 0), int(stop) if stop else None
    except ValueError:
        raise typer.BadParameter(f"{frames!r}: write START:STOP (STOP exclusive), e.g. 0:300",
                                 param_hint="--frames") from None


@app.command("export-nerf")
@user_errors
def export_nerf(
    store: Store,
    folder: Annotated[Path, typer.Argument(metavar="OUT", help="Folder to write (new or empty).")],
    sequence: Sequence,
    downscale: Annotated[int, typer.Option(min=1, help="Area-average by this integer factor (2: 802x550 nvs, 1604x1100 "
                                           "full dataset).")] = 1,
    background: Annotated[Background, typer.Option(help="Composite onto this colour.")] = Background("white"),
    every_nth: Annotated[Optional[int], typer.Option(min=1, help="Keep every n-th frame.")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Resample to this frame rate (nearest source frame), e.g. 25.")] = None,
    frames: Annotated[Optional[str], typer.Option(help="Source frame range START:STOP (STOP exclusive), e.g. 0:300.")] = None,
    camera: Annotated[Optional[list[str]], typer.Option("--camera", "-c", help="Only this camera serial; repeatable.")] = None,
    crop_to_alpha: Annotated[Optional[int], typer.Option(
        help="Crop each camera to its foreground over the chosen frames, plus this margin in pixels.")] = None,
    reader: Annotated[ReaderChoice, typer.Option(
        "--for", help="The code base that will read the folder: its keys, paths, split and conventions "
                      "(docs/nerf-export.md).")] = ReaderChoice(DEFAULT_READER),
    image_format: Annotated[Optional[ImageFormat], typer.Option(
        "--format", help="png (lossless) or jpg (quality 95); default png. GaussianAvatars and instant-ngp read png only.")] = None,
    world_frame: Annotated[bool, typer.Option(
        "--world-frame", help="Sequences with FLAME tracking: keep the benchmark's world frame (default: each "
                              "frame's cameras in the FLAME model's frame, so GaussianAvatars' FLAME lines up).")] = False,
    color_correct: Annotated[bool, typer.Option(
        "--color-correct", help="Full dataset: apply each camera's colour correction (as the toolkit's "
                                "load_image(..., apply_color_correction=True)).")] = False,
    workers: Workers = None,
    scheduler: Scheduler = "threads",
    as_json: Json = False,
) -> None:
    """Write a NeRF / 3DGS training folder (images on a background, masks, transforms.json with OpenGL
    camera-to-world poses, FLAME parameters for mono) that the chosen reader (--for) reads as it is."""
    from ..cube.summary import plural
    from ..training.nerf import export_nerf as export_nerf_folder

    check_scheduler(scheduler)
    if every_nth is not None and fps is not None:
        raise typer.BadParameter("choose --every-nth or --fps, not both")
    start, stop = _frame_range(frames)
    with sized_bar("exporting") as (progress, on_start):
        report = export_nerf_folder(store, folder, sequence, reader=reader.value, downscale=downscale,
                                    background=background.value, every_nth=every_nth, fps=fps, start=start, stop=stop,
                                    cameras=camera, crop_to_alpha=crop_to_alpha,
                                    flame_frame=False if world_frame else None,
                                    image_format=image_format.value if image_format else None,
                                    color_correct=color_correct, workers=workers, scheduler=scheduler,
                                    progress=progress, on_start=on_start)
    for note in report.notes:
        err.print(f"note: {note}", highlight=False)
    if as_json:
        print_json({"folder": folder, "cameras": list(report.cameras), "frames": [int(f) for f in report.frames],
                    "files": report.files, "notes": report.notes})
        return
    shown = report.frames if len(report.frames) <= 8 else report.frames[:4] + ["..."] + report.frames[-2:]
    out.print(f"wrote {folder}: {plural(len(report.cameras), 'camera')} x {plural(len(report.frames), 'frame')} "
              f"(source frames {shown}), {report.files} files", highlight=False)
