"""The ``nersemble-cube`` command line: parses, shows progress, calls the library.

Exit codes: 0 success, 130 interrupted, 2 bad command-line usage (typer's, or a
:class:`~nersemble_cube.errors.UsageError`), and each user error's ``exit_code`` (:mod:`.errors`).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.markup import escape
from rich.text import Text

# Only what the options need is imported here; each command imports the library parts it runs, so
# `--help` and a mistyped option answer without loading zarr, xarray, dask or the converters.
from ._version import __version__
from .colors import COLORS
from .cube.presets import CODECS
from .errors import InvalidSubmissionError, NersembleCubeError, VerificationError
from .source import layout
from .training.readers import DEFAULT_READER, READERS

if TYPE_CHECKING:
    from .conversion.plan import ConversionPlan
    from .conversion.run import ConversionReport

ReaderChoice = enum.Enum("ReaderChoice", {name: name for name in READERS}, type=str)
ImageFormat = enum.Enum("ImageFormat", {"png": "png", "jpg": "jpg"}, type=str)
Background = enum.Enum("Background", {name: name for name in COLORS}, type=str)
BenchmarkChoice = enum.Enum("BenchmarkChoice", {name: name for name in layout.BENCHMARKS}, type=str)
VideoBenchmark = enum.Enum("VideoBenchmark", {name: name for name in layout.VIDEO_BENCHMARKS}, type=str)
AlphaView = enum.Enum("AlphaView", {name: name for name in ("overlay", "composite", "none")}, type=str)

app = typer.Typer(
    help="NeRSemble benchmark downloads as chunked, labeled, lazily readable zarr data cubes.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True)
out = Console(soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"nersemble-cube {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """NeRSemble benchmark downloads as chunked, labeled, lazily readable zarr data cubes."""


def _user_errors(func):
    """Print a user's mistake as one line and exit with its code; our own bugs keep their traceback."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except NersembleCubeError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted; run the same command again to finish (complete parts are kept)")
            raise typer.Exit(130) from None
    return wrapper


class _RateColumn(ProgressColumn):
    """Items per second so far (rich's own speed column is for bytes)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = task.completed / elapsed if elapsed else 0.0
        return Text(f"{rate:.1f}/s")


def _progress() -> Progress:
    """A bar with what is done, elapsed time, rate and time left (stderr, so stdout stays parseable)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    _RateColumn(), TimeRemainingColumn(), console=err, transient=False)


@contextlib.contextmanager
def _sized_bar(description: str):
    """Yield ``(progress, on_start)`` callbacks: the bar appears when ``on_start(total)`` is called, i.e.
    once the input has been checked, so errors found before print alone."""
    bar = _progress()
    task = bar.add_task(description, total=None)

    def on_start(total: int) -> None:
        bar.update(task, total=total)
        bar.start()

    try:
        yield (lambda n: bar.advance(task, n)), on_start
        if bar.tasks[0].total is not None:  # done: a count that dask optimised short still ends full
            bar.update(task, completed=bar.tasks[0].total)
    finally:
        bar.stop()


def _check_scheduler(scheduler: str) -> None:
    """A usage error (exit 2) for a --scheduler that is neither a name nor an address."""
    from .cluster import check_scheduler

    try:
        check_scheduler(scheduler)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--scheduler") from None


def _run_convert(source: str | Path, store: str | Path, **kwargs) -> tuple[ConversionReport, ConversionPlan]:
    """Convert with a progress bar; returns the report and the checked plan."""
    from .conversion.run import convert as convert_folder

    plans = []

    def on_plan(plan: ConversionPlan) -> None:
        plans.append(plan)
        on_start(plan.total_items)

    with _sized_bar("converting") as (progress, on_start):
        return convert_folder(source, store, progress=progress, on_plan=on_plan, **kwargs), plans[0]


Benchmark = Annotated[Optional[list[BenchmarkChoice]], typer.Option(
    "--benchmark", "-b", help="Only this benchmark; repeat for several.")]
