"""Importing alpha mattes made elsewhere into a sequence node's ``alpha`` (the full dataset ships none).

The mattes come as image folders (:mod:`~nersemble_cube.source.mattes`: VHAP's ``alpha_maps/``). Every
frame of every camera of the node must have one, of the frames' size, before anything is written; then the
node is marked incomplete, ``alpha`` is written a camera per task (whole shards, like a conversion, with
its completion flag per camera) and the node is marked complete again. Provenance is kept in the ``alpha``
variable's attrs. An interrupted import leaves the node incomplete: run it again (``open`` warns until then).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ..cluster import Progress, Task, runner
from ..cube import schema, store
from ..cube.location import Location, locate
from ..cube.lock import writer_lock
from ..cube.shards import ShardWriter
from ..cube.storage import StorageSpec
from ..errors import SelectionError, SourceError, StoreError, UsageError
from ..source.converters.video import fps_filter_frames
from ..source.files import SourcePath
from ..source.converters.image import read_gray
from ..source.mattes import MatteFolder, discover_mattes

ALPHA = "alpha"
IMPORTING = "importing_alpha"
"""Node attr while `import-alpha` writes the node's mattes: an import killed half-way is redone by the same command."""


@dataclass
class MatteImport:
    """What :func:`import_alpha` wrote: the node, its cameras and frames, and the files used."""

    group: str
    cameras: list[str]
    frames: int
    files: int


def _file_for_frame(mattes: MatteFolder, serial: str, times: np.ndarray, fps: float | None,
                    source_fps: float) -> list[Path]:
    """The matte of each source frame ``times`` of camera ``serial``: with ``fps`` the file numbered k holds
    the frame ffmpeg's fps filter picked k-th (:func:`fps_filter_frames`), else file k holds source frame k."""
    by_index = mattes.files.get(serial, {})
    if fps is None or not by_index:
        by_frame = by_index
    else:  # a video long enough for the fps filter to output every numbered file
        picked = fps_filter_frames(int((max(by_index) + 2) * source_fps / fps) + 2, source_fps, fps)
        by_frame = {int(picked[k]): path for k, path in by_index.items() if k < len(picked)}
    missing = [int(t) for t in times if int(t) not in by_frame]
    if missing:
        raise SourceError(
            f"{mattes.folder}: no matte of camera {serial} for {len(missing)} of the node's {len(times)} frames "
            f"(first: source frame {missing[0]}); the mattes must cover every frame converted: convert with the "
            "frames they were made for (VHAP: --fps 25) or pass their --fps")
    return [by_frame[int(t)] for t in times]


def fill_alpha(target: Location, group: str, camera: int, paths: list[Path], size: tuple[int, int],
               frames_per_write: int, progress: Progress) -> None:
    """Decode the mattes ``paths`` (the camera's frames in ``time`` order) into ``alpha`` of camera index
    ``camera``, a whole shard at a time, then flag the camera complete."""
    writer = ShardWriter(store.open_for_writing(target, f"{group}/{ALPHA}"))
    for start in range(0, len(paths), frames_per_write):
        block = np.stack([read_gray(p, size) for p in paths[start:start + frames_per_write]])
        writer.write((camera, start, 0, 0), block[None])
        progress(len(block))
    store.set_flags(target, group, ALPHA, camera)


