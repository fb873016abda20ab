"""Low-level handling of a cube's zarr store: recognising one, root attrs, completeness markers, consolidation."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import zarr

from . import __version__
from .errors import StoreError
from .schema import CAMERA_CONVENTION, SCHEMA_NAME, SCHEMA_VERSION


def _root_attrs(path: Path) -> dict | None:
    meta = path / "zarr.json"
    if not meta.is_file():
        return None
    try:
        doc = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return doc.get("attributes", {}) if doc.get("node_type") == "group" else None


def is_consolidated(path: Path) -> bool:
    """Whether the zarr v3 store at ``path`` has consolidated metadata in its root ``zarr.json``."""
    try:
        return "consolidated_metadata" in json.loads((path / "zarr.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False


def check_cube(path: Path) -> dict:
    """Return the root attrs of the cube at ``path``; raise :class:`StoreError` if it is none we can read."""
    attrs = _root_attrs(path)
    if attrs is None or attrs.get("schema") != SCHEMA_NAME:
        raise StoreError(f"{path}: not a nersemble-cube store (no zarr group with schema={SCHEMA_NAME!r})")
    major = str(attrs.get("schema_version", "")).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise StoreError(
            f"{path}: cube schema version {attrs.get('schema_version')} is not readable by nersemble-cube "
            f"{__version__} (schema {SCHEMA_VERSION}); convert again or upgrade nersemble-cube"
        )
    return attrs


def check_target(path: Path) -> bool:
    """Whether ``path`` is an existing cube to add to (True) or free to create one in (False).

    A missing path or an empty folder is free. A file, or a folder holding anything but a cube,
    raises :class:`StoreError`. Writes nothing.
    """
    if not path.exists():
        return False
    if not path.is_dir():
        raise StoreError(f"{path}: exists and is not a folder; choose another store path")
    if not any(path.iterdir()):
        return False
    check_cube(path)
    return True


def prepare_target(path: Path) -> None:
    """Create the cube root at ``path`` (with the schema attrs), or accept an existing cube; refuse anything else."""
    if check_target(path):
        return
    group = zarr.open_group(str(path), mode="a", zarr_format=3, use_consolidated=False)
    group.attrs.update({
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "camera_convention": CAMERA_CONVENTION,
        "created_by": f"nersemble-cube {__version__}",
    })


def is_complete(path: Path, group: str) -> bool:
    """Whether the node ``group`` exists and was marked complete after all its data was written."""
    try:
        g = zarr.open_group(str(path), path=group, mode="r", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return False
    return bool(g.attrs.get("complete", False))


def mark_complete(path: Path, group: str) -> None:
    """Set ``complete = True`` on ``group``; called only after every array of it is written."""
    zarr.open_group(str(path), path=group, mode="r+", use_consolidated=False).attrs["complete"] = True


def set_attrs(path: Path, group: str, attrs: dict) -> None:
    """Create ``group`` if needed and update its attrs."""
    zarr.open_group(str(path), path=group, mode="a", zarr_format=3, use_consolidated=False).attrs.update(attrs)


def remove_group(path: Path, group: str) -> None:
    """Delete the node ``group`` and everything below it (a half-written sequence)."""
    shutil.rmtree(path / group, ignore_errors=True)


def consolidate(path: Path) -> None:
    """Rewrite the consolidated metadata of the whole cube (so opening reads one document)."""
    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not (yet) in the v3 spec; xarray and zarr-python read it.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(path))
