"""Pictures of a cube: a contact sheet of cameras x frames, and a plot of the camera rig (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cube.access import open as open_cube
from .errors import StoreError


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _dataset(store: str | Path, path: str, what: str):
    try:
        return open_cube(store, dask=False)[path].to_dataset()
    except KeyError:
        raise StoreError(f"{store}: no {what} {path!r}") from None


def _small(frame: np.ndarray, factor: int) -> np.ndarray:
    h, w = frame.shape[0] // factor * factor, frame.shape[1] // factor * factor
    f = frame[:h, :w].astype(np.float32)
    return f.reshape(h // factor, factor, w // factor, factor, -1).mean((1, 3))


def contact_sheet(store: str | Path, sequence: str, out: str | Path, frames: int = 4, factor: int = 4,
                  alpha: str = "overlay") -> Path:
    """Save a grid of thumbnails of ``sequence`` (e.g. ``nvs/388/sequences/GLASSES``): a column per
    camera, a row per frame (``frames`` frames spread over the sequence).

    ``alpha``: ``"overlay"`` tints the background (alpha 0) blue, ``"composite"`` puts the head on
    white, ``"none"`` shows the frames as stored. Thumbnails are ``factor``-times area-averaged.
    """
    plt = _pyplot()
    ds = _dataset(store, sequence, "sequence")
    if "images" not in ds:
        raise StoreError(f"{store}: {sequence} has no frames to show")
    times = np.linspace(0, ds.sizes["time"] - 1, min(frames, ds.sizes["time"])).round().astype(int)
    cams = [str(c) for c in ds.camera.values]
    fig, axes = plt.subplots(len(times), len(cams), figsize=(1.1 * len(cams), 1.7 * len(times)), squeeze=False)
    for j, cam in enumerate(cams):
        for i, t in enumerate(times):
            rgb = _small(ds.images.sel(camera=cam, time=t).values, factor) / 255
            if alpha != "none" and "alpha" in ds:
                a = _small(ds.alpha.sel(camera=cam, time=t).values[..., None], factor) / 255
                bg = np.array([1.0, 1.0, 1.0]) if alpha == "composite" else np.array([0.2, 0.35, 0.8])
                rgb = rgb * a + bg * (1 - a) if alpha == "composite" else rgb + 0.5 * bg * (1 - a)
            ax = axes[i, j]
            ax.imshow(np.clip(rgb, 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cam, fontsize=6)
            if j == 0:
                ax.set_ylabel(f"t={t}", fontsize=7)
    fig.suptitle(sequence, fontsize=9)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def rig_plot(store: str | Path, calibration: str, out: str | Path, frustum: float = 0.15) -> Path:
    """Save a 3D plot of the cameras of a calibration node (e.g. ``nvs/388/calibration``): camera
    centres, viewing frusta (``frustum`` metres deep), serials; hold-out cameras in red."""
    plt = _pyplot()
    ds = _dataset(store, calibration, "calibration node")
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    for serial, w2c, k, role in zip(ds.camera.values, ds.world_2_cam.values, ds.intrinsics.values, ds.role.values,
                                    strict=True):
        c2w = np.linalg.inv(w2c)
        w, h = 2 * k[0, 2], 2 * k[1, 2]
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=float)
        rays = np.c_[(corners[:, 0] - k[0, 2]) / k[0, 0], (corners[:, 1] - k[1, 2]) / k[1, 1], np.ones(4)] * frustum
        pts = (c2w[:3, :3] @ rays.T).T + c2w[:3, 3]
        color = "tab:red" if role == "hold_out" else ("tab:blue" if role == "train" else "tab:gray")
        for p in pts:
            ax.plot(*zip(c2w[:3, 3], p, strict=True), color=color, lw=0.8)
        loop = np.vstack([pts, pts[:1]])
        ax.plot(loop[:, 0], loop[:, 1], loop[:, 2], color=color, lw=0.8)
        ax.text(*c2w[:3, 3], str(serial)[-3:], fontsize=6, color=color)
    ax.scatter([0], [0], [0], color="k", s=10)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.set_title(f"{calibration}: train (blue), hold-out (red), unused (grey)", fontsize=9)
    out = Path(out)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


__all__ = ["contact_sheet", "rig_plot"]