def import_alpha(store_path: str | Path | Location, folder: str | Path | SourcePath, sequence: str, *,
                 fps: float | None = 25.0, method: str | None = None, overwrite: bool = False,
                 workers: int | None = None, progress: Progress | None = None,
                 on_start: Callable[[int], None] | None = None) -> MatteImport:
    """Write the mattes in ``folder`` as ``alpha (camera, time, y, x)`` uint8 of the sequence node ``sequence``
    (``"dataset/018/EXP-1-head"``) of the cube at ``store_path``.

    ``fps``: the frame rate the mattes' frames were extracted at by ffmpeg's ``fps`` filter (VHAP's
    ``preprocess_video.py``: 25 by default), numbered from 0; None: the files are numbered by source frame.
    ``method`` is recorded (e.g. ``"VHAP background_matting_v2"``). The node must not hold ``alpha`` yet
    unless ``overwrite``. Raises :class:`SourceError` (no mattes for some frame, mattes of another size) and
    :class:`SelectionError` (no such sequence) before anything is written.
    """
    if fps is not None and fps <= 0:
        raise UsageError(f"fps must be positive, not {fps:g}")
    target = locate(store_path)
    store.check_cube(target)
    group = schema.sequence_group(sequence)
    try:
        node = store.open_group(target, group)
        images = node["images"]
    except (KeyError, FileNotFoundError, ValueError):
        from ..cube.access import find_node
        from ..cube.access import open as open_cube

        find_node(open_cube(target, dask=False, incomplete=True), group)  # a SelectionError naming what the cube holds instead
        raise SelectionError(f"{group} in {target} has no frames (a hold-out sequence); mattes belong to frames") from None
    interrupted = node.attrs.get(IMPORTING) is True  # an import killed before it finished: redone from the start
    if ALPHA in node and not (overwrite or interrupted):
        raise StoreError(f"{group} already has alpha mattes; pass overwrite (--overwrite) to replace them")
    mattes = discover_mattes(folder)
    size = tuple(images.shape[2:4])
    if mattes.size != size:
        raise SourceError(f"{mattes.folder}: mattes are {mattes.size[0]}x{mattes.size[1]} (height x width) but the "
                          f"frames of {group} are {size[0]}x{size[1]}; import full-size mattes into the full-size cube")
    serials = [str(s) for s in node["camera"][:]]
    times = node["time"][:]
    source_fps = float(node.attrs.get("source_fps", node.attrs.get("fps")))
    files = {s: _file_for_frame(mattes, s, times, fps, source_fps) for s in serials}
    storage = StorageSpec.from_attrs(node.attrs["storage"])
    template = xr.Dataset({
        ALPHA: (schema.ALPHA_DIMS, da.zeros((len(serials), len(times), *size), dtype=np.uint8,
                                            chunks=(1, storage.shard_frames(len(times)), *size)),
                {"long_name": "foreground alpha matte, imported", "units": "1 (0-255)",
                 "source": str(mattes.folder), "method": method or "unknown",
                 "frames": f"file k = source frame of ffmpeg's fps={fps:g} filter" if fps else "file k = source frame k"}),
        ALPHA + schema.FLAG_SUFFIX: schema.flag_variable("camera", len(serials), "imported alpha matte"),
    }, attrs={**node.attrs.asdict(), "complete": False, IMPORTING: True})  # to_zarr replaces the node's attrs
    with writer_lock(target), runner("threads", workers) as run:
        store.begin_writing(target, "import-alpha")
        store.set_attrs(target, group, {"complete": False, IMPORTING: True})
        for name in (ALPHA, ALPHA + schema.FLAG_SUFFIX):  # mattes replaced, or left by an interrupted import
            store.remove_group(target, f"{group}/{name}")
        template.to_zarr(target.zarr_store(), group=group, mode="a", compute=False, zarr_format=3,
                         consolidated=False, encoding=schema.encoding(template, storage), write_empty_chunks=True)
        store.consolidate(target)
        per_write = storage.shard_frames(len(times))
        tasks = [Task(f"{group}/{ALPHA}/{c}", len(times), fill_alpha, (target, group, c, files[s], size, per_write))
                 for c, s in enumerate(serials)]
        if on_start:
            on_start(len(tasks) * len(times))
        for _, _, error in run.run(tasks, progress or (lambda n: None)):
            if error is not None:
                raise error
        store.mark_complete(target, group, remove=(IMPORTING,))
        store.end_writing(target)
        store.consolidate(target)
    return MatteImport(group, serials, len(times), len(serials) * len(times))