Participant = Annotated[Optional[list[int]], typer.Option("--participant", "-p", help="Only this participant id; repeatable.")]
Store = Annotated[str, typer.Argument(help="A cube written by nersemble-cube convert (a path or an fsspec URL).")]
Workers = Annotated[Optional[int], typer.Option(min=1, help="Tasks run in parallel (default: the cores this process may use).")]
Scheduler = Annotated[str, typer.Option(
    help="Where tasks run: threads (here), processes (a local dask.distributed cluster of --workers processes) "
         "or a dask scheduler address such as tcp://host:8786 (its workers must reach the same paths).")]


@app.command()
@_user_errors
def convert(
    source: Annotated[str, typer.Argument(help="Folder written by nersemble-benchmark-download or by "
                                          "nersemble-data-download (the full dataset); a path or an fsspec URL "
                                          "such as s3://bucket/benchmark.")],
    store: Annotated[str, typer.Argument(help="Cube to write: a new path, an empty folder, an existing cube, or an "
                                         "fsspec URL (s3://bucket/cube.zarr, gs://..., memory://...).")],
    benchmark: Benchmark = None,
    participant: Participant = None,
    sequence: Annotated[Optional[list[str]], typer.Option("--sequence", "-s", help="Only this sequence; repeatable.")] = None,
    camera: Annotated[Optional[list[str]], typer.Option(
        "--camera", "-c", help="Full dataset: only this camera serial; repeatable.")] = None,
    every_nth: Annotated[int, typer.Option(
        min=1, help="Full dataset: keep source frames 0, n, 2n, ... (3: 24.3 fps); time keeps the source indices.")] = 1,
    fps: Annotated[Optional[float], typer.Option(
        min=0.001, help="Full dataset: keep the frames ffmpeg's fps filter picks at this rate (the frames VHAP "
                        "extracts, e.g. 25).")] = None,
    codec: Annotated[str, typer.Option(
        help=f"Codec preset: {', '.join(CODECS)} (zstd, lz4, none are lossless; jpegxl is lossy, see --distance).")] = "zstd",
    level: Annotated[int, typer.Option(help="Compression level of zstd / lz4.")] = 3,
    distance: Annotated[float, typer.Option(help="jpegxl: Butteraugli distance (0.6 ~45 dB on camera footage, 1 ~42 dB, 0 lossless).")] = 0.6,
    effort: Annotated[int, typer.Option(min=1, max=9, help="jpegxl: encoder effort, 1-9 (more: smaller, slower to write).")] = 5,
    frames_per_chunk: Annotated[int, typer.Option(help="Frames per chunk along time (1: fastest random access).")] = 1,
    frames_per_shard: Annotated[int, typer.Option(help="Frames per shard file (0: no sharding, a file per chunk).")] = 32,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo parts that are already complete.")] = False,
    workers: Workers = None,
    scheduler: Scheduler = "threads",
    scales: Annotated[str, typer.Option(help="Also store reduced-resolution levels, e.g. 1,2,4 (integer factors).")] = "1",
    verify: Annotated[bool, typer.Option("--verify", help="Afterwards re-read 2 random frames of every video (and "
                                         "samples of the rest) and compare with the source; exit 4 on a mismatch.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Write nothing: check the source and print the frames, the store's size with each codec "
                          "preset and the time it would take, and whether it fits.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: print the estimate as JSON.")] = False,
) -> None:
    """Convert a benchmark folder into a zarr cube: videos, alpha mattes, calibration, point clouds,
    FLAME tracking and SVFR images; or a full-dataset folder: videos, calibration with colour correction,
    background stills and the metadata tables (docs/dataset.md).

    Re-running skips what is complete; a run that was interrupted (even killed) is finished by running
    it again, redoing only unfinished videos. Object-store credentials come from the environment
    (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, fsspec config), never from the command line.
    """
    from .cluster import check_scheduler, usable_cores
    from .cube.storage import StorageSpec

    try:
        storage = StorageSpec(codec, level, frames_per_chunk, frames_per_shard, distance, effort)
        check_scheduler(scheduler)
        factors = tuple(int(f) for f in scales.split(","))
        if any(f < 1 for f in factors):
            raise ValueError("scales are positive integers")
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    t0 = time.perf_counter()
    selection = {"benchmarks": [b.value for b in benchmark] if benchmark else None, "participants": participant,
                 "sequences": sequence, "cameras": camera, "every_nth": every_nth, "fps": fps}
    if dry_run:
        _print_estimate(source, store, storage, overwrite, factors, workers or usable_cores(), selection, as_json)
        return
    report, plan = _run_convert(source, store, storage=storage, overwrite=overwrite, workers=workers,
                                scheduler=scheduler, scales=factors, **selection)
    secs = time.perf_counter() - t0
    for note in report.notes:
        err.print(f"note: {note}", highlight=False)
    out.print(f"wrote {len(report.written)} nodes ({report.items} items in {secs:.1f} s), "
              f"skipped {len(report.skipped)} complete: {store}")
    if verify:
        from .conversion.verify import verify as verify_cube

        with _sized_bar("verifying") as (progress, on_start):
            checked = verify_cube(source, store, checked=plan, progress=progress, on_start=on_start)
        for line in checked.mismatches:
            err.print(f"mismatch: {line}", highlight=False)
        out.print(f"verified {checked.checked} samples against the source: "
                  f"{len(checked.mismatches)} mismatches", highlight=False)
        checked.raise_for_mismatches()


