"""``convert`` (and ``--dry-run``), ``verify`` and ``import-alpha``: commands that write or check a cube."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..cube.presets import CODECS
from ..errors import VerificationError
from ._app import (Benchmark, choices, Json, Participant, Scheduler, Sequence, Store, Workers, app, err, out, print_json,
                   sized_bar, user_errors)

CodecChoice = choices("CodecChoice", CODECS)

if TYPE_CHECKING:
    from ..conversion.plan import ConversionPlan
    from ..conversion.run import ConversionReport


def run_convert(source: str, store: str, **kwargs) -> tuple[ConversionReport, ConversionPlan]:
    """Convert with a progress bar; returns the report and the checked plan."""
    from ..conversion.run import convert as convert_folder

    plans = []

    def on_plan(plan: ConversionPlan) -> None:
        plans.append(plan)
        on_start(plan.total_items)

    with sized_bar("converting") as (progress, on_start):
        return convert_folder(source, store, progress=progress, on_plan=on_plan, **kwargs), plans[0]


def _selection(benchmark, participant, sequence, camera, every_nth, fps) -> dict:
    """The filters of ``convert``: ``-s`` takes a name (GLASSES) or a path (nvs/388/GLASSES, which is
    ``-b nvs -p 388 -s GLASSES``; dataset/018/EXP-1-head is ``-p 18 -s EXP-1-head``)."""
    from ..cube.schema import sequence_group

    benchmarks = [b.value for b in benchmark] if benchmark else []
    participants, names = list(participant or []), []
    for value in sequence or []:
        if "/" not in value.strip("/"):
            names.append(value)
            continue
        bench, p_id, _, name = sequence_group(value).split("/")
        if bench != "dataset" and bench not in benchmarks:
            benchmarks.append(bench)
        if int(p_id) not in participants:
            participants.append(int(p_id))
        names.append(name)
    return {"benchmarks": benchmarks or None, "participants": participants or None, "sequences": names or None,
            "cameras": camera, "every_nth": every_nth, "fps": fps}


@app.command()
@user_errors
def convert(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="Folder written by nersemble-benchmark-download or by "
                                          "nersemble-data download (the full dataset); a path or an fsspec URL "
                                          "such as s3://bucket/benchmark.")],
    store: Annotated[str, typer.Argument(metavar="STORE", help="Cube to write: a new path, an empty folder, an existing cube, or an "
                                         "fsspec URL (s3://bucket/cube.zarr, gs://..., memory://...).")],
    benchmark: Benchmark = None,
    participant: Participant = None,
    sequence: Annotated[Optional[list[str]], typer.Option(
        "--sequence", "-s", help="Only this sequence: a name (GLASSES) or BENCHMARK/PARTICIPANT/SEQUENCE "
                                 "(nvs/388/GLASSES); repeatable.")] = None,
    camera: Annotated[Optional[list[str]], typer.Option(
        "--camera", "-c", help="Full dataset: only this camera serial; repeatable.")] = None,
    every_nth: Annotated[int, typer.Option(
        min=1, help="Full dataset: keep source frames 0, n, 2n, ... (3: 24.3 fps); time keeps the source indices.")] = 1,
    fps: Annotated[Optional[float], typer.Option(
        min=0.001, help="Full dataset: keep the frames ffmpeg's fps filter picks at this rate (the frames VHAP "
                        "extracts, e.g. 25).")] = None,
    codec: Annotated[CodecChoice, typer.Option(
        help="Codec preset (zstd, lz4, none are lossless; jpegxl is lossy, see --distance; "
             "h264 and hevc store chunks of --frames-per-chunk frames as video, see --crf; copy stores the "
             "mp4s' own packets, bit-equal, where their keyframes are regular).")] = CodecChoice.zstd,
    level: Annotated[int, typer.Option(help="Compression level of zstd / lz4.")] = 3,
    distance: Annotated[float, typer.Option(help="jpegxl: Butteraugli distance (0.6 ~45 dB on camera footage, 1 ~42 dB, 0 lossless).")] = 0.6,
    effort: Annotated[int, typer.Option(min=1, max=9, help="jpegxl: encoder effort, 1-9 (more: smaller, slower to write).")] = 5,
    crf: Annotated[Optional[int], typer.Option(min=0, max=51, help="h264 / hevc: the encoder's CRF (lower: better, larger; default: the highest that keeps --psnr on each sequence's first frames).")] = None,
    psnr: Annotated[float, typer.Option(min=20, max=80, help="h264 / hevc without --crf: the worst-frame PSNR (dB) the CRF is chosen to keep.")] = 43.5,
    preset: Annotated[str, typer.Option(help="h264 / hevc: the encoder's preset (ultrafast ... veryslow: slower writes, smaller chunks).")] = "medium",
    fast_decode: Annotated[bool, typer.Option("--fast-decode", help="h264 / hevc, for cubes read at random: B-frames no picture references and the encoder's fastdecode tune: a random frame decodes ~2x faster, chunks take ~16% more bytes.")] = False,
    frames_per_chunk: Annotated[Optional[int], typer.Option(
        min=1, help="Frames per chunk along time (default 1: fastest random access; h264 / hevc: 16, one GOP; "
                    "copy: the source's GOP).")] = None,
    frames_per_shard: Annotated[int, typer.Option(min=0, help="Frames per shard file (0: no sharding, a file per chunk).")] = 32,
    row_blocks: Annotated[int, typer.Option(min=1, help="zstd / lz4 / none: store each frame as this many chunks of rows, which a GPU decompresses in parallel (8: GpuFrames and FrameDataset.gpu_batches, docs/performance.md); 1: a frame per chunk.")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo parts that are already complete.")] = False,
    workers: Workers = None,
    scheduler: Scheduler = "threads",
    scales: Annotated[str, typer.Option(help="Also store reduced-resolution levels, e.g. 1,2,4 (integer factors).")] = "1",
    verify: Annotated[bool, typer.Option("--verify", help="Afterwards re-read 2 random frames of every video (and "
                                         "samples of the rest) and compare with the source; exit 4 on a mismatch.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Write nothing: check the source and print the frames, the store's size with each codec "
                          "preset and the time it would take, and whether it fits.")] = False,
    as_json: Json = False,
) -> None:
    """Convert a benchmark folder into a zarr cube: videos, alpha mattes, calibration, point clouds,
    FLAME tracking and SVFR images; or a full-dataset folder: videos, calibration with colour correction,
    background stills and the metadata tables (docs/dataset.md).

    Re-running skips what is complete; a run that was interrupted (even killed) is finished by running
    it again, redoing only unfinished videos. Object-store credentials come from the environment
    (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, fsspec config), never from the command line.
    """
    from ..cluster import check_scheduler, usable_cores
    from ..cube.storage import StorageSpec

    try:
        storage = StorageSpec(codec.value, level, frames_per_chunk, frames_per_shard, distance, effort, crf, preset, psnr,
                              fast_decode, row_blocks)
        check_scheduler(scheduler)
        factors = tuple(int(f) for f in scales.split(","))
        if any(f < 1 for f in factors):
            raise ValueError("scales are positive integers")
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    t0 = time.perf_counter()
    selection = _selection(benchmark, participant, sequence, camera, every_nth, fps)
    if dry_run:
        _print_estimate(source, store, storage, overwrite, factors, workers or usable_cores(), selection, as_json)
        return
    report, plan = run_convert(source, store, storage=storage, overwrite=overwrite, workers=workers,
                               scheduler=scheduler, scales=factors, **selection)
    secs = time.perf_counter() - t0
    for note in report.notes:
        err.print(f"note: {note}", highlight=False)
    checked = None
    if verify:
        from ..conversion.verify import verify as verify_cube

        with sized_bar("verifying") as (progress, on_start):
            checked = verify_cube(source, store, checked=plan, progress=progress, on_start=on_start)
        for line in checked.mismatches:
            err.print(f"mismatch: {line}", highlight=False)
    if as_json:
        print_json({"store": store, "written": report.written, "skipped": report.skipped, "items": report.items,
                    "seconds": round(secs, 3), "notes": report.notes,
                    **({"verified": checked.checked, "mismatches": checked.mismatches} if checked else {})})
    else:
        out.print(f"wrote {len(report.written)} nodes ({report.items} items in {secs:.1f} s), "
                  f"skipped {len(report.skipped)} complete: {store}", highlight=False)
        if checked:
            out.print(f"verified {checked.checked} samples against the source: "
                      f"{len(checked.mismatches)} mismatches", highlight=False)
    if checked:
        checked.raise_for_mismatches()


def _print_estimate(source: str, store: str, storage, overwrite: bool, scales: tuple[int, ...], workers: int,
                    selection: dict, as_json: bool) -> None:
    """``convert --dry-run``: plan and estimate, write nothing."""
    from ..conversion.estimate import estimate
    from ..conversion.plan import plan
    from ..cube.location import locate
    from ..cube.storage import StorageSpec
    from ..cube.summary import plural
    from ..source.files import as_path

    with sized_bar("checking the source") as (progress, on_start):
        checked = plan(as_path(source), **selection)
    target = locate(store)
    guess = estimate(target, checked, storage, overwrite, scales)
    wall = {codec: guess.wall_seconds(codec, workers) for codec in guess.bytes}
    if as_json:
        print_json({"frames_decoded": guess.decoded, "frames_written": guess.frames,
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
        quality = StorageSpec(codec).quality
        lossy = f", {quality}" if quality else ""
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
@user_errors
def verify(
    store: Store,
    full: Annotated[bool, typer.Option("--full", help="Read every chunk (default: 2 random shards of each array).")] = False,
    mark: Annotated[bool, typer.Option("--mark/--no-mark", help="Mark what is damaged so that convert, run again, "
                                       "re-converts exactly it.")] = True,
    as_json: Json = False,
) -> None:
    """Check a cube's chunks through their checksums, without the source: name the damaged frames, mark
    them for re-conversion (exit 4 if any)."""
    from ..cube.integrity import check_chunks, mark_for_repair
    from ..cube.location import locate

    with sized_bar("verifying") as (progress, on_start):
        report = check_chunks(store, full=full, progress=progress, on_start=on_start)
    if report.metadata:
        if as_json:
            print_json({"store": store, "damaged_metadata": [str(d) for d in report.metadata]})
        for damage in report.metadata:
            err.print(f"damaged metadata: {damage}", highlight=False)
        raise VerificationError(f"{store}: {len(report.metadata)} damaged metadata documents; run nersemble-cube "
                                "convert SOURCE STORE to repair them (it writes those nodes again from the source)")
    marked = bool(report.damage) and mark and not locate(store).read_only
    if marked:
        report.marked = mark_for_repair(store, report.damage)
    if as_json:
        print_json({"store": store, "chunks": report.chunks, "arrays": report.arrays,
                    "damaged": [str(d) for d in report.damage], "marked": list(report.marked or [])})
    else:
        for damage in report.damage:
            err.print(f"damaged: {damage}", highlight=False)
        out.print(f"checked {report.chunks} chunks of {report.arrays} arrays: {len(report.damage)} damaged",
                  highlight=False)
        if marked:
            err.print(f"marked for re-conversion: {', '.join(report.marked)}", highlight=False)
    if report.damage:
        fix = ("run nersemble-cube convert with the same source and store to re-convert them" if marked
               else "convert the nodes named above again with --overwrite")
        raise VerificationError(f"{store}: {len(report.damage)} damaged chunks; {fix}")


@app.command("import-alpha")
@user_errors
def import_alpha(
    store: Store,
    folder: Annotated[str, typer.Argument(metavar="FOLDER", help="Folder of mattes named cam_<serial>_<index>.jpg or .png (VHAP's "
                                          "<sequence>/alpha_maps).")],
    sequence: Sequence,
    fps: Annotated[float, typer.Option(
        min=0, help="The rate the mattes' frames were extracted at with ffmpeg's fps filter (VHAP: 25); 0: the "
                    "files are numbered by source frame.")] = 25.0,
    method: Annotated[Optional[str], typer.Option(help="How the mattes were made, recorded in attrs (e.g. "
                                                  "'VHAP background_matting_v2').")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace mattes the sequence has.")] = False,
    workers: Workers = None,
    as_json: Json = False,
) -> None:
    """Import alpha mattes made elsewhere (the full dataset has none) into a sequence's alpha, with provenance."""
    from ..conversion.mattes import import_alpha as import_mattes
    from ..cube.summary import plural

    with sized_bar("importing mattes") as (progress, on_start):
        report = import_mattes(store, folder, sequence, fps=fps or None, method=method, overwrite=overwrite,
                               workers=workers, progress=progress, on_start=on_start)
    if as_json:
        print_json({"store": store, "sequence": report.group, "cameras": list(report.cameras), "frames": report.frames})
        return
    out.print(f"wrote alpha of {report.group}: {plural(len(report.cameras), 'camera')} x "
              f"{plural(report.frames, 'frame')}", highlight=False)
