"""What a cube holds, one line per data node (``nersemble-cube info``)."""

from __future__ import annotations

import xarray as xr

from .schema import BACKGROUND, WRITING


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"


def plural(n: int, word: str) -> str:
    """``"1 camera"``, ``"3 cameras"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _facts(node: xr.DataTree) -> dict | None:
    """What a node that holds data holds, as JSON-ready values (None for plain groups)."""
    ds, attrs = node.to_dataset(inherit=False), node.attrs
    if node.name == "calibration":
        roles = ds["role"].values.tolist()
        return {"kind": "calibration", "cameras": ds.sizes["camera"],
                "roles": {r: roles.count(r) for r in ("train", "hold_out", "unused") if r in roles},
                "color_correction": "color_correction" in ds}
    if node.name == BACKGROUND and BACKGROUND in ds:
        return {"kind": "background", "cameras": ds.sizes["camera"], "height": ds.sizes["y"], "width": ds.sizes["x"]}
    if node.name == "pointclouds":
        return {"kind": "pointclouds", "timesteps": ds["timestep"].values.tolist(), "points": int(ds["count"].sum())}
    if str(node.name).startswith("flame2023_tracking_v"):
        return {"kind": "flame_tracking", "version": attrs.get("tracking_version"), "frames": attrs.get("n_frames"),
                "valid_for_submission": bool(attrs.get("valid_for_submission"))}
    if node.name == "svfr":
        return {"kind": "svfr", "images": ds.sizes["image"], "height": ds.sizes["y"], "width": ds.sizes["x"],
                "participants": len(set(ds["participant_id"].values.tolist()))}
    if "has_video" in attrs:
        if not attrs["has_video"]:
            return {"kind": "sequence", "video": False, "frames_to_render": attrs.get("n_frames")}
        size = ds.images.nbytes + (ds.alpha.nbytes if "alpha" in ds else 0)
        return {"kind": "sequence", "video": True, "cameras": ds.sizes["camera"], "frames": ds.sizes["time"],
                "height": ds.sizes["y"], "width": ds.sizes["x"], "fps": attrs.get("fps"), "alpha": "alpha" in ds,
                "uncompressed_bytes": int(size)}
    return None


def _line(f: dict) -> str:
    """The one-line text of :func:`_facts`."""
    if f["kind"] == "calibration":
        color = ", colour correction" if f["color_correction"] else ""
        return f"{plural(f['cameras'], 'camera')} ({', '.join(f'{n} {r}' for r, n in f['roles'].items())}){color}"
    if f["kind"] == "background":
        return f"background stills of {plural(f['cameras'], 'camera')}, {f['height']}x{f['width']} (height x width)"
    if f["kind"] == "pointclouds":
        steps = f["timesteps"]
        shown = steps if len(steps) <= 6 else steps[:3] + ["..."] + steps[-2:]
        return f"{plural(len(steps), 'timestep')} {shown}, {f['points']} points"
    if f["kind"] == "flame_tracking":
        valid = "valid for submissions" if f["valid_for_submission"] else "outdated, not for submissions"
        return f"FLAME tracking v{f['version']}, {plural(f['frames'], 'frame')} ({valid})"
    if f["kind"] == "svfr":
        return (f"{plural(f['images'], 'image')} of {f['height']}x{f['width']} (height x width) from "
                f"{plural(f['participants'], 'participant')}")
    if not f["video"]:
        n = f["frames_to_render"]
        return "no video" + (f", {plural(n, 'frame')} to render" if n is not None else "")
    return (f"{plural(f['cameras'], 'camera')} x {plural(f['frames'], 'frame')} of {f['height']}x{f['width']} "
            f"(height x width) @ {f['fps']:g} fps, {'alpha' if f['alpha'] else 'no alpha'}, "
            f"{_size(f['uncompressed_bytes'])} uncompressed")


def summary_facts(tree: xr.DataTree) -> dict:
    """``{"incomplete": bool, "nodes": {path: facts}}``: what :func:`summary` prints, for scripts
    (``nersemble-cube info --json``); each node's facts carry ``complete``."""
    nodes = {}
    for node in sorted(tree.subtree, key=lambda n: n.path):
        facts = _facts(node)
        if facts is not None:
            nodes[node.path.lstrip("/")] = {**facts, "complete": bool(node.attrs.get("complete", True))}
    return {"incomplete": WRITING in tree.attrs, "nodes": nodes}


def summary(tree: xr.DataTree) -> str:
    """One line per data node, sorted by path: cameras and frames of sequences, calibration roles,
    point-cloud timesteps, tracking versions, SVFR images, background stills; incomplete nodes are flagged."""
    facts = summary_facts(tree)
    lines = []
    if facts["incomplete"]:
        lines.append("INCOMPLETE: a conversion into this cube is running or did not finish; run convert again")
    for path, f in facts["nodes"].items():
        lines.append(f"{path}: {_line(f)}{'' if f['complete'] else '  INCOMPLETE'}")
    return "\n".join(lines)