def _print_estimate(source: str, store: str, storage, overwrite: bool, scales: tuple[int, ...], workers: int,
                    selection: dict, as_json: bool) -> None:
    """``convert --dry-run``: plan and estimate, write nothing."""
    from .conversion.estimate import estimate
    from .conversion.plan import plan
    from .cube.location import locate
    from .cube.summary import plural
    from .source.files import as_path

    with _sized_bar("checking the source") as (progress, on_start):
        checked = plan(as_path(source), **selection)
    target = locate(store)
    guess = estimate(target, checked, storage, overwrite, scales)
    wall = {codec: guess.wall_seconds(codec, workers) for codec in guess.bytes}
    if as_json:
        out.print_json(data={"frames_decoded": guess.decoded, "frames_written": guess.frames,
                             "background_stills": guess.stills, "bytes": guess.bytes,
                             "decode_seconds_per_frame": guess.decode_seconds,
                             "encode_seconds_per_frame": guess.encode_seconds, "workers": workers,
                             "wall_seconds_at_least": wall, "free_bytes": guess.free, "chosen": storage.codec})
        return
    sequences = sum(len(p.sequences) for p in checked.participants)
    out.print(f"would write {plural(guess.frames, 'frame')} of {plural(sequences, 'sequence')} of "
              f"{plural(len(checked.participants), 'participant')}" +
              (f" and {plural(guess.stills, 'background still')}" if guess.stills else ""), highlight=False)
    for codec, n in guess.bytes.items():
        mark = " (chosen)" if codec == storage.codec else ""
        lossy = "" if codec in ("zstd", "lz4", "none") else ", lossy ~45 dB"
        fits = "" if guess.free is None else (", fits" if n <= guess.free else ", does NOT fit")
        out.print(f"  --codec {codec}{mark}: ~{n / 1e9:.3g} GB, at least ~{_duration(wall[codec])} with "
                  f"{plural(workers, 'worker')}{lossy}{fits}", highlight=False)
    if guess.free is not None:
        out.print(f"free at {store}: {guess.free / 1e9:.3g} GB", highlight=False)


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


