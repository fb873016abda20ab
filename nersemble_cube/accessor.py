"""``ds.nersemble``: lazy, chunk-aligned preprocessing of a sequence Dataset that keeps its calibration right.

Registered as an xarray accessor (like rioxarray's ``ds.rio``) when ``nersemble_cube`` is imported::

    ds = nersemble_cube.open("cube.zarr")["nvs/388/sequences/GLASSES"].to_dataset()
    small = ds.nersemble.composite("white").nersemble.downscale(2)   # lazy (dask), nothing computed yet

Every method returns a new Dataset with ``images`` (and ``alpha``) replaced and ``intrinsics``
adjusted to the new pixels. Pixel convention (docs/schema.md): pixel ``(u, v)`` covers
``[u, u+1) x [v, v+1)``, so downscaling by ``f`` maps image coordinates ``x -> x / f`` (fx, fy, cx, cy
all divided by ``f``) and cropping at ``(x0, y0)`` maps ``x -> x - x0`` (cx, cy shifted).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .cube.scales import as_uint8
from .cube.scales import downscale as downscale_dataset
from .colors import COLORS
from .errors import SelectionError, UsageError



def frame_indices(n_frames: int, fps: float, *, every_nth: int | None = None, target_fps: float | None = None,
                  start: int = 0, stop: int | None = None) -> np.ndarray:
    """Source frame indices (int) chosen from ``start`` up to ``stop`` (exclusive, default the end): every
    ``every_nth`` frame, or at ``target_fps`` the source frame nearest to each target time
    ``k / target_fps`` (``round(start + k * fps / target_fps)``, halves rounded up), or all of them.

    Raises :class:`UsageError` for both rules at once, a rule below 1 or a target rate above the
    source's ``fps``, and :class:`SelectionError` for a range that is empty or reaches past the frames."""
    _check_range(start, stop, 0, n_frames - 1)
    stop = n_frames if stop is None else stop
    if every_nth is not None and target_fps is not None:
        raise UsageError("choose every_nth or a target fps, not both")
    if every_nth is not None:
        if every_nth < 1:
            raise UsageError(f"every_nth must be 1 or more, got {every_nth}")
        return np.arange(start, stop, every_nth)
    if target_fps is not None:
        if not 0 < target_fps <= fps:
            raise UsageError(f"target fps must be in (0, {fps:g}] (the source's), got {target_fps:g}")
        step = fps / target_fps
        count = int(np.floor((stop - 1 - start) / step + 1e-9)) + 1
        return np.unique(np.minimum(np.floor(start + np.arange(count) * step + 0.5).astype(np.int64), stop - 1))
    return np.arange(start, stop)


def _check_range(start: int, stop: int | None, first: int, last: int) -> None:
    """A :class:`SelectionError` naming the range asked for unless ``start:stop`` (stop exclusive, None: to the
    end) is a non-empty range within the frames ``first`` to ``last``."""
    if start < first or start > last or (stop is not None and (stop <= start or stop > last + 1)):
        raise SelectionError(f"frames {start}:{'' if stop is None else stop} are not in the sequence: it has "
                             f"frames {first} to {last} (START:STOP, STOP exclusive)")


def _background(background, ds: xr.Dataset) -> xr.DataArray:
    if isinstance(background, str):
        if background not in COLORS:
            raise UsageError(f"unknown background {background!r}; use {', '.join(COLORS)} or an RGB triple")
        background = COLORS[background]
    bg = background if isinstance(background, xr.DataArray) else np.asarray(background, dtype=np.float32)
    if isinstance(bg, np.ndarray):
        if bg.shape == (3,):
            return xr.DataArray(bg, dims=("channel",))
        if bg.shape == (ds.sizes["y"], ds.sizes["x"], 3):
            return xr.DataArray(bg, dims=("y", "x", "channel"))
        raise UsageError(f"background must be a colour (3,) or an image (y, x, 3), got {bg.shape}")
    return bg.astype(np.float32)


