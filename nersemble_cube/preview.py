"""Pictures of a cube: a contact sheet of cameras x frames, and a plot of the camera rig (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .cube.access import find_node
from .cube.access import open as open_cube
from .cube.schema import sequence_group
from .errors import SelectionError


def _dataset(store: str | Path, path: str):
    """The node ``path`` of the cube as a Dataset; a :class:`SelectionError` naming what exists when it is absent."""
    return find_node(open_cube(store, dask=False), path).to_dataset()


def _small(frame: np.ndarray, factor: int) -> np.ndarray:
    h, w = frame.shape[0] // factor * factor, frame.shape[1] // factor * factor
    f = frame[:h, :w].astype(np.float32)
    return f.reshape(h // factor, factor, w // factor, factor, -1).mean((1, 3))


def sheet_figure(ds, frames: int = 4, factor: int = 4, alpha: str = "overlay", title: str | None = None,
                 progress: Callable[[int], None] | None = None, on_start: Callable[[int], None] | None = None):
    """A matplotlib ``Figure`` of a sequence Dataset's thumbnails: a column per camera, a row per frame
    (``frames`` frames spread over the sequence), upright and at the frames' aspect ratio.

    ``alpha``: ``"overlay"`` tints the background (alpha 0) blue, ``"composite"`` puts the head on
    white, ``"none"`` shows the frames as stored. Thumbnails are ``factor``-times area-averaged.
    Reads only the frames shown (``on_start(total)`` is told how many, ``progress(1)`` after each).
    A notebook displays the returned figure.
    """
    from matplotlib.figure import Figure

    if "images" not in ds:
        raise SelectionError(f"{title or 'this Dataset'} has no frames to show")
    times = ds.time.values[np.linspace(0, ds.sizes["time"] - 1, min(frames, ds.sizes["time"])).round().astype(int)]
    cams = [str(c) for c in ds.camera.values]
    cell = 1.7 * ds.sizes["x"] / ds.sizes["y"]  # inches per column, so that a row is 1.7 inches high
    fig = Figure(figsize=(max(cell * len(cams), 3.0), 1.7 * len(times) + 0.4), layout="constrained")
    axes = fig.subplots(len(times), len(cams), squeeze=False)
    if on_start:
        on_start(len(times) * len(cams))
    for j, cam in enumerate(cams):
        for i, t in enumerate(times):
            rgb = _small(ds.images.sel(camera=cam, time=t).values, factor) / 255
            if alpha != "none" and "alpha" in ds:
                a = _small(ds.alpha.sel(camera=cam, time=t).values[..., None], factor) / 255
                bg = np.array([1.0, 1.0, 1.0]) if alpha == "composite" else np.array([0.2, 0.35, 0.8])
                rgb = rgb * a + bg * (1 - a) if alpha == "composite" else rgb + 0.5 * bg * (1 - a)
            ax = axes[i, j]
            ax.imshow(np.clip(rgb, 0, 1))  # row 0 at the top, square pixels
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cam, fontsize=6)
            if j == 0:
                ax.set_ylabel(f"t={int(t)}", fontsize=7)
            if progress:
                progress(1)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def contact_sheet(store: str | Path, sequence: str, out: str | Path, frames: int = 4, factor: int = 4,
                  alpha: str = "overlay", progress: Callable[[int], None] | None = None,
                  on_start: Callable[[int], None] | None = None) -> Path:
    """Save :func:`sheet_figure` of ``sequence`` (``nvs/388/GLASSES`` or ``nvs/388/sequences/GLASSES``) of the cube
    ``store`` as a png."""
    sequence = sequence_group(sequence)
    ds = _dataset(store, sequence)
    if "images" not in ds:
        raise SelectionError(f"{store}: {sequence} has no frames to show (a hold-out sequence)")
    out = Path(out)
    sheet_figure(ds, frames, factor, alpha, title=sequence, progress=progress, on_start=on_start).savefig(out, dpi=80)
    return out


def rig_figure(ds, title: str = "", frustum: float = 0.15):
    """A 3D matplotlib ``Figure`` of a calibration Dataset's cameras: centres, viewing frusta
    (``frustum`` metres deep), serials; hold-out cameras in red; equal scale on the three axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    points = [np.zeros(3)]
    for serial, w2c, k, role in zip(ds.camera.values, ds.world_2_cam.values, ds.intrinsics.values, ds.role.values,
                                    strict=True):
        c2w = np.linalg.inv(w2c)
        w, h = 2 * k[0, 2], 2 * k[1, 2]
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=float)
        rays = np.c_[(corners[:, 0] - k[0, 2]) / k[0, 0], (corners[:, 1] - k[1, 2]) / k[1, 1], np.ones(4)] * frustum
        pts = (c2w[:3, :3] @ rays.T).T + c2w[:3, 3]
        points += [c2w[:3, 3], *pts]
        color = "tab:red" if role == "hold_out" else ("tab:blue" if role == "train" else "tab:gray")
        for p in pts:
            ax.plot(*zip(c2w[:3, 3], p, strict=True), color=color, lw=0.8)
        loop = np.vstack([pts, pts[:1]])
        ax.plot(loop[:, 0], loop[:, 1], loop[:, 2], color=color, lw=0.8)
        ax.text(*c2w[:3, 3], str(serial)[-3:], fontsize=6, color=color)
    ax.scatter([0], [0], [0], color="k", s=10)
    lo, hi = np.min(points, axis=0), np.max(points, axis=0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1))  # a metre is a metre on every axis
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.set_title(f"{title}: train (blue), hold-out (red), unused (grey)", fontsize=9)
    return fig


def rig_plot(store: str | Path, calibration: str, out: str | Path, frustum: float = 0.15) -> Path:
    """Save :func:`rig_figure` of a calibration node of the cube ``store`` (e.g. ``nvs/388/calibration``) as a png."""
    out = Path(out)
    rig_figure(_dataset(store, calibration), calibration, frustum).savefig(out, dpi=90)
    return out


__all__ = ["contact_sheet", "rig_figure", "rig_plot", "sheet_figure"]
