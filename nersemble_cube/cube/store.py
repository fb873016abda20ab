"""A cube's zarr store: recognising a cube, creating its root, node metadata and arrays, completion
markers and per-unit flags, consolidated metadata, sizes."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings

import xarray as xr
import zarr

from .._version import __version__
from ..errors import StoreError
from .location import Location, located
from .node_writes import NodeWriteStore
from .schema import (CAMERA_CONVENTION, FLAG_SUFFIX, INTEGRITY, METADATA_COMPLETE, SCHEMA_NAME, SCHEMA_VERSION, WRITING,
                     encoding)
from .storage import StorageSpec


DAMAGED: dict = {}
"""What :func:`root_document` returns for a root document that is not JSON (a flipped byte, a cut)."""


def root_document(loc: Location) -> dict | None:
    """The root ``zarr.json`` of ``loc``, parsed (with the consolidated metadata); None where there is none;
    :data:`DAMAGED` where it is not a JSON object."""
    try:
        raw = loc.read_bytes("zarr.json")
    except OSError as e:
        raise StoreError(f"{loc}: cannot be read ({e})") from None
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return DAMAGED
    return doc if isinstance(doc, dict) else DAMAGED


_ROOT_KEYS = {"schema", "schema_version", "camera_convention", "integrity", "created_by", "multiscales", "preprocessing",
              WRITING}
"""The attrs nersemble-cube writes at a cube's root: a key one character away from one of them is a damaged one (a
flipped byte); other keys are the user's own."""


def _misspelt(key: str) -> bool:
    return key not in _ROOT_KEYS and any(len(key) == len(k) and sum(a != b for a, b in zip(key, k)) == 1
                                         for k in _ROOT_KEYS)
_TOP_NODES = ("nvs", "mono_flame_avatar", "svfr", "dataset")


def root_damage(doc: dict | None) -> str | None:
    """What is damaged in a cube's root document ``doc`` (:func:`root_document`): not JSON, or (in a document whose
    consolidated metadata lists a cube's nodes) a wrong ``schema`` or ``camera_convention`` or a misspelt key of
    the attrs nersemble-cube writes; None for a sound root or none at all."""
    if doc is DAMAGED:
        return "its root zarr.json is not valid JSON"
    if not doc or doc.get("node_type") != "group":
        return None
    attrs = doc.get("attributes") if isinstance(doc.get("attributes"), dict) else {}
    listed = doc.get("consolidated_metadata") or {}
    has_nodes = any(top in (listed.get("metadata") or {}) for top in _TOP_NODES)
    wrong = sorted(k for k in attrs if _misspelt(k)) + (["schema"] if attrs.get("schema") != SCHEMA_NAME else []) + \
        (["camera_convention"] if "camera_convention" in attrs and attrs["camera_convention"] != CAMERA_CONVENTION else [])
    return f"its root attributes are damaged ({', '.join(wrong)})" if wrong and has_nodes else None


def _not_a_cube(loc: Location, doc: dict | None) -> str:
    """Why ``loc`` is not a cube, in words that name the fix."""
    damage = root_damage(doc)
    if damage:
        return f"{loc}: damaged metadata ({damage}); run nersemble-cube convert SOURCE STORE to repair it"
    if doc is not None:
        return f"{loc}: a zarr store, but not a nersemble-cube store (no schema={SCHEMA_NAME!r} in its root attrs)"
    if loc.is_local and not loc.path.exists():
        return f"{loc}: does not exist; convert a download folder into it first (nersemble-cube convert SOURCE STORE)"
    if loc.is_local and not loc.path.is_dir():
        return f"{loc}: is a file, not a cube (a cube is a folder)"
    return (f"{loc}: no zarr.json here, so not a nersemble-cube store; pass the folder convert wrote (the one "
            "ending in .zarr)")


@located
def is_consolidated(loc: Location) -> bool:
    """Whether the zarr v3 store at ``loc`` has consolidated metadata in its root ``zarr.json``."""
    doc = root_document(loc)
    return doc is not None and "consolidated_metadata" in doc


@located
def check_cube(loc: Location) -> dict:
    """Return the root attrs of the cube at ``loc``; raise :class:`StoreError` if it is none we can read."""
    return _cube_attrs(loc, root_document(loc))


@located
def strict_nodes(loc: Location) -> tuple[dict, frozenset[str] | None]:
    """The root attrs of the cube at ``loc`` (checked as :func:`check_cube` does) and the nodes whose every
    chunk must be in the store: those its consolidated metadata says are complete, in a cube that stores
    every chunk (root attr ``integrity``) and that no conversion is writing; None where none can be told.
    One read of the root document."""
    doc = root_document(loc)
    attrs = _cube_attrs(loc, doc)
    if not attrs.get("integrity", {}).get("every_chunk_stored") or WRITING in attrs:
        return attrs, None
    nodes = doc.get("consolidated_metadata", {}).get("metadata", {})
    return attrs, frozenset(path for path, meta in nodes.items()
                            if meta.get("node_type") == "group" and meta.get("attributes", {}).get("complete") is True)


