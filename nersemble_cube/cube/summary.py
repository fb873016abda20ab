"""What a cube holds, one line per data node (``nersemble-cube info``)."""

from __future__ import annotations

import xarray as xr

from .schema import WRITING


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"


def _describe(node: xr.DataTree) -> str | None:
    """One line for a node that holds data (None for plain groups)."""
    ds, attrs = node.to_dataset(inherit=False), node.attrs
    if node.name == "calibration":
        roles = ds["role"].values.tolist()
        counts = ", ".join(f"{roles.count(r)} {r}" for r in ("train", "hold_out", "unused") if r in roles)
        return f"{ds.sizes['camera']} cameras ({counts})"
    if node.name == "pointclouds":
        steps = ds["timestep"].values.tolist()
        shown = steps if len(steps) <= 6 else steps[:3] + ["..."] + steps[-2:]
        return f"{len(steps)} timesteps {shown}, {int(ds['count'].sum())} points"
    if str(node.name).startswith("flame2023_tracking_v"):
        valid = "valid for submissions" if attrs.get("valid_for_submission") else "outdated, not for submissions"
        return f"FLAME tracking v{attrs.get('tracking_version')}, {attrs.get('n_frames')} frames ({valid})"
    if node.name == "svfr":
        people = len(set(ds["participant_id"].values.tolist()))
        return f"{ds.sizes['image']} images of {ds.sizes['x']}x{ds.sizes['y']} from {people} participants"
    if "has_video" in attrs:
        if not attrs["has_video"]:
            frames = attrs.get("n_frames")
            return "no video" + (f", {frames} frames to render" if frames is not None else "")
        alpha = "alpha" if "alpha" in ds else "no alpha"
        size = ds.images.nbytes + (ds.alpha.nbytes if "alpha" in ds else 0)
        return (f"{ds.sizes['camera']} cameras x {ds.sizes['time']} frames of {ds.sizes['x']}x{ds.sizes['y']} "
                f"@ {attrs.get('fps'):g} fps, {alpha}, {_size(size)} uncompressed")
    return None


def summary(tree: xr.DataTree) -> str:
    """One line per data node, sorted by path: cameras and frames of sequences, calibration roles,
    point-cloud timesteps, tracking versions, SVFR images; incomplete nodes are flagged."""
    lines = []
    if WRITING in tree.attrs:
        lines.append("INCOMPLETE: a conversion into this cube is running or did not finish; run convert again")
    for node in sorted(tree.subtree, key=lambda n: n.path):
        text = _describe(node)
        if text is not None:
            state = "" if node.attrs.get("complete", True) else "  INCOMPLETE"
            lines.append(f"{node.path.lstrip('/')}: {text}{state}")
    return "\n".join(lines)
