"""Lazy access: open a cube as an :class:`xarray.DataTree` backed by dask, and describe it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from ..errors import IncompleteCubeError, SelectionError, StoreError
from ..source.converters.flame import FlameTracking
from ..source.converters.pcd import colors_as_float
from .location import Location, locate
from .schema import FLAGS, POINTCLOUDS, WRITING, scale_path, tracking_node
from .store import check_ranges, strict_nodes


class IncompleteCubeWarning(UserWarning):
    """``open(..., incomplete=True)`` of a cube whose conversion did not finish; convert again to complete it."""


class _FrameArray(BackendArray):
    """A frame array (``images``, ``alpha``) of a cube opened with ``dask=False``: a selection inside one chunk
    (a frame of a camera, or part of it) is read through :class:`~nersemble_cube.cube.shards.ChunkReader`,
    which keeps each shard's index once read, so it costs one ranged read and the decode; other selections go
    through zarr. ``array``: the zarr array xarray opened from the consolidated metadata (else it is opened
    from ``store`` at ``path`` on the first read, as after unpickling in a DataLoader worker)."""

    def __init__(self, store, path: str, shape: tuple[int, ...], dtype: np.dtype, array=None):
        self.store, self.path, self.shape, self.dtype = store, path, shape, dtype
        self._array, self._reader = array, None

    def __getstate__(self) -> dict:  # DataLoader workers: the store and path travel, the caches do not
        return {**self.__dict__, "_array": None, "_reader": None}

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._read)

    def _read(self, key: tuple) -> np.ndarray:
        import zarr

        from .shards import ChunkReader

        if self._array is None:
            self._array = zarr.open_array(self.store, path=self.path, mode="r", zarr_format=3)
        if self._reader is None:
            self._reader = ChunkReader(self._array)
        is_index = [isinstance(k, (int, np.integer)) for k in key]
        ranges = [(k, k + 1) if index else k.indices(n)[:2] if k.step in (None, 1) else None
                  for k, index, n in zip(key, is_index, self.shape)]
        size = self._reader.chunk_shape
        if self._reader.row_blocks > 1 and None not in ranges[:2] and ranges[0][1] - ranges[0][0] == 1:
            times = range(*ranges[1])  # frames of one camera, each joined from its row blocks
            frames = np.empty((len(times), *self.shape[2:]), self.dtype)
            for i, t in enumerate(times):
                self._reader.frame_of_blocks((ranges[0][0], t) + (0,) * (len(size) - 2), frames[i])
            return frames[None][(0 if is_index[0] else slice(None), 0 if is_index[1] else slice(None), *key[2:])]
        if any(r is None or r[1] <= r[0] or r[0] // c != (r[1] - 1) // c for r, c in zip(ranges, size)):
            return np.asarray(self._array[key])  # empty, strided or across chunks: zarr's own path
        corner = [a - a % c for (a, _), c in zip(ranges, size)]
        coords = tuple(o // c for o, c in zip(corner, size))
        within = tuple(a - o if index else slice(a - o, b - o) for (a, b), o, index in zip(ranges, corner, is_index))
        if len(size) > 2 and size[0] == 1 and ranges[1][1] - ranges[1][0] == 1:  # one frame of a camera: a video
            frame = self._reader.frame(coords, ranges[1][0] - corner[1])[None, None]  # chunk decodes only up to it
            return frame[(within[0], 0 if is_index[1] else slice(0, 1), *within[2:])]
        return self._reader.chunk(coords)[within]


def as_tree(cube: xr.DataTree | str | Path | Location, *, dask: bool = True) -> xr.DataTree:
    """``cube`` itself if it is already an opened tree, else :func:`open` of its path or URL."""
    return cube if isinstance(cube, xr.DataTree) else open(cube, dask=dask)


def _unfinished(path: Location, nodes: list[str], attrs: dict) -> str:
    where = f" (unfinished: {', '.join(nodes[:6])}{', ...' if len(nodes) > 6 else ''})" if nodes else ""
    command = attrs.get(WRITING, {}).get("command", "convert") if isinstance(attrs.get(WRITING), dict) else "convert"
    return (f"{path}: a conversion into this cube is running or did not finish{where}; run the same nersemble-cube "
            f"{command} again to finish it (open(..., incomplete=True) reads the finished parts)")


def _incomplete_nodes(tree: xr.DataTree) -> list[str]:
    return [node.path for node in tree.subtree if node.attrs.get("complete") is False]


def open(store: str | Path | Location, *, dask: bool = True, scale: int = 1,  # noqa: A001
         storage_options: dict | None = None, incomplete: bool = False) -> xr.DataTree:
    """Open the cube at ``store`` lazily.

    ``store`` is a local path or an fsspec URL: ``s3://bucket/cube.zarr``, ``gs://...``,
    ``http://host/cube.zarr`` (read-only; needs the consolidated metadata every conversion writes),
    with ``storage_options`` for fsspec (endpoint, credentials; else the usual configuration).

    Returns the whole tree (``tree["nvs/388/sequences/GLASSES"]`` etc., see docs/schema.md).
    With ``dask=True`` every variable is a dask array chunked like the store (one chunk per camera
    and frame by default), ready for parallel, out-of-core computation. With ``dask=False`` the
    variables are xarray's lazily indexed arrays: nothing is read until a selection is turned into
    numpy, which then reads only its chunks with less overhead per read; a selection inside one chunk
    (a frame of a camera) costs one ranged read and its decode, each shard's index being kept once read
    (:class:`_FrameArray`); use it in PyTorch DataLoader workers. Either way ``.sel(camera=...,
    time=...)`` reads only the chunks it needs.

    ``scale`` selects a reduced-resolution level written with ``convert --scales``: the returned
    tree has the same paths (``nvs/388/sequences/GLASSES``, ``nvs/388/calibration``) with frames
    area-averaged by ``scale`` and intrinsics to match (root attr ``scale_factor``).

    The writer's per-camera and per-timestep completion flags (``*_complete``) are left out, and so
    are the reduced levels (``scales/``, opened with ``scale``), so that ``print(tree)`` shows data.

    Opening reads the consolidated metadata and the small dimension coordinates (serials, frame
    indices, channel names); over http(s) also one byte, to refuse a server that ignores Range requests.
    Raises :class:`~nersemble_cube.errors.StoreError` if ``store`` is not a cube, and
    :class:`~nersemble_cube.errors.IncompleteCubeError` if a conversion into it is running or did not finish
    (its unfinished parts would read as fill values or half-written data); with ``incomplete=True`` such a
    cube opens with an :class:`IncompleteCubeWarning` naming the unfinished nodes (their ``complete`` attr is
    False: read only nodes whose ``complete`` is True), as far as its metadata can be read.

    Damage never reads as data (cubes of schema 1.1): a chunk whose crc32c does not match raises zarr's
    ``ValueError`` ("checksum do not match"), and a chunk of a complete node that is not in the store
    raises :class:`~nersemble_cube.errors.StoreError`; ``nersemble-cube verify`` finds them all.
    """
    path = locate(store, storage_options)
    attrs, strict = strict_nodes(path)
    check_ranges(path)
    # the writer's completion flags are bookkeeping, not data: left out of every node
    zarr_store = path.zarr_store(read_only=True, strict=strict or False)
    writing = WRITING in attrs
    if writing and not incomplete:
        raise IncompleteCubeError(_unfinished(path, [], attrs))
    try:
        tree = xr.open_datatree(zarr_store, engine="zarr",
                                chunks={} if dask else None, consolidated=True, zarr_format=3, drop_variables=FLAGS)
    except (ValueError, KeyError, FileNotFoundError):
        if not writing:
            raise
        # killed half-way: the consolidated metadata or a node being rewritten may be missing or out of step
        raise IncompleteCubeError(_unfinished(path, [], attrs) + "; its metadata cannot be read until then") from None
    if scale != 1:
        levels = tree.attrs.get("multiscales", [1])
        if scale not in levels:
            raise StoreError(f"{path}: no scale {scale} in this cube (it has {levels}); convert with --scales")
        tree = tree[scale_path(scale)].copy()
        tree.orphan()
        tree.attrs["scale_factor"] = scale
    elif "scales" in tree.children:
        tree = tree.drop_nodes("scales")  # the reduced levels open with scale=; they only clutter the tree
    if not dask or path.is_local:  # a remote array's metadata would be fetched again: zarr's path reuses it
        _read_frames_by_chunk(tree, zarr_store, f"{scale_path(scale)}/" if scale != 1 else "", dask)
    unfinished = _incomplete_nodes(tree)
    if unfinished and not incomplete:
        raise IncompleteCubeError(_unfinished(path, unfinished, attrs))
    if writing or unfinished:
        warnings.warn(_unfinished(path, unfinished, attrs), IncompleteCubeWarning, stacklevel=2)
    return tree


def _read_frames_by_chunk(tree: xr.DataTree, store, prefix: str, dask: bool) -> None:
    """Back the frame arrays of ``tree`` by :class:`_FrameArray`s of ``store``, in place (with ``dask``, dask
    arrays of them chunked as xarray chunked the zarr arrays: each task decodes its chunk straight into a new
    array, without zarr's event loop and its copy into an output buffer); ``prefix``: where the tree's nodes lie
    in the store (a reduced level's ``scales/{f}/``)."""
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        names = [n for n in ("images", "alpha") if n in ds.data_vars]
        if names:
            path = prefix + node.path.lstrip("/")
            variables = {}
            for n in names:
                var = ds[n].variable
                backed = xr.Variable(var.dims, indexing.LazilyIndexedArray(_FrameArray(
                    store, f"{path}/{n}", var.shape, var.dtype, _opened_array(var))), ds[n].attrs, ds[n].encoding)
                if dask:
                    chunks = dict(zip(var.dims, var.chunks))
                    if len(var.chunks[2]) > 1:  # frames in row blocks: a task reads whole frames
                        chunks.update({d: -1 for d in var.dims[2:]})
                    backed = backed.chunk(chunks)
                variables[n] = backed
            node.dataset = ds.assign(variables)


def _opened_array(var: xr.Variable):
    """The zarr array behind a variable xarray's zarr backend opened lazily (None where its internals differ)."""
    import zarr

    wrapped = getattr(var, "_data", None)
    for _ in range(8):  # xarray's wrappers (memory cache, copy on write, lazy indexing) around the zarr one
        if wrapped is None or isinstance(getattr(wrapped, "_array", None), zarr.Array):
            break
        wrapped = getattr(wrapped, "array", None)
    array = getattr(wrapped, "_array", None)
    return array if isinstance(array, zarr.Array) else None


def find_node(tree: xr.DataTree, path: str) -> xr.DataTree:
    """``tree[path]``, or a :class:`SelectionError` naming what the deepest existing node holds instead."""
    parts = [p for p in path.strip("/").split("/") if p]
    current = tree
    for depth, part in enumerate(parts):
        if part not in current.children:
            where = "/".join(parts[:depth]) or "the cube"
            raise SelectionError(f"{path}: {where} has no {part!r}; it has {sorted(current.children)}")
        current = current[part]
    return current


def _child(node: xr.DataTree | xr.Dataset, name: str, needs: str) -> xr.Dataset:
    """``node`` itself if it is the node ``name`` (or its Dataset), else its child ``name``; a
    :class:`SelectionError` when it is neither (``needs``: a variable only that node has)."""
    if isinstance(node, xr.Dataset):
        if needs not in node:
            raise SelectionError(f"this Dataset has no {needs!r}: pass the sequence node (tree['.../sequences/SEQ']), "
                                 f"not its Dataset; {name!r} is a child node of it")
        return node
    if node.name == name:
        return node.to_dataset(inherit=False)
    if name not in node.children:
        raise SelectionError(f"{node.path} has no {name!r} node (children: {sorted(node.children)})")
    return node[name].to_dataset(inherit=False)


def load_pointcloud(node: xr.DataTree | xr.Dataset, timestep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The point cloud of ``timestep`` as the toolkit's ``NVSDataManager.load_pointcloud`` returns it.

    ``node`` is a sequence node (``tree["nvs/388/sequences/GLASSES"]``), its ``pointclouds`` node, or
    that node's Dataset. Returns ``(points, colors, normals)``, each ``(n, 3)`` float32: positions in
    metres (world), colours in [0, 1] (``uint8 / 255``, as open3d reads them), normals as stored;
    ``(0, 3)`` for a field the file did not have, as open3d does. Reads only that timestep's slice.
    Raises :class:`SelectionError` naming the timesteps present if ``timestep`` was not downloaded.
    """
    ds = _child(node, POINTCLOUDS, "positions")
    steps = ds["timestep"].values
    hits = np.flatnonzero(steps == timestep)
    if not len(hits):
        raise SelectionError(f"no point cloud for timestep {timestep}; the cube has timesteps {steps.tolist()}")
    i = int(hits[0])
    start = int(ds["offset"].values[i])
    points = slice(start, start + int(ds["count"].values[i]))
    empty = np.zeros((0, 3), np.float32)
    positions = np.asarray(ds["positions"].isel(point=points).values, np.float32)
    colors = colors_as_float(ds["colors"].isel(point=points).values) if "colors" in ds else empty
    normals = np.asarray(ds["normals"].isel(point=points).values, np.float32) if "normals" in ds else empty
    return positions, colors, normals


def flame_tracking(node: xr.DataTree | xr.Dataset, version: int = 2) -> FlameTracking:
    """The FLAME tracking of a sequence as the toolkit's ``FlameTracking`` (same field names, shapes
    ``shape (1, 300)``, ``expression (T, 100)``, ..., ``scale (1, 1)``, and the stored dtypes).

    ``node`` is a sequence node (its ``flame2023_tracking_v{version}`` child is used), the tracking
    node itself, or its Dataset. Version 2 is the default and the only one valid for submissions.
    """
    ds = _child(node, tracking_node(version), "expression")
    time_dim = ds["expression"].dims[0]
    return FlameTracking(
        shape=ds["shape"].values[None, :],
        expression=ds["expression"].values,
        rotation=ds["rotation"].values,
        rotation_matrices=ds["rotation_matrices"].values,
        translation=ds["translation"].values,
        jaw=ds["jaw"].values,
        frames=ds[time_dim].values,
        scale=ds["scale"].values.reshape(1, 1),
        neck=ds["neck"].values,
        eyes=ds["eyes"].values,
    )


__all__ = ["IncompleteCubeWarning", "as_tree", "flame_tracking", "load_pointcloud", "open"]
