"""Reduced-resolution levels: how frames and intrinsics change when images are area-averaged by an
integer factor. Used to write a cube's ``scales/{factor}`` levels and by ``ds.nersemble.downscale``.

Pixel convention (docs/schema.md): pixel ``(u, v)`` covers ``[u, u+1) x [v, v+1)``, so downscaling by
``f`` maps image coordinates ``x -> x / f``: fx, fy, cx, cy are all divided by ``f``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xarray as xr


def scale_intrinsics(k: xr.DataArray, factor: float) -> xr.DataArray:
    """Intrinsics ``(..., 3, 3)`` of images downscaled by ``factor``: fx, fy, cx, cy divided by it
    (pixel-edge convention: image coordinates map ``x -> x / factor``)."""
    k = k.copy()
    k[..., 0, :] = k[..., 0, :] / factor
    k[..., 1, :] = k[..., 1, :] / factor
    return k


def block_mean(var: xr.DataArray, factor: int) -> xr.DataArray:
    """Mean over ``factor x factor`` pixel blocks of dims ``y``, ``x`` (adjacent, in that order; trailing
    rows/columns dropped): :func:`block_mean_array` of its data, lazily for a dask array."""
    y = var.dims.index("y")
    if var.dims[y + 1] != "x":
        raise ValueError(f"block_mean needs dims y and x next to each other, got {var.dims}")
    mean = block_mean_array(var.data, factor, y)
    return var.isel(y=slice(mean.shape[y]), x=slice(mean.shape[y + 1])).copy(data=mean)


def block_mean_array(a, factor: int, y_axis: int):  # noqa: ANN001, ANN201 - a numpy or dask array
    """Mean over ``factor x factor`` pixel blocks of axes ``y_axis`` and ``y_axis + 1`` of ``a`` (trailing
    rows/columns dropped), float32: the sum of the ``factor**2`` strided sub-images divided by ``factor**2``,
    several times faster than a reshape-mean on full frames, and exact for sums of integers (uint8 frames)."""
    ny, nx = a.shape[y_axis] // factor * factor, a.shape[y_axis + 1] // factor * factor
    lead = (slice(None),) * y_axis
    total = None
    for i in range(factor):
        for j in range(factor):
            part = a[lead + (slice(i, ny, factor), slice(j, nx, factor))].astype(np.float32)
            total = part if total is None else total + part
    return total / np.float32(factor * factor)


def as_uint8(values: xr.DataArray | np.ndarray) -> xr.DataArray | np.ndarray:
    """Round to nearest (ties to even, ``np.rint``) and clip into uint8."""
    return np.rint(values).clip(0, 255).astype(np.uint8)


def downscale(ds: xr.Dataset, factor: int) -> xr.Dataset:
    """A sequence Dataset with ``images`` (and ``alpha``) area-averaged by the integer ``factor`` (float32
    means; uint8 stays uint8, rounded), ``intrinsics`` divided by it and attrs ``height``/``width`` updated."""
    out = {}
    for name in ("images", "alpha"):
        if name in ds:
            var = ds[name]
            mean = block_mean(var, factor)
            out[name] = (as_uint8(mean) if var.dtype == np.uint8 else mean).assign_attrs(var.attrs)
    result = ds.drop_vars(list(out)).assign(**out, intrinsics=scale_intrinsics(ds.intrinsics, factor))
    return result.assign_attrs(height=out["images"].sizes["y"], width=out["images"].sizes["x"])
