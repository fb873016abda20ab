"""Low-level handling of a cube's zarr store: where it lives (a local folder or any fsspec URL),
recognising one, root attrs, completeness markers, the writer's lock, consolidation."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import fsspec
import zarr
from zarr.abc.store import Store
from zarr.storage import FsspecStore, LocalStore

from . import __version__
from .errors import StoreError
from .schema import CAMERA_CONVENTION, SCHEMA_NAME, SCHEMA_VERSION

LOCK_SUFFIX = ".lock"
"""A running ``convert`` holds the object ``{store}.lock`` next to the store (JSON: host, pid, start
time); outside the store, so no zarr reader ever sees it."""

READ_ONLY_PROTOCOLS = ("http", "https")


@dataclass(frozen=True)
class Location:
    """Where a cube lives: an absolute local path or an fsspec URL (``s3://bucket/cube.zarr``,
    ``gs://...``, ``memory://...``, ``http://host/cube.zarr`` read-only), plus fsspec
    ``storage_options`` (endpoint, credentials...). The options are never written to the cube nor
    shown: ``str()`` and ``repr()`` give the URL only. Picklable, so tasks on other machines open the
    same store."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_local(self) -> bool:
        return "://" not in self.url

    @property
    def path(self) -> Path:
        """The local folder (only for local locations)."""
        assert self.is_local, self.url
        return Path(self.url)

    @property
    def read_only(self) -> bool:
        return self.url.split("://")[0] in READ_ONLY_PROTOCOLS

    @cached_property
    def _fs_root(self) -> tuple[fsspec.AbstractFileSystem, str]:
        try:
            return fsspec.core.url_to_fs(self.url, **self.storage_options)
        except ImportError as e:
            raise StoreError(f"{self.url}: this protocol needs an fsspec backend that is not installed ({e}); "
                             "pip install 'nersemble-cube[remote]' (http, s3) or the backend named") from None

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return self._fs_root[0]

    def key(self, key: str) -> str:
        """The filesystem path of ``key`` (``"nvs/388/zarr.json"``) inside the store."""
        root = self._fs_root[1].rstrip("/")
        return f"{root}/{key}" if key else root

    def zarr_store(self, read_only: bool = False) -> Store:
        """A zarr store object for this location (a new one each call, cheap)."""
        if self.is_local:
            return LocalStore(self.url, read_only=read_only)
        self.fs  # noqa: B018 - raises a clear StoreError for a missing fsspec backend
        return FsspecStore.from_url(self.url, storage_options=dict(self.storage_options),
                                    read_only=read_only or self.read_only)

    def read_bytes(self, key: str) -> bytes | None:
        """The object ``key``, or None if there is none."""
        try:
            return self.fs.cat_file(self.key(key))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def __str__(self) -> str:
        return self.url


def locate(where: str | Path | Location, storage_options: Mapping[str, Any] | None = None) -> Location:
    """The :class:`Location` of a local path (``~`` expanded, made absolute) or fsspec URL
    (``file://`` URLs become local paths)."""
    if isinstance(where, Location):
        return where
    text = str(where)
    text = text.removeprefix("file://")
    if "://" in text:
        return Location(text.rstrip("/"), dict(storage_options or {}))
    return Location(str(Path(text).expanduser().absolute()), {})


def _located(fn):
    """Let ``fn(loc, ...)`` take a path or URL as well as a :class:`Location`."""
    @functools.wraps(fn)
    def wrapper(loc, *args, **kwargs):
        return fn(locate(loc), *args, **kwargs)
    return wrapper


def _root_doc(loc: Location) -> dict | None:
    try:
        raw = loc.read_bytes("zarr.json")
    except OSError as e:
        raise StoreError(f"{loc}: cannot be read ({e})") from None
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


@_located
def is_consolidated(loc: Location) -> bool:
    """Whether the zarr v3 store at ``loc`` has consolidated metadata in its root ``zarr.json``."""
    doc = _root_doc(loc)
    return doc is not None and "consolidated_metadata" in doc


@_located
def check_cube(loc: Location) -> dict:
    """Return the root attrs of the cube at ``loc``; raise :class:`StoreError` if it is none we can read."""
    return _cube_attrs(loc, _root_doc(loc))


def _cube_attrs(loc: Location, doc: dict | None) -> dict:
    """The root attrs in the root document ``doc`` of ``loc``, checked as :func:`check_cube` says."""
    attrs = doc.get("attributes", {}) if doc and doc.get("node_type") == "group" else None
    if attrs is None or attrs.get("schema") != SCHEMA_NAME:
        raise StoreError(f"{loc}: not a nersemble-cube store (no zarr group with schema={SCHEMA_NAME!r})")
    major = str(attrs.get("schema_version", "")).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise StoreError(
            f"{loc}: cube schema version {attrs.get('schema_version')} is not readable by nersemble-cube "
            f"{__version__} (schema {SCHEMA_VERSION}); convert again or upgrade nersemble-cube"
        )
    return attrs


@_located
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
        check_cube(loc)
        return True
    try:
        doc = _root_doc(loc)
        if doc is not None:
            _cube_attrs(loc, doc)
            return True
        if loc.fs.exists(loc.key("")) and loc.fs.ls(loc.key(""), detail=False):
            raise StoreError(f"{loc}: holds other objects and is not a cube; choose another store URL")
    except (PermissionError, OSError) as e:
        raise StoreError(f"{loc}: cannot be read ({e}); check the URL and credentials") from None
    return False


@_located
def prepare_target(loc: Location) -> None:
    """Create the cube root at ``loc`` (with the schema attrs), or accept an existing cube; refuse anything else."""
    if check_target(loc):
        return
    group = zarr.open_group(loc.zarr_store(), mode="a", zarr_format=3, use_consolidated=False)
    group.attrs.update({
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "camera_convention": CAMERA_CONVENTION,
        "created_by": f"nersemble-cube {__version__}",
    })


@_located
def open_group(loc: Location, group: str, mode: str = "r") -> zarr.Group:
    """The zarr group ``group`` of the cube, without consolidated metadata (it may be stale while writing)."""
    return zarr.open_group(loc.zarr_store(read_only=mode == "r"), path=group, mode=mode, zarr_format=3,
                           use_consolidated=False)


@_located
def open_array(loc: Location, array: str, mode: str = "r") -> zarr.Array:
    """The zarr array ``array`` (``"nvs/388/sequences/GLASSES/images"``) of the cube."""
    return zarr.open_array(loc.zarr_store(read_only=mode == "r"), path=array, mode=mode)


@_located
def is_complete(loc: Location, group: str) -> bool:
    """Whether the node ``group`` exists, is readable and was marked complete after all its data was written."""
    try:
        g = open_group(loc, group)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError,
            json.JSONDecodeError, ValueError):
        return False
    return bool(g.attrs.get("complete", False))


