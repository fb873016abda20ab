"""``info`` and ``preview``: what a cube holds, in words, JSON or pictures."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..source import layout
from ._app import Json, Store, app, choices, err, out, print_json, sized_bar, user_errors

AlphaView = choices("AlphaView", ("overlay", "composite", "none"))


@app.command()
@user_errors
def info(store: Store, as_json: Json = False) -> None:
    """Print what a cube holds (sizes are height x width)."""
    from ..cube import access
    from ..cube.store import stored_bytes
    from ..cube.summary import summary, summary_facts

    with warnings.catch_warnings():  # the summary's first line says INCOMPLETE itself
        warnings.simplefilter("ignore", access.IncompleteCubeWarning)
        tree = access.open(store, dask=False, incomplete=True)  # metadata and coordinates: no dask graph needed
    try:
        per_benchmark = {b: stored_bytes(store, b) for b in (*layout.BENCHMARKS, "dataset")}
        total = stored_bytes(store)
    except (OSError, NotImplementedError, ValueError):  # stores that cannot list (http)
        per_benchmark, total = {}, None
    if as_json:
        print_json({**summary_facts(tree), "stored_bytes": {"total": total, **per_benchmark}})
        return
    out.print(summary(tree), highlight=False)
    if total is not None:
        sizes = [f"{b} {n / 1e6:.1f} MB" for b, n in per_benchmark.items() if n]
        out.print(f"stored: {', '.join(sizes)}; total {total / 1e6:.1f} MB", highlight=False)


@app.command()
@user_errors
def preview(
    store: Store,
    out_png: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("preview.png"),
    sequence: Annotated[str, typer.Option(
        "--sequence", "-s", help="Sequence to show: nvs/388/GLASSES or nvs/388/sequences/GLASSES.")] = "nvs/388/GLASSES",
    n_frames: Annotated[int, typer.Option("--n-frames", "-n", min=1, help="Frames per camera.")] = 4,
    alpha: Annotated[AlphaView, typer.Option(help="Show the matte over the frame, composited, or not.")] = AlphaView("overlay"),
    rig: Annotated[Optional[str], typer.Option(
        help="Plot this calibration node's camera rig instead (e.g. nvs/388/calibration).")] = None,
) -> None:
    """Save a contact sheet of cameras x frames, or with --rig a 3D plot of the cameras (needs matplotlib)."""
    try:
        import matplotlib  # noqa: F401

        from ..preview import contact_sheet, rig_plot
    except ImportError:
        raise typer.BadParameter("preview needs matplotlib: pip install 'nersemble-cube[preview]'") from None
    if rig:
        written = rig_plot(store, rig, out_png)
    else:
        with sized_bar("drawing") as (progress, on_start):
            written = contact_sheet(store, sequence, out_png, n_frames, alpha=alpha.value, progress=progress,
                                    on_start=on_start)
    err.print(f"wrote {written}", highlight=False)