@app.command()
@_user_errors
def verify(
    store: Store,
    full: Annotated[bool, typer.Option("--full", help="Read every chunk (default: 2 random shards of each array).")] = False,
    mark: Annotated[bool, typer.Option("--mark/--no-mark", help="Mark what is damaged so that convert, run again, "
                                       "re-converts exactly it.")] = True,
) -> None:
    """Check a cube's chunks through their checksums, without the source: name the damaged frames, mark
    them for re-conversion (exit 4 if any)."""
    from .cube.integrity import check_chunks, mark_for_repair
    from .cube.location import locate

    with _sized_bar("verifying") as (progress, on_start):
        report = check_chunks(store, full=full, progress=progress, on_start=on_start)
    for damage in report.damage:
        err.print(f"damaged: {damage}", highlight=False)
    out.print(f"checked {report.chunks} chunks of {report.arrays} arrays: {len(report.damage)} damaged", highlight=False)
    if report.damage:
        marked = mark and not locate(store).read_only
        if marked:
            report.marked = mark_for_repair(store, report.damage)
            err.print(f"marked for re-conversion: {', '.join(report.marked)}", highlight=False)
        fix = ("run nersemble-cube convert with the same source and store to re-convert them" if marked
               else "convert the nodes named above again with --overwrite")
        raise VerificationError(f"{store}: {len(report.damage)} damaged chunks; {fix}")


@app.command()
@_user_errors
def sample(
    folder: Annotated[Path, typer.Argument(help="Where to write the sample benchmark folder.")],
    benchmark: Benchmark = None,
    participant: Annotated[Optional[list[int]], typer.Option(
        "--participant", "-p", help="Participant id of any benchmark (default 388, 393, 17); repeatable. Without "
                                    "--benchmark, only the benchmarks these participants are in.")] = None,
    frames: Annotated[int, typer.Option(min=1, help="Frames per video.")] = 8,
    cameras: Annotated[Optional[int], typer.Option(
        min=1, max=16, help="Only the first N nvs train cameras (at most 13), or N dataset cameras (default 4).")] = None,
    pointcloud_frames: Annotated[Optional[list[int]], typer.Option(
        help="nvs point clouds of these timesteps (default: 0, as the downloader); repeatable.")] = None,
    tracking_v1: Annotated[bool, typer.Option("--tracking-v1", help="Also write the outdated v1 FLAME tracking.")] = False,
    dataset: Annotated[bool, typer.Option(
        "--dataset", help="Write a full-dataset folder (nersemble-data-download's layout: participants 18 and 30, "
                          "colour calibration, backgrounds; frames 3208x2200 / 8) instead of a benchmark folder.")] = False,
) -> None:
    """Write a small synthetic benchmark folder (or, with --dataset, full-dataset folder), laid out exactly
    like a real download."""
    from .source.sample import benchmarks_of, participants_by_benchmark, write_sample

    if dataset:
        _sample_dataset(folder, benchmark, participant, frames, cameras)
        return
    try:
        if cameras is not None and cameras > 13:
            raise ValueError("--cameras: the nvs benchmark has 13 train cameras")
        chosen = participants_by_benchmark(participant or ())  # checks the ids before anything is written
        with _sized_bar("writing sample videos") as (progress, on_start):
            write_sample(
                folder, benchmarks=tuple(b.value for b in benchmark) if benchmark else benchmarks_of(participant or ()), **chosen,
                n_frames=frames, n_cameras=cameras, pointcloud_frames=tuple(pointcloud_frames or (0,)),
                tracking_v1=tracking_v1, progress=progress, on_start=on_start,
            )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    out.print(f"sample benchmark folder written: {folder}")


def _sample_dataset(folder: Path, benchmark, participant: list[int] | None, frames: int, cameras: int | None) -> None:
    from .source.dataset_sample import DEFAULT_PARTICIPANTS, write_dataset_sample

    if benchmark:
        raise typer.BadParameter("a full-dataset folder has no benchmarks; leave out --benchmark")
    if participant and any(not 0 <= p <= 999 for p in participant):
        raise typer.BadParameter("participant ids have at most 3 digits")
    with _sized_bar("writing sample videos") as (progress, on_start):
        write_dataset_sample(folder, tuple(participant or DEFAULT_PARTICIPANTS), n_frames=frames,
                             n_cameras=cameras or 4, progress=progress, on_start=on_start)
    out.print(f"sample full-dataset folder written: {folder}")