@xr.register_dataset_accessor("nersemble")
class NersembleAccessor:
    """Domain methods on a sequence Dataset (``images``, ``alpha``, ``intrinsics``, ``world_2_cam``)."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def _need(self, *names: str) -> None:
        missing = [n for n in names if n not in self._ds]
        if missing:
            raise SelectionError(f"this Dataset has no {', '.join(missing)}; use a sequence node of a cube")

    def select_time(self, *, every_nth: int | None = None, fps: float | None = None, start: int = 0,
                    stop: int | None = None) -> xr.Dataset:
        """The frames chosen by :func:`frame_indices` (every ``every_nth`` frame, or the nearest frame at
        ``fps``, within source frames ``start:stop``), lazily. The ``time`` coordinate keeps the chosen
        source frame indices; attrs ``fps`` become the new rate (``source_fps`` keeps the video's) and
        ``n_frames`` the new count. Works on a FLAME tracking node too (same indices), and on frames
        selected before (a cube converted with ``--every-nth``: its ``fps`` is the rate of what it holds)."""
        ds = self._ds
        rate = float(ds.attrs.get("fps", np.nan))
        times = ds["time"].values
        if fps is not None and not np.isfinite(rate):
            raise SelectionError("this Dataset has no fps attribute; select frames with every_nth")
        _check_range(start, stop, int(times[0]), int(times[-1]))
        first = int(np.searchsorted(times, start))  # source frame indices -> positions along time
        last = None if stop is None else int(np.searchsorted(times, stop))
        pos = frame_indices(len(times), rate, every_nth=every_nth, target_fps=fps, start=first, stop=last)
        out = ds.isel(time=pos)
        out.attrs = {**ds.attrs, "n_frames": len(pos)}  # a new dict: isel shares ds's
        if np.isfinite(rate):
            out.attrs.update(fps=fps if fps is not None else rate / (every_nth or 1),
                             source_fps=float(ds.attrs.get("source_fps", rate)))
        return out

    def composite(self, background="black", dtype: str = "uint8") -> xr.Dataset:
        """``rgb * a + bg * (1 - a)`` with ``a = alpha / 255``, in float32.

        ``background``: a colour name, an RGB triple in 0-255, or an image ``(y, x, 3)`` in 0-255.
        ``dtype="uint8"`` rounds to nearest (ties to even) and clips; ``"float32"`` returns [0, 1].
        ``alpha`` is kept.
        """
        self._need("images", "alpha")
        ds = self._ds
        a = ds.alpha.astype(np.float32) / np.float32(255)
        out = ds.images.astype(np.float32) * a + _background(background, ds) * (np.float32(1) - a)
        out = out.transpose(*ds.images.dims)
        images = as_uint8(out) if dtype == "uint8" else (out / np.float32(255)).astype(np.float32)
        return ds.assign(images=images.assign_attrs(ds.images.attrs, composited_on=str(background)))

    def downscale(self, factor: int) -> xr.Dataset:
        """Area-average ``factor x factor`` pixel blocks of images and alpha (trailing rows/columns that
        do not fill a block are dropped); uint8 stays uint8 (rounded). Intrinsics are divided by ``factor``."""
        self._need("images", "intrinsics")
        if int(factor) != factor or factor < 1:
            raise UsageError(f"downscale factor must be a positive integer, got {factor}")
        if factor == 1:
            return self._ds
        out = downscale_dataset(self._ds, int(factor))
        previous = int(self._ds.images.attrs.get("downscaled_by", 1))
        out["images"].attrs["downscaled_by"] = previous * int(factor)
        return out

    def crop(self, box: tuple[int, int, int, int] | dict[str, tuple[int, int]], size: tuple[int, int] | None = None
             ) -> xr.Dataset:
        """Crop every frame. ``box`` is ``(x0, y0, x1, y1)`` in pixels for all cameras, or a mapping
        ``serial -> (x0, y0)`` of per-camera corners with one ``size=(height, width)`` (a camera keeps
        one box for all its frames, and all cameras one size). Principal points shift by the corner;
        the corners are kept as ``crop_x0`` / ``crop_y0`` coordinates."""
        self._need("images", "intrinsics")
        ds = self._ds
        serials = [str(s) for s in ds.camera.values]
        if isinstance(box, dict):
            if size is None:
                raise UsageError("per-camera crops need size=(height, width)")
            corners = {s: tuple(int(v) for v in box[s]) for s in serials}
            height, width = size
        else:
            x0, y0, x1, y1 = (int(v) for v in box)
            corners = dict.fromkeys(serials, (x0, y0))
            height, width = y1 - y0, x1 - x0
        for s, (x0, y0) in corners.items():
            if x0 < 0 or y0 < 0 or x0 + width > ds.sizes["x"] or y0 + height > ds.sizes["y"] or height < 1 or width < 1:
                raise SelectionError(f"crop of camera {s} ({x0}, {y0}, {x0 + width}, {y0 + height}) leaves the "
                                         f"{ds.sizes['x']}x{ds.sizes['y']} image")
        parts = [ds.isel(camera=[i], x=slice(x0, x0 + width), y=slice(y0, y0 + height))
                 for i, (x0, y0) in enumerate(corners[s] for s in serials)]
        out = xr.concat([p[[v for v in ("images", "alpha") if v in ds]] for p in parts], dim="camera")
        x0s = np.array([corners[s][0] for s in serials], np.float64)
        y0s = np.array([corners[s][1] for s in serials], np.float64)
        k = ds.intrinsics.copy()
        k[:, 0, 2] = k[:, 0, 2] - x0s
        k[:, 1, 2] = k[:, 1, 2] - y0s
        result = ds.drop_vars([v for v in ("images", "alpha") if v in ds]).drop_dims(["y", "x"], errors="ignore")
        result = result.assign(**{v: out[v] for v in out.data_vars}, intrinsics=k)
        return result.assign_coords(crop_x0=("camera", x0s.astype(np.int32)), crop_y0=("camera", y0s.astype(np.int32))
                                    ).assign_attrs(height=height, width=width)

    def alpha_boxes(self, margin: int = 0, threshold: int = 0) -> dict[str, tuple[int, int, int, int]]:
        """Per camera, the box ``(x0, y0, x1, y1)`` around every pixel whose alpha exceeds ``threshold`` in
        any frame, grown by ``margin`` and clipped to the image (computes a reduction of ``alpha``)."""
        self._need("alpha")
        ds = self._ds
        mask = (ds.alpha > threshold).any("time")
        rows = mask.any("x").values
        cols = mask.any("y").values
        boxes = {}
        for i, s in enumerate(str(c) for c in ds.camera.values):
            ys, xs = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
            if not len(ys):
                boxes[s] = (0, 0, ds.sizes["x"], ds.sizes["y"])
                continue
            boxes[s] = (max(int(xs[0]) - margin, 0), max(int(ys[0]) - margin, 0),
                        min(int(xs[-1]) + 1 + margin, ds.sizes["x"]), min(int(ys[-1]) + 1 + margin, ds.sizes["y"]))
        return boxes

    def crop_to_alpha(self, margin: int = 16) -> xr.Dataset:
        """Crop each camera to one box covering its foreground in every frame (plus ``margin``); all
        cameras get the size of the largest box, centred on their own foreground and kept inside the image."""
        ds = self._ds
        boxes = self.alpha_boxes(margin)
        height = max(b[3] - b[1] for b in boxes.values())
        width = max(b[2] - b[0] for b in boxes.values())
        corners = {}
        for s, (x0, y0, x1, y1) in boxes.items():
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
            corners[s] = (min(max(cx - width // 2, 0), ds.sizes["x"] - width),
                          min(max(cy - height // 2, 0), ds.sizes["y"] - height))
        return self.crop(corners, size=(height, width))

    def show(self, frames: int = 4, alpha: str = "overlay", factor: int = 4):
        """A contact sheet of this sequence Dataset to look at in a notebook: a column per camera, a row
        per frame (``frames`` spread over ``time``), upright, at the frames' aspect ratio; ``alpha``
        ``"overlay"`` (background tinted blue), ``"composite"`` (on white) or ``"none"``. Returns the
        matplotlib ``Figure`` (needs matplotlib: ``pip install "nersemble-cube[preview]"``); reads only
        the frames shown. Select first to see less: ``ds.sel(camera=["222200042"]).nersemble.show()``."""
        from .preview import sheet_figure

        self._need("images")
        return sheet_figure(self._ds, frames=frames, factor=factor, alpha=alpha)

    def color_correct(self, dtype: str = "uint8") -> xr.Dataset:
        """``images`` with each camera's colour correction (the full dataset's ``color_correction``) applied,
        lazily, frame by frame, as the toolkit's ``load_image(..., apply_color_correction=True)`` computes it
        (bit-equal): ``dtype="uint8"`` as with ``as_uint8=True`` (clipped to 0-255, then truncated);
        ``"float64"`` as without (sRGB in [0, 1], not clipped: values may leave [0, 1]). The new ``images``
        carry attr ``color_corrected`` and ``color_correction`` is dropped (it has been applied: applying it
        twice is refused); ``alpha`` and the calibration are kept. Frames already converted with ``to_float``,
        ``composite`` or ``downscale`` are refused (a :class:`UsageError`): the correction is defined on the
        decoded uint8 pixels, so call it first; ``crop`` commutes with it (per-pixel) and may come before."""
        from .source.converters.color import correct_color

        if self._ds.get("images") is not None and "color_corrected" in self._ds.images.attrs:
            raise UsageError("these frames are colour-corrected already")
        self._need("images")
        done = [step for step, yes in (("to_float", self._ds.images.dtype != np.uint8),
                                       ("composite", "composited_on" in self._ds.images.attrs),
                                       ("downscale", "downscaled_by" in self._ds.images.attrs)) if yes]
        if done:  # the correction is defined on the decoded uint8 pixels (the toolkit's order: correct first)
            raise UsageError(f"color_correct() needs the frames as decoded (uint8, full resolution, not composited); "
                             f"call it before {' and '.join(done)}")
        if "color_correction" not in self._ds:
            raise SelectionError("this Dataset has no color_correction: only sequences of the full dataset "
                                 "(dataset/...) come with one")
        if dtype not in ("uint8", "float64"):
            raise UsageError(f"dtype must be 'uint8' or 'float64', not {dtype!r}")
        ds = self._ds
        images = ds.images if ds.images.chunks else ds.images.chunk({"camera": 1, "time": 1})
        ccm = ds.color_correction.load()

        def correct(frames: np.ndarray, matrices: np.ndarray) -> np.ndarray:
            lead = frames.shape[:-3]
            matrices = np.broadcast_to(matrices, lead + matrices.shape[-2:])
            out = np.empty(frames.shape, np.uint8 if dtype == "uint8" else np.float64)
            for i in np.ndindex(lead):
                out[i] = correct_color(frames[i] if dtype == "uint8" else frames[i] / 255.0, matrices[i])
            return out

        out = xr.apply_ufunc(correct, images, ccm, input_core_dims=[["y", "x", "channel"], ["ccm_row", "ccm_term"]],
                             output_core_dims=[["y", "x", "channel"]], dask="parallelized", output_dtypes=[np.dtype(dtype)])
        out = out.transpose(*ds.images.dims)
        attrs = {**ds.images.attrs, "color_corrected": ds.color_correction.attrs.get("method", "yes")}
        if dtype == "float64":
            attrs["units"] = "1 (sRGB, 0-1, not clipped)"
        return ds.assign(images=out.assign_attrs(attrs)).drop_vars("color_correction")

    def to_float(self) -> xr.Dataset:
        """images (and alpha) as float32 in [0, 1] (``x / 255``: the toolkit's ``load_image`` convention)."""
        self._need("images")
        ds = self._ds
        out = {v: (ds[v].astype(np.float32) / np.float32(255)).assign_attrs(ds[v].attrs, units="1 (0-1)")
               for v in ("images", "alpha") if v in ds}
        return ds.assign(**out)
