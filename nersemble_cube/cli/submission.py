"""``template``, ``export`` and ``validate``: from predictions to a checked submission zip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InvalidSubmissionError
from ._app import (BenchmarkChoice, Json, Scheduler, VideoBenchmark, Workers, app, check_scheduler, out, print_json,
                   sized_bar, user_errors)

BenchmarkOption = typer.Option("--benchmark", "-b", help="The benchmark.")
Partial = Annotated[bool, typer.Option("--partial", help="A submission that may lack videos or meshes (e.g. a "
                                       "download of some participants): the ones present are checked as usual.")]


@app.command()
@user_errors
def template(
    cube: Annotated[str, typer.Argument(metavar="CUBE", help="The cube converted from the benchmark folder (a path or an fsspec URL).")],
    store: Annotated[Path, typer.Argument(metavar="STORE", help="New zarr store for the predictions.")],
    benchmark: Annotated[VideoBenchmark, typer.Option(
        "--benchmark", "-b", help="The benchmark (svfr predictions are meshes: no template).")],
    as_json: Json = False,
) -> None:
    """Write an empty prediction store: every video to render, with its cameras' calibration.

    Fill it with nersemble_cube.write_frames (any order, in parallel), then run export.
    """
    from ..submission.template import prediction_template, template_counts

    videos, frames = template_counts(prediction_template(cube, benchmark.value, store=store))
    if as_json:
        print_json({"store": store, "benchmark": benchmark.value, "videos": videos, "frames": frames})
        return
    out.print(f"prediction store for {videos} videos ({frames} frames) written: {store}", highlight=False)


@app.command()
@user_errors
def export(
    predictions: Annotated[Path, typer.Argument(metavar="PREDICTIONS", help="Prediction zarr store (from `template`, filled; svfr: meshes).")],
    zip_path: Annotated[Path, typer.Argument(metavar="ZIP", help="Submission zip to write.")],
    benchmark: Annotated[BenchmarkChoice, BenchmarkOption],
    partial: Partial = False,
    workers: Workers = None,
    scheduler: Scheduler = "threads",
    as_json: Json = False,
) -> None:
    """Write the submission zip (H.264 crf 14 videos, or SVFR meshes) from predictions."""
    from ..submission.export import export_submission

    check_scheduler(scheduler)
    with sized_bar("exporting") as (progress, on_start):
        report = export_submission(predictions, zip_path, benchmark.value, partial=partial, workers=workers,
                                   scheduler=scheduler, progress=progress, on_start=on_start)
    if as_json:
        print_json({"zip": zip_path, "benchmark": benchmark.value, "entries": list(report.entries),
                    "left_out": list(report.missing)})
        return
    note = f", {len(report.missing)} expected entries left out (--partial)" if report.missing else ""
    out.print(f"wrote {zip_path} with {len(report.entries)} entries{note}", highlight=False)


@app.command()
@user_errors
def validate(
    zip_path: Annotated[Path, typer.Argument(metavar="ZIP", exists=True, dir_okay=False, help="Submission zip to check.")],
    benchmark: Annotated[BenchmarkChoice, BenchmarkOption],
    cube: Annotated[Optional[str], typer.Option(help="Cube of the benchmark data (a path or an fsspec URL), for the "
                                                  "expected frame counts.")] = None,
    partial: Partial = False,
    as_json: Json = False,
) -> None:
    """Check a submission zip offline. Exit 0 only if it is valid (6 if not)."""
    from ..cube.summary import plural
    from ..submission.validate import validate_submission

    report = validate_submission(zip_path, benchmark.value, cube=cube, partial=partial)
    if as_json:
        print_json({"zip": zip_path, "benchmark": benchmark.value, "valid": report.valid, "checked": report.checked,
                    "issues": report.issues, "warnings": report.warnings, "left_out": report.left_out})
    else:
        out.print(report.format(), highlight=False)
    if not report.valid:
        kinds = len(report.issues)
        raise InvalidSubmissionError(f"{zip_path} is not a valid {benchmark.value} submission ({plural(kinds, 'kind')} "
                                     f"of {'issue' if kinds == 1 else 'issues'}, listed above)")
