"""Lazy access: open a cube as an :class:`xarray.DataTree` backed by dask, and describe it."""

from __future__ import annotations

import warnings
from pathlib import Path

import xarray as xr

from .store import check_cube


class IncompleteCubeWarning(UserWarning):
    """The cube holds a node whose conversion did not finish; convert again to complete it."""


def _incomplete_nodes(tree: xr.DataTree) -> list[str]:
    return [node.path for node in tree.subtree if node.attrs.get("complete") is False]


def open(store: str | Path, *, dask: bool = True) -> xr.DataTree:  # noqa: A001
    """Open the cube at ``store`` lazily.

    Returns the whole tree (``tree["nvs/388/sequences/GLASSES"]`` etc., see docs/schema.md).
    With ``dask=True`` every variable is a dask array chunked like the store (one chunk per camera
    and frame by default), ready for parallel, out-of-core computation. With ``dask=False`` the
    variables are xarray's lazily indexed arrays: nothing is read until a selection is turned into
    numpy, which then reads only its chunks with less overhead per read (about half the latency of
    a single-frame read); use it in PyTorch DataLoader workers. Either way ``.sel(camera=...,
    time=...)`` reads only the chunks it needs.

    Opening reads the consolidated metadata and the small dimension coordinates (serials, frame
    indices, channel names). Warns with :class:`IncompleteCubeWarning` if a conversion into the store
    did not finish. Raises :class:`~nersemble_cube.errors.StoreError` if ``store`` is not a cube.
    """
    path = Path(store).expanduser()
    check_cube(path)
    tree = xr.open_datatree(str(path), engine="zarr", chunks={} if dask else None, consolidated=True,
                            zarr_format=3)
    incomplete = _incomplete_nodes(tree)
    if incomplete:
        warnings.warn(
            f"{path}: conversion did not finish for {', '.join(incomplete)}; run nersemble-cube convert again",
            IncompleteCubeWarning, stacklevel=2,
        )
    return tree


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"


def stored_bytes(path: str | Path) -> int:
    """Bytes the files under ``path`` take (a local store or folder)."""
    return sum(f.stat().st_size for f in Path(path).expanduser().rglob("*") if f.is_file())


def summary(tree: xr.DataTree) -> str:
    """A few lines per node: benchmark, participant, sequence, cameras, frames, size, completeness."""
    lines = []
    for node in sorted(tree.subtree, key=lambda n: n.path):
        ds = node.dataset
        if "images" in ds:
            cams = ds.sizes["camera"]
            alpha = "alpha" if "alpha" in ds else "no alpha"
            state = "" if node.attrs.get("complete") else "  INCOMPLETE"
            lines.append(
                f"{node.path.lstrip('/')}: {cams} cameras x {ds.sizes['time']} frames of "
                f"{ds.sizes['x']}x{ds.sizes['y']} @ {ds.attrs.get('fps'):g} fps, {alpha}, "
                f"{_size(ds.images.nbytes + (ds.alpha.nbytes if 'alpha' in ds else 0))} uncompressed{state}"
            )
        elif "world_2_cam" in ds:
            roles = ds["role"].values.tolist() if "role" in ds.coords else []
            counts = ", ".join(f"{roles.count(r)} {r}" for r in ("train", "hold_out", "unused") if r in roles)
            lines.append(f"{node.path.lstrip('/')}: {ds.sizes['camera']} cameras ({counts})")
    return "\n".join(lines)


__all__ = ["IncompleteCubeWarning", "open", "stored_bytes", "summary"]