@app.command()
@_user_errors
def info(store: Store, as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False) -> None:
    """Print what a cube holds (sizes are height x width)."""
    from .cube import access
    from .cube.store import stored_bytes
    from .cube.summary import summary, summary_facts

    tree = access.open(store, dask=False)  # metadata and coordinates only: no dask graph is needed to describe it
    try:
        per_benchmark = {b: stored_bytes(store, b) for b in (*layout.BENCHMARKS, "dataset")}
        total = stored_bytes(store)
    except (OSError, NotImplementedError, ValueError):  # stores that cannot list (http)
        per_benchmark, total = {}, None
    if as_json:
        out.print_json(data={**summary_facts(tree), "stored_bytes": {"total": total, **per_benchmark}})
        return
    out.print(summary(tree), highlight=False)
    if total is not None:
        sizes = [f"{b} {n / 1e6:.1f} MB" for b, n in per_benchmark.items() if n]
        out.print(f"stored: {', '.join(sizes)}; total {total / 1e6:.1f} MB", highlight=False)


@app.command()
@_user_errors
def demo(
    folder: Annotated[Path, typer.Argument(help="Working folder for the sample and its cube.")] = Path("nersemble_cube_demo"),
    frames: Annotated[int, typer.Option(min=1, help="Frames per sample video.")] = 8,
) -> None:
    """End to end on the shipped sample: write a benchmark folder, convert it, open it lazily, read a frame."""
    from .cube import access
    from .cube.store import stored_bytes
    from .cube.summary import summary
    from .source.sample import write_sample

    source, store = folder / "benchmark", folder / "cube.zarr"
    err.print(f"1/3 writing a sample benchmark folder to {source}")
    with _sized_bar("writing sample videos") as (progress, on_start):
        write_sample(source, n_frames=frames, progress=progress, on_start=on_start)
    err.print(f"2/3 converting it to {store}")
    _run_convert(source, store, overwrite=True)
    err.print("3/3 opening the cube lazily")
    tree = access.open(store)
    out.print(summary(tree), highlight=False)
    ds = tree["nvs/388/sequences/GLASSES"].to_dataset()
    serial = str(ds.camera.values[0])
    t0 = time.perf_counter()
    frame = ds.images.sel(camera=serial, time=frames // 2).values
    ms = (time.perf_counter() - t0) * 1e3
    out.print(f"read nvs/388/GLASSES camera {serial} frame {frames // 2}: {frame.shape} {frame.dtype} "
              f"in {ms:.1f} ms; K =\n{ds.intrinsics.sel(camera=serial).values.round(2)}", highlight=False)
    points, _, _ = access.load_pointcloud(tree["nvs/388/sequences/GLASSES"], 0)
    flame = access.flame_tracking(tree["mono_flame_avatar/393/sequences/FREE"])
    out.print(f"point cloud of frame 0: {points.shape[0]} points; FLAME tracking of hold-out sequence FREE: "
              f"expression {flame.expression.shape} -> render {flame.n_frames} frames", highlight=False)
    mp4 = sum(f.stat().st_size for f in source.rglob("*.mp4"))
    out.print(f"mp4s {mp4 / 1e6:.1f} MB -> cube {stored_bytes(store) / 1e6:.1f} MB (lossless)", highlight=False)


@app.command()
@_user_errors
def preprocess(
    store: Store,
    out: Annotated[str, typer.Argument(help="New cube to write (a path or an fsspec URL).")],
    composite: Annotated[Optional[Background], typer.Option(help="Composite onto a background colour.")] = None,
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
    from .preprocessing import Steps
    from .preprocessing import preprocess as preprocess_cube

    _check_scheduler(scheduler)
    steps = Steps(composite.value if composite else None, crop_to_alpha, downscale, to_float, color_correct)
    with _sized_bar("preprocessing") as (progress, on_start):
        preprocess_cube(store, out, steps, workers=workers, scheduler=scheduler, progress=progress, on_start=on_start)
    err.print(f"wrote {out}", highlight=False)


@app.command("export-nerf")
@_user_errors
def export_nerf(
    store: Store,
    folder: Annotated[Path, typer.Argument(metavar="OUT", help="Folder to write (new or empty).")],
    sequence: Annotated[str, typer.Option("--sequence", "-s", help="BENCHMARK/PARTICIPANT/SEQUENCE, e.g. nvs/388/GLASSES "
                                          "or dataset/018/EXP-1-head.")],
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
) -> None:
    """Write a NeRF / 3DGS training folder (images on a background, masks, transforms.json with OpenGL
    camera-to-world poses, FLAME parameters for mono) that the chosen reader (--for) reads as it is."""
    from .cube.summary import plural
    from .training.nerf import export_nerf as export_nerf_folder

    _check_scheduler(scheduler)
    if every_nth is not None and fps is not None:
        raise typer.BadParameter("choose --every-nth or --fps, not both")
    try:
        start, _, stop = (frames or "0:").partition(":")
        first, last = int(start or 0), int(stop) if stop else None
    except ValueError:
        raise typer.BadParameter(f"--frames {frames!r}: write START:STOP, e.g. 0:300") from None
    with _sized_bar("exporting") as (progress, on_start):
        report = export_nerf_folder(store, folder, sequence, reader=reader.value, downscale=downscale, background=background.value,
                                    every_nth=every_nth, fps=fps, start=first, stop=last, cameras=camera,
                                    crop_to_alpha=crop_to_alpha, flame_frame=False if world_frame else None,
                                    image_format=image_format.value if image_format else None,
                                    color_correct=color_correct, workers=workers, scheduler=scheduler,
                                    progress=progress, on_start=on_start)
    for note in report.notes:
        err.print(f"note: {note}", highlight=False)
    shown = report.frames if len(report.frames) <= 8 else report.frames[:4] + ["..."] + report.frames[-2:]
    out.print(f"wrote {folder}: {plural(len(report.cameras), 'camera')} x {plural(len(report.frames), 'frame')} "
              f"(source frames {shown}), {report.files} files", highlight=False)


@app.command("import-alpha")
@_user_errors
def import_alpha(
    store: Store,
    folder: Annotated[str, typer.Argument(help="Folder of mattes named cam_<serial>_<index>.jpg or .png (VHAP's "
                                          "<sequence>/alpha_maps).")],
    sequence: Annotated[str, typer.Option("--sequence", "-s", help="The sequence they belong to, e.g. "
                                          "dataset/018/EXP-1-head.")],
    fps: Annotated[float, typer.Option(
        min=0, help="The rate the mattes' frames were extracted at with ffmpeg's fps filter (VHAP: 25); 0: the "
                    "files are numbered by source frame.")] = 25.0,
    method: Annotated[Optional[str], typer.Option(help="How the mattes were made, recorded in attrs (e.g. "
                                                  "'VHAP background_matting_v2').")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace mattes the sequence has.")] = False,
    workers: Workers = None,
) -> None:
    """Import alpha mattes made elsewhere (the full dataset has none) into a sequence's alpha, with provenance."""
    from .conversion.mattes import import_alpha as import_mattes
    from .cube.summary import plural

    with _sized_bar("importing mattes") as (progress, on_start):
        report = import_mattes(store, folder, sequence, fps=fps or None, method=method, overwrite=overwrite,
                               workers=workers, progress=progress, on_start=on_start)
    out.print(f"wrote alpha of {report.group}: {plural(len(report.cameras), 'camera')} x "
              f"{plural(report.frames, 'frame')}", highlight=False)


@app.command()
@_user_errors
def preview(
    store: Store,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("preview.png"),
    sequence: Annotated[str, typer.Option(help="Sequence to show: nvs/388/GLASSES or nvs/388/sequences/GLASSES.")] = "nvs/388/GLASSES",
    frames: Annotated[int, typer.Option(min=1, help="Frames per camera.")] = 4,
    alpha: Annotated[AlphaView, typer.Option(help="Show the matte over the frame, composited, or not.")] = AlphaView("overlay"),
    rig: Annotated[Optional[str], typer.Option(
        help="Plot this calibration node's camera rig instead (e.g. nvs/388/calibration).")] = None,
) -> None:
    """Save a contact sheet of cameras x frames, or with --rig a 3D plot of the cameras (needs matplotlib)."""
    from .cube.schema import sequence_group

    try:
        from .preview import contact_sheet, rig_plot
        import matplotlib  # noqa: F401
    except ImportError:
        raise typer.BadParameter("preview needs matplotlib: pip install 'nersemble-cube[preview]'") from None
    written = rig_plot(store, rig, out) if rig else contact_sheet(store, sequence_group(sequence), out, frames, alpha=alpha.value)
    out_msg = f"wrote {written}"
    err.print(out_msg, highlight=False)


BenchmarkOption = typer.Option("--benchmark", "-b", help="The benchmark.")


@app.command()
@_user_errors
def template(
    cube: Annotated[str, typer.Argument(help="The cube converted from the benchmark folder (a path or an fsspec URL).")],
    store: Annotated[Path, typer.Argument(help="New zarr store for the predictions.")],
    benchmark: Annotated[VideoBenchmark, typer.Option(
        "--benchmark", "-b", help="The benchmark (svfr predictions are meshes: no template).")],
) -> None:
    """Write an empty prediction store: every video to render, with its cameras' calibration.

    Fill it with nersemble_cube.write_frames (any order, in parallel), then run export.
    """
    from .submission.template import prediction_template, template_counts

    videos, frames = template_counts(prediction_template(cube, benchmark.value, store=store))
    out.print(f"prediction store for {videos} videos ({frames} frames) written: {store}", highlight=False)


@app.command()
@_user_errors
def export(
    predictions: Annotated[Path, typer.Argument(help="Prediction zarr store (from `template`, filled; svfr: meshes).")],
    zip_path: Annotated[Path, typer.Argument(metavar="ZIP", help="Submission zip to write.")],
    benchmark: Annotated[BenchmarkChoice, BenchmarkOption],
    partial: Annotated[bool, typer.Option("--partial", help="Allow a submission that lacks videos or meshes.")] = False,
    workers: Workers = None,
    scheduler: Scheduler = "threads",
) -> None:
    """Write the submission zip (H.264 crf 14 videos, or SVFR meshes) from predictions."""
    from .submission.export import export_submission

    _check_scheduler(scheduler)
    with _sized_bar("exporting") as (progress, on_start):
        report = export_submission(predictions, zip_path, benchmark.value, partial=partial, workers=workers,
                                   scheduler=scheduler,
                                   progress=progress, on_start=on_start)
    note = f", {len(report.missing)} expected entries left out (--partial)" if report.missing else ""
    out.print(f"wrote {zip_path} with {len(report.entries)} entries{note}", highlight=False)


@app.command()
@_user_errors
def validate(
    zip_path: Annotated[Path, typer.Argument(metavar="ZIP", exists=True, dir_okay=False, help="Submission zip to check.")],
    benchmark: Annotated[BenchmarkChoice, BenchmarkOption],
    cube: Annotated[Optional[str], typer.Option(help="Cube of the benchmark data (a path or an fsspec URL), for the "
                                                  "expected frame counts.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON for scripts.")] = False,
) -> None:
    """Check a submission zip offline. Exit 0 only if it is valid (6 if not)."""
    from .submission.validate import validate_submission

    report = validate_submission(zip_path, benchmark.value, cube=cube)
    if as_json:
        out.print_json(data={"zip": str(zip_path), "benchmark": benchmark.value, "valid": report.valid,
                             "checked": report.checked, "issues": report.issues, "warnings": report.warnings})
    else:
        out.print(report.format(), highlight=False)
    if not report.valid:
        raise InvalidSubmissionError(f"{zip_path} is not a valid {benchmark.value} submission ({len(report.issues)} kinds "
                                     "of issues, listed above)")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