def _cube_attrs(loc: Location, doc: dict | None) -> dict:
    """The root attrs in the root document ``doc`` of ``loc``, checked as :func:`check_cube` says."""
    attrs = doc.get("attributes", {}) if doc and doc.get("node_type") == "group" else None
    if attrs is None or attrs.get("schema") != SCHEMA_NAME or root_damage(doc):
        raise StoreError(_not_a_cube(loc, doc))
    major = str(attrs.get("schema_version", "")).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise StoreError(
            f"{loc}: cube schema version {attrs.get('schema_version')} is not readable by nersemble-cube "
            f"{__version__} (schema {SCHEMA_VERSION}); convert again or upgrade nersemble-cube"
        )
    return attrs


@located
def check_ranges(loc: Location) -> None:
    """Refuse an http(s) server that ignores HTTP Range requests (``python -m http.server`` does): zarr reads
    parts of shard files, which such a server answers with whole files. Costs one 1-byte request."""
    if not loc.read_only:
        return
    try:
        part = loc.fs.cat_file(loc.key("zarr.json"), start=0, end=1)
    except OSError as e:
        raise StoreError(f"{loc}: cannot be read ({e})") from None
    if len(part) != 1:
        raise StoreError(f"{loc}: the server ignores HTTP Range requests (it sent {len(part)} bytes for 1); serve the "
                         "cube with one that honours them (object stores, CDNs, nginx; not python -m http.server)")


@located
def check_target(loc: Location) -> bool:
    """Whether ``loc`` is an existing cube to add to (True) or free to create one in (False).

    A missing path, an empty folder or an empty prefix of an object store is free. A file, or a
    folder holding anything but a cube, raises :class:`StoreError`, as does a read-only location
    (http). Writes nothing.
    """
    if loc.read_only:
        raise StoreError(f"{loc}: http(s) stores are read-only; write the cube to a local path or an object store")
    if loc.is_local:
        path = loc.path
        if not path.exists():
            return False
        if not path.is_dir():
            raise StoreError(f"{path}: exists and is not a folder; choose another store path")
        if not any(path.iterdir()):
            return False
        _check_existing(loc, root_document(loc))
        return True
    try:
        doc = root_document(loc)
        if doc is not None:
            _check_existing(loc, doc)
            return True
        if loc.fs.exists(loc.key("")) and loc.fs.ls(loc.key(""), detail=False):
            raise StoreError(f"{loc}: holds other objects and is not a cube; choose another store URL")
    except (PermissionError, OSError) as e:
        raise StoreError(f"{loc}: cannot be read ({e}); check the URL and credentials") from None
    return False


_ROOT_ATTRS = {"schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION, "camera_convention": CAMERA_CONVENTION,
               "integrity": INTEGRITY, "created_by": f"nersemble-cube {__version__}"}


def _check_existing(loc: Location, doc: dict | None) -> None:
    """Accept the existing store ``loc`` (root document ``doc``) as a target: a cube, or a cube whose root document
    was damaged (:func:`root_damage`) while a top node of a cube (``nvs``, ``mono_flame_avatar``, ``svfr``,
    ``dataset``) keeps a ``zarr.json`` of its own: a conversion rebuilds that root (:func:`rebuild_root`). Anything
    else raises :class:`StoreError`."""
    if root_damage(doc) is None or not any(loc.read_bytes(f"{top}/zarr.json") is not None for top in _TOP_NODES):
        _cube_attrs(loc, doc)


def write_group_document(loc: Location, group: str, attrs: dict | None = None) -> None:
    """Write the ``zarr.json`` of the group ``group`` afresh (a group with ``attrs``), replacing a damaged one."""
    doc = {"attributes": attrs or {}, "zarr_format": 3, "node_type": "group"}
    loc.fs.pipe_file(loc.key(f"{group}/zarr.json".lstrip("/")), json.dumps(doc, indent=2).encode())


def rebuild_root(loc: Location) -> None:
    """Write a fresh root document for a cube whose root was damaged: the schema attrs, and the reduced levels
    its ``scales/`` folder holds; the consolidated metadata follows at the next :func:`consolidate`."""
    levels = sorted({1} | {int(k.rsplit("/", 2)[-2]) for k in loc.fs.glob(loc.key("scales/*/zarr.json"))})
    write_group_document(loc, "", {**_ROOT_ATTRS, **({"multiscales": levels} if levels != [1] else {})})


@located
def prepare_target(loc: Location) -> None:
    """Create the cube root at ``loc`` (with the schema attrs), or accept an existing cube; refuse anything else."""
    if check_target(loc):
        return
    if loc.is_local and loc.path.is_symlink() and not loc.path.exists():  # a link to a folder yet to be made
        loc.path.resolve().mkdir(parents=True, exist_ok=True)
    group = zarr.open_group(loc.zarr_store(), mode="a", zarr_format=3, use_consolidated=False)
    group.attrs.update(_ROOT_ATTRS)


@located
def open_group(loc: Location, group: str, mode: str = "r") -> zarr.Group:
    """The zarr group ``group`` of the cube, without consolidated metadata (it may be stale while writing)."""
    return zarr.open_group(loc.zarr_store(read_only=mode == "r"), path=group, mode=mode, zarr_format=3,
                           use_consolidated=False)