@_located
def mark_complete(loc: Location, group: str) -> None:
    """Set ``complete = True`` on ``group``; called only after every array of it is written."""
    open_group(loc, group, "r+").attrs["complete"] = True


@_located
def set_attrs(loc: Location, group: str, attrs: dict) -> None:
    """Create ``group`` if needed and update its attrs."""
    open_group(loc, group, "a").attrs.update(attrs)


@_located
def remove_group(loc: Location, group: str) -> None:
    """Delete the node ``group`` and everything below it (a half-written sequence)."""
    with contextlib.suppress(FileNotFoundError):
        loc.fs.rm(loc.key(group), recursive=True)


@_located
def consolidate(loc: Location) -> None:
    """Rewrite the consolidated metadata of the whole cube (so opening reads one document)."""
    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not (yet) in the v3 spec; xarray and zarr-python read it.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(loc.zarr_store())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(holder: dict) -> bool:
    """A lock left by a process of this machine that no longer runs (killed)."""
    return holder.get("host") == socket.gethostname() and not _pid_alive(int(holder.get("pid", -1)))


@_located
@contextlib.contextmanager
def writer_lock(loc: Location) -> Iterator[None]:
    """Hold the cube's writer lock while converting into it; refuse if another writer holds it.

    The lock is the object ``{store}.lock`` beside the store. Local folders: it is created exclusively (``O_EXCL``), so of two processes starting
    together exactly one wins; a lock left by a killed process of this machine is taken over.
    Object stores: the lock object is created with a conditional put (``mode="create"``: S3's
    ``If-None-Match``), so one of two racing writers wins; a backend without conditional puts falls
    back to check-then-write, which two writers starting within the same second can both pass; see
    docs/schema.md. The lock is removed on exit, also after an error.
    """
    me = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}).encode()
    key = loc.key("") + LOCK_SUFFIX
    for _ in range(2):
        try:
            if loc.is_local:
                loc.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(fd, "wb") as f:
                    f.write(me)
            elif loc.fs.exists(key):
                raise FileExistsError(key)
            else:
                try:
                    loc.fs.pipe_file(key, me, mode="create")
                except TypeError:
                    loc.fs.pipe_file(key, me)
            break
        except FileExistsError:
            try:
                holder = json.loads(loc.fs.cat_file(key))
            except (FileNotFoundError, json.JSONDecodeError):
                holder = {}
            if _stale(holder):
                loc.fs.rm(key)
                continue
            who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
            raise StoreError(f"{loc}: another nersemble-cube convert ({who}) is writing this cube; wait for it "
                             f"to finish, or if it is gone delete {key}") from None
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            loc.fs.rm(key)


@_located
def remove_partial_writes(loc: Location) -> int:
    """Delete the ``*.partial`` temporary files a killed writer left in a local store (zarr writes
    each object to a temporary file and renames it); returns how many. Call only under :func:`writer_lock`."""
    if not loc.is_local or not loc.path.is_dir():
        return 0
    stale = list(loc.path.rglob("*.partial"))
    for f in stale:
        f.unlink(missing_ok=True)
    return len(stale)
