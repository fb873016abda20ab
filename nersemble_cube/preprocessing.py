"""Write a preprocessed copy of a cube: the ``ds.nersemble`` steps applied to every video sequence, in parallel with dask.

Frames stream through dask one chunk (one camera-frame) per task, so memory stays bounded by the
number of workers, whatever the sequence length. Nodes without frames (calibration, point clouds,
tracking, SVFR) are copied unchanged. The output is a cube of the same schema whose root attrs
record the steps (``preprocessing``); frame arrays are written one frame per chunk, zstd, unsharded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import dask
import xarray as xr

from . import accessor  # noqa: F401 - registers ds.nersemble
from .cluster import Progress, check_scheduler, computing
from .cube.access import open as open_cube
from .cube.location import Location, locate
from .cube.schema import encoding
from .cube.storage import StorageSpec
from .cube.store import check_target, consolidate, mark_complete, prepare_target, remove_group, set_attrs
from .errors import StoreError

OUTPUT_STORAGE = StorageSpec("zstd", frames_per_shard=0)


@dataclass(frozen=True)
class Steps:
    """Preprocessing steps, applied in this order: colour correction (full dataset), composite, crop to alpha,
    downscale, to float."""

    composite: str | None = None
    crop_to_alpha: int | None = None
    downscale: int = 1
    to_float: bool = False
    color_correct: bool = False

    def apply(self, ds: xr.Dataset) -> xr.Dataset:
        """The steps on one sequence Dataset (lazy). With ``color_correct`` a sequence without a colour
        correction (a benchmark sequence) is a :class:`~nersemble_cube.errors.SelectionError`."""
        if self.color_correct:
            ds = ds.nersemble.color_correct()
        if self.composite is not None:
            ds = ds.nersemble.composite(self.composite)
        if self.crop_to_alpha is not None:
            ds = ds.nersemble.crop_to_alpha(self.crop_to_alpha)
        if self.downscale > 1:
            ds = ds.nersemble.downscale(self.downscale)
        if self.to_float:
            ds = ds.nersemble.to_float()
        return ds


def preprocess(store: str | Path, out: str | Path, steps: Steps, *, workers: int | None = None,
               scheduler: str | None = None, progress: Progress | None = None,
               on_start: Callable[[int], None] | None = None) -> Path | Location:
    """Write ``steps`` applied to every sequence of the cube ``store`` into the new cube ``out``.

    ``workers`` dask threads (default: the cores this process may use), or on a dask.distributed cluster (``scheduler`` as for
    :func:`~nersemble_cube.convert`; its workers must reach ``store`` and ``out``). ``on_start`` gets the number of dask tasks,
    ``progress`` is called as they finish. Raises :class:`StoreError` if ``out`` exists and is not
    an empty folder, and the steps' own errors (an unknown background...) before creating anything;
    a run that fails or is interrupted while writing removes what it wrote.
    """
    if scheduler is not None:
        check_scheduler(scheduler)  # ValueError before anything is created
    out = locate(out)
    if check_target(out):
        raise StoreError(f"{out}: already a cube; preprocess writes a new one, choose another path")
    tree = open_cube(store)
    # every step is applied (lazily) before anything is created, so a bad argument leaves no folder behind
    nodes, done = [], []
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        path = node.path.lstrip("/")
        if not path or (not ds.data_vars and not ds.attrs):
            continue
        if "images" in ds and "time" in ds.dims:
            ds = steps.apply(node.to_dataset())
            ds = ds.drop_vars([c for c in ds.coords if c not in ds.dims and c not in ("role", "crop_x0", "crop_y0")])
            ds.attrs["storage"] = OUTPUT_STORAGE.to_attrs()
        if "complete" in ds.attrs:
            ds.attrs["complete"] = False  # set again once the data is written
            done.append(path)
        nodes.append((path, ds))
    prepare_target(out)
    try:
        set_attrs(out, "", {"preprocessing": asdict(steps)})
        writes = [ds.to_zarr(out.zarr_store(), group=path, mode="w", compute=False, zarr_format=3, consolidated=False,
                             encoding=encoding(ds, OUTPUT_STORAGE), write_empty_chunks=True) for path, ds in nodes]
        (graph,) = dask.optimize(dask.delayed(writes))
        with computing(scheduler, workers, progress) as compute:
            if on_start:
                on_start(len(graph.__dask_graph__()))
            compute(graph)
        for path in done:
            mark_complete(out, path)
        consolidate(out)
    except BaseException:
        remove_group(out, "")  # a new cube that did not finish: nothing a later run or reader mistakes for one
        raise
    return out.path if out.is_local else out
