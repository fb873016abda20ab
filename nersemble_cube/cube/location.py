"""Where a cube lives: a local folder or any fsspec URL, with its storage options."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import fsspec
from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import FsspecStore, LocalStore, WrapperStore

from ..errors import StoreError

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

    def zarr_store(self, read_only: bool = False, strict: bool | frozenset[str] = False) -> Store:
        """A zarr store object for this location (a new one each call, cheap). ``strict``: a chunk that is
        not in the store raises :class:`StoreError` instead of reading as the fill value, in every array
        (True) or in the arrays of these nodes (for cubes that store every chunk of their complete nodes,
        see :class:`StrictStore`)."""
        if self.is_local:
            store = LocalStore(self.url, read_only=read_only)
        else:
            self.fs  # noqa: B018 - raises a clear StoreError for a missing fsspec backend
            store = FsspecStore.from_url(self.url, storage_options=dict(self.storage_options),
                                         read_only=read_only or self.read_only)
        if strict is False:
            return store
        return StrictStore(store, self.url, None if strict is True else strict)

    def read_bytes(self, key: str) -> bytes | None:
        """The object ``key``, or None if there is none. A remote store that cannot be reached (no connection,
        a timeout, no credentials) is a one-line :class:`StoreError` saying which."""
        try:
            return self.fs.cat_file(self.key(key))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except Exception as e:
            unreachable = remote_failure(self.url, e)
            if unreachable is None:
                raise
            raise unreachable from None

    def __str__(self) -> str:
        return self.url


_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "ProfileNotFound", "NoAuthTokenError",
                "DefaultCredentialsError"}
"""Class names of the cloud SDKs' missing-credentials errors (botocore, google-auth), matched by name so that
none of those SDKs is imported here."""


def remote_failure(url: str, error: BaseException) -> StoreError | None:
    """The one-line :class:`StoreError` for a remote store that cannot be used: missing credentials, no
    connection, a timeout; None for any other error (which keeps its own meaning)."""
    names = {c.__name__ for c in type(error).__mro__}
    if names & _CREDENTIALS:
        scheme = url.split("://")[0]
        how = {"s3": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
               "gs": "set GOOGLE_APPLICATION_CREDENTIALS", "gcs": "set GOOGLE_APPLICATION_CREDENTIALS"}.get(
                   scheme, "configure its fsspec backend")
        return StoreError(f"{url}: no credentials for {scheme}:// ({how}, or pass storage_options); "
                          "anonymous access: storage_options={'anon': True}")
    if isinstance(error, TimeoutError) or "Timeout" in "".join(names):
        return StoreError(f"{url}: timed out; check the address and the network")
    if isinstance(error, PermissionError):  # what s3fs makes of AccessDenied: the credentials lack a right
        return StoreError(f"{url}: access denied ({' '.join(str(error).split())}); check what the credentials may read")
    if isinstance(error, OSError) or "ClientConnectorError" in names:
        return StoreError(f"{url}: cannot connect ({' '.join(str(error).split())}); check the address and the network")
    return None


def chunk_array(key: str) -> str | None:
    """The array path of ``key`` if it names a chunk (or shard) in zarr v3's default encoding
    (``{array}/c/0/3/0``, or ``{array}/c`` for a 0-d array), else None."""
    parts = key.split("/")
    if "c" not in parts:
        return None
    last = len(parts) - 1 - parts[::-1].index("c")
    return "/".join(parts[:last]) if all(p.isdigit() for p in parts[last + 1:]) else None


class StrictStore(WrapperStore):
    """A read-only view of a cube that stores every chunk of its complete nodes (root attr
    ``integrity.every_chunk_stored``): a chunk or shard of such a node that is not there raises
    :class:`StoreError` (a lost or deleted file), where zarr would quietly return the fill value (black
    frames, zero points). ``nodes``: the node paths this holds for (None: every node)."""

    def __init__(self, store: Store, url: str, nodes: frozenset[str] | None = None):
        super().__init__(store)
        self.url, self.nodes = url, nodes

    def _with_store(self, store: Store) -> StrictStore:
        return type(self)(store, self.url, self.nodes)

    def _strict(self, key: str) -> bool:
        array = chunk_array(key)
        return array is not None and (self.nodes is None or array.rpartition("/")[0] in self.nodes)

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        value = await super().get(key, prototype, byte_range)
        if value is not None and len(value) == 0 and self._strict(key):  # no chunk or shard is ever 0 bytes
            raise StoreError(f"{self.url}/{key}: empty (0 bytes: cut short); run nersemble-cube verify, then convert "
                             "again to repair it")
        if value is None and self._strict(key):
            raise StoreError(f"{self.url}/{key}: missing from the cube (lost or deleted, or never written by an "
                             "unfinished conversion); run nersemble-cube verify, then convert again to repair it")
        return value


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


def located(fn):
    """Let ``fn(loc, ...)`` take a path or URL as well as a :class:`Location`."""
    @functools.wraps(fn)
    def wrapper(loc, *args, **kwargs):
        return fn(locate(loc), *args, **kwargs)
    return wrapper