@located
def open_array(loc: Location, array: str, mode: str = "r") -> zarr.Array:
    """The zarr array ``array`` (``"nvs/388/sequences/GLASSES/images"``) of the cube."""
    return zarr.open_array(loc.zarr_store(read_only=mode == "r"), path=array, mode=mode, zarr_format=3)


@located
def is_complete(loc: Location, group: str) -> bool:
    """Whether the node ``group`` exists, is readable and was marked complete after all its data was written."""
    try:
        g = open_group(loc, group)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError,
            json.JSONDecodeError, ValueError):
        return False
    return bool(g.attrs.get("complete", False))


@located
def count_flags(loc: Location, group: str, name: str) -> int:
    """How many units of the node ``group`` are flagged written in ``{name}_complete`` (0 if it has none)."""
    try:
        return int(open_array(loc, f"{group}/{name}{FLAG_SUFFIX}")[:].sum())
    except (FileNotFoundError, KeyError, ValueError, StoreError, zarr.errors.NodeNotFoundError):
        return 0


@located
def mark_complete(loc: Location, group: str, remove: tuple[str, ...] = ()) -> None:
    """Set ``complete = True`` on ``group`` (and drop its attrs ``remove``: bookkeeping of the write); called only
    after every array of it is written."""
    attrs = open_group(loc, group, "r+").attrs
    if remove:
        attrs.put({**{k: v for k, v in attrs.asdict().items() if k not in remove}, "complete": True})
    else:
        attrs["complete"] = True


@located
def set_attrs(loc: Location, group: str, attrs: dict) -> None:
    """Create ``group`` if needed and update its attrs."""
    open_group(loc, group, "a").attrs.update(attrs)


@located
def remove_group(loc: Location, group: str) -> None:
    """Delete the node ``group`` (or the array of that path) and everything below it (a half-written sequence)."""
    with contextlib.suppress(FileNotFoundError):
        loc.fs.rm(loc.key(group), recursive=True)


@located
def consolidate(loc: Location) -> None:
    """Rewrite the consolidated metadata of the whole cube (so opening reads one document)."""
    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not (yet) in the v3 spec; xarray and zarr-python read it.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(loc.zarr_store())


@located
def remove_partial_writes(loc: Location) -> int:
    """Delete the ``*.partial`` temporary files a killed writer left in a local store (zarr writes
    each object to a temporary file and renames it); returns how many. Call only under :func:`writer_lock`."""
    if not loc.is_local or not loc.path.is_dir():
        return 0
    stale = list(loc.path.rglob("*.partial"))
    for f in stale:
        f.unlink(missing_ok=True)
    return len(stale)


@located
def stored_bytes(loc: Location, node: str = "") -> int:
    """Bytes the files (objects) under ``node`` of the cube take; 0 if there is no such node."""
    try:
        return int(loc.fs.du(loc.key(node), total=True))
    except FileNotFoundError:
        return 0


# ---- writing nodes ------------------------------------------------------------------------------------------------

def write_node(loc: Location, group: str, ds: xr.Dataset, storage: StorageSpec | None = None,
               compute: bool = True) -> None:
    """Write ``ds`` as the node ``group`` (replacing it), with the schema's encodings for ``storage``, every
    chunk stored (all-fill ones too). ``compute=False`` writes only the metadata of dask-backed variables
    (a template to fill)."""
    ds.to_zarr(NodeWriteStore(loc.zarr_store()), group=group, mode="w", compute=compute, zarr_format=3,
               consolidated=False, encoding=encoding(ds, storage), write_empty_chunks=True)
    open_group(loc, group, "r+").attrs[METADATA_COMPLETE] = True  # last: a killed write leaves it absent


def open_for_writing(loc: Location, array: str) -> zarr.Array:
    """The array ``array`` opened to write whole chunks into. Every chunk is stored, all-fill ones too
    (an all-black matte is a written frame, not a missing one), which also skips zarr's all-equal scan of
    each chunk, dearer than compressing it."""
    # open_array ignores config= for an existing array, hence with_config.
    return open_array(loc, array, "r+").with_config({"write_empty_chunks": True})


def set_flags(loc: Location, group: str, name: str, index: slice | int) -> None:
    """Set the completion flags ``{name}_complete[index]`` of the node ``group`` (after that unit is written)."""
    open_for_writing(loc, f"{group}/{name}{FLAG_SUFFIX}")[index] = True


@located
def begin_writing(loc: Location, command: str = "convert") -> None:
    """Record in the root attrs that a conversion is writing the cube (root attr ``writing``, with the
    ``nersemble-cube`` command that finishes it when run again), and consolidate, so that a reader of a cube
    whose writer dies is told so, whatever the consolidated metadata said before."""
    open_group(loc, "", "r+").attrs[WRITING] = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                                                "command": command}
    consolidate(loc)


@located
def end_writing(loc: Location) -> None:
    """Remove the root attr ``writing`` once a conversion finished; the caller consolidates afterwards."""
    group = open_group(loc, "", "r+")
    if WRITING in group.attrs:
        del group.attrs[WRITING]
