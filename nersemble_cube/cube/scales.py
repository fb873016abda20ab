"""Reduced-resolution levels: how frames and intrinsics change when images are area-averaged by an
integer factor. Used to write a cube's ``scales/{factor}`` levels and by ``ds.nersemble.downscale``.

Pixel convention (docs/schema.md): pixel ``(u, v)`` covers ``[u, u+1) x [v, v+1)``, so downscaling by
``f`` maps image coordinates ``x -> x / f``: fx, fy, cx, cy are all divided by ``f``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def scale_intrinsics(k: xr.DataArray, factor: float) -> xr.DataArray:
    """Intrinsics ``(..., 3, 3)`` of images downscaled by ``factor``: fx, fy, cx, cy divided by it
    (pixel-edge convention: image coordinates map ``x -> x / factor``)."""
    k = k.copy()
    k[..., 0, :] = k[..., 0, :] / factor
    k[..., 1, :] = k[..., 1, :] / factor
    return k


def block_mean(var: xr.DataArray, factor: int) -> xr.DataArray:
    """Mean over ``factor x factor`` pixel blocks of dims ``y``, ``x`` (trailing rows/columns dropped), as
    the sum of the ``factor**2`` strided sub-images divided by ``factor**2``: several times faster than a
    reshape-mean on full frames, and exact for sums of integers (uint8 frames)."""
    ny, nx = var.sizes["y"] // factor * factor, var.sizes["x"] // factor * factor
    total = None
    for i in range(factor):
        for j in range(factor):
            part = var.isel(y=slice(i, ny, factor), x=slice(j, nx, factor))
            total = part if total is None else total + part
    return total / np.float32(factor * factor)


def as_uint8(values: xr.DataArray) -> xr.DataArray:
    """Round to nearest (ties to even, ``np.rint``) and clip into uint8."""
    return np.rint(values).clip(0, 255).astype(np.uint8)


def downscale(ds: xr.Dataset, factor: int) -> xr.Dataset:
    """A sequence Dataset with ``images`` (and ``alpha``) area-averaged by the integer ``factor`` (float32
    means; uint8 stays uint8, rounded), ``intrinsics`` divided by it and attrs ``height``/``width`` updated."""
    out = {}
    for name in ("images", "alpha"):
        if name in ds:
            var = ds[name]
            mean = block_mean(var.astype(np.float32), factor)
            out[name] = (as_uint8(mean) if var.dtype == np.uint8 else mean).assign_attrs(var.attrs)
    result = ds.drop_vars(list(out)).assign(**out, intrinsics=scale_intrinsics(ds.intrinsics, factor))
    return result.assign_attrs(height=out["images"].sizes["y"], width=out["images"].sizes["x"])
