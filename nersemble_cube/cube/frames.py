"""Single frames straight from zarr, without xarray or dask: :class:`FrameReader` (what data-loader workers
keep open) and :func:`read_frame`. Importing this module does not import xarray, so a worker process
that only reads frames starts quickly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import IncompleteCubeError, SelectionError, StoreError
from .location import Location, locate


class FrameReader:
    """Random frames of one sequence's ``images`` or ``alpha`` straight from zarr, without a DataTree or
    dask: what a data loader's worker keeps open. The camera list, the array and every shard index read
    so far are kept, so each further frame costs one ranged read and its decode.

    ``sequence`` is ``"nvs/388/GLASSES"`` or the node's path ``"nvs/388/sequences/GLASSES"``; ``store`` and
    ``storage_options`` as for :func:`open`. Raises :class:`SelectionError` naming what exists when the
    sequence or variable is not in the cube, and :class:`IncompleteCubeError` when the sequence's conversion has
    not finished (being rewritten, or interrupted) unless ``incomplete`` (then its frames are read as stored).
    That is checked when the reader is made: a reader kept while ``convert --overwrite`` rewrites its sequence
    reads what is there at each read.
    """

    def __init__(self, store: str | Path | Location, sequence: str, variable: str = "images",
                 storage_options: dict | None = None, incomplete: bool = False):
        import zarr

        from .shards import ChunkReader

        from .schema import sequence_group

        self.location = locate(store, storage_options)
        self.sequence = sequence = sequence_group(sequence)
        root = self.location.zarr_store(read_only=True, strict=True)
        try:
            self.cameras = [str(c) for c in zarr.open_array(root, path=f"{sequence}/camera", mode="r", zarr_format=3)[:]]
            times = zarr.open_array(root, path=f"{sequence}/time", mode="r", zarr_format=3)[:].tolist()
            array = zarr.open_array(root, path=f"{sequence}/{variable}", mode="r", zarr_format=3)
        except (FileNotFoundError, KeyError, ValueError) as e:  # not found (zarr's errors are both), or unreadable
            from .access import find_node, open

            if not incomplete and (_finished(root, sequence) is False or _being_written(self.location)):
                raise IncompleteCubeError(self._unfinished()) from None

            seq = find_node(open(self.location, dask=False, incomplete=True), sequence)
            if variable not in seq.dataset:
                held = sorted(seq.dataset.data_vars)
                raise SelectionError(f"{sequence} has no {variable!r}; " + (f"it has {held}" if held else
                                     "it holds no frames (a hold-out sequence)")) from None
            raise StoreError(f"{self.location}: the metadata of {sequence}/{variable} cannot be read ({type(e).__name__}); "
                             "run nersemble-cube verify, then convert SOURCE STORE to repair it") from None
        if not incomplete and not _finished(root, sequence):
            raise IncompleteCubeError(self._unfinished())
        self.n_frames = array.shape[1]
        # the time coordinate: source frame indices, 0..n-1 unless only every n-th frame was converted
        self._positions = None if times == list(range(self.n_frames)) else {t: i for i, t in enumerate(times)}
        self._chunks = ChunkReader(array)

    def _unfinished(self) -> str:
        return (f"{self.location}: the conversion of {self.sequence} is running or did not finish; run the same "
                "nersemble-cube convert again to finish it (incomplete=True reads it as it is)")

    def read(self, serial: str | int, time: int) -> np.ndarray:
        """Frame ``time`` (the source frame index: the node's ``time`` coordinate) of camera ``serial`` (a string
        such as ``"222200042"``; an int is taken as that serial): ``(y, x, channel)`` uint8 for ``images``,
        ``(y, x)`` for ``alpha``, a new writable array (the lossless presets decompress straight into it).
        Raises :class:`SelectionError` naming the cameras or the frame range when it is not there."""
        coords, k = self.chunk_of(serial, time)
        try:
            return self._chunks.frame(coords, k)
        except ValueError:
            from .store import check_ranges

            check_ranges(self.location)  # a checksum failure may be a server that ignores Range requests: say so
            raise

    def chunk_of(self, serial: str | int, time: int) -> tuple[tuple[int, ...], int]:
        """``(chunk-grid position, frame within the chunk)`` of frame ``time`` of camera ``serial`` (the first row
        block of a frame stored in several); :class:`SelectionError` as :meth:`read`."""
        serial = str(serial)
        if serial not in self.cameras:
            raise SelectionError(f"camera {serial} has no video in {self.sequence}; it has {self.cameras}")
        if self._positions is not None:
            if time not in self._positions:
                kept = list(self._positions)
                raise SelectionError(f"frame {time} is not in {self.sequence}: it has {len(kept)} of the source "
                                     f"frames, {kept[0]} to {kept[-1]} (every n-th: list them with its time coordinate)")
            time = self._positions[time]
        elif not 0 <= time < self.n_frames:
            raise SelectionError(f"frame {time} is not in {self.sequence}: it has frames 0 to {self.n_frames - 1}")
        per_chunk = self._chunks.chunk_shape[1]
        return (self.cameras.index(serial), time // per_chunk) + (0,) * (len(self._chunks.chunk_shape) - 2), time % per_chunk


def _being_written(location: Location) -> bool:
    """Whether the root attrs of the cube say a conversion is writing it (or was, and did not finish)."""
    import json

    try:
        return "writing" in json.loads(location.read_bytes("zarr.json") or b"{}").get("attributes", {})
    except (ValueError, AttributeError):  # a damaged root document: named by open and verify
        return False


def _finished(root, group: str) -> bool | None:
    """Whether the node ``group`` of the zarr store ``root`` says its conversion finished (attr ``complete``);
    None where there is no such group."""
    import zarr

    try:
        return zarr.open_group(root, path=group, mode="r", zarr_format=3).attrs.get("complete") is True
    except (FileNotFoundError, KeyError, ValueError):  # zarr's GroupNotFoundError is both
        return None


def read_frame(store: str | Path | Location, sequence: str, serial: str | int, time: int, variable: str = "images",
               storage_options: dict | None = None) -> np.ndarray:
    """One frame straight from zarr, without building a DataTree or a dask graph: the cheapest single read
    (:class:`FrameReader` for many reads of one sequence).

    ``sequence`` is ``"nvs/388/GLASSES"`` or the node's path ``"nvs/388/sequences/GLASSES"``, ``serial`` a
    camera serial (str or int), ``time`` the frame index; ``store`` and ``storage_options`` as for :func:`open`. Returns ``(y, x, channel)`` uint8 for
    ``images``, ``(y, x)`` for ``alpha``. In a fresh process it costs a few metadata
    reads and the frame's bytes. Raises :class:`SelectionError` naming what exists (the sequences, the cameras with
    video, the frame range) when the selection is not in the cube.
    """
    return FrameReader(store, sequence, variable, storage_options).read(serial, time)
