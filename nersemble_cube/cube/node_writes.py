"""A zarr store wrapper for writing one node: what zarr asks of the store again and again, answered once.

Creating each array of a node, zarr-python reads the ``zarr.json`` of every ancestor group (to check none is
an array), writes each one that is missing, checks that nothing exists at the array's own path, and, in
``mode="w"``, deletes everything under that path first, though it just deleted the whole node. On a local disk
that is cheap; on an object store each is a request (a HEAD and a GET, a listing for a prefix): the S3 test's
conversion (129 objects written) made 2,049 requests, 866 through this (docs/performance.md).
:class:`NodeWriteStore` keeps, for the length of one write, every ``zarr.json`` it has read, written or found
missing, and the prefixes it has emptied, so the same question is not sent twice.

Valid while nothing else writes the node being written or creates or deletes its ancestors: a conversion holds
the cube's writer lock and writes a node's template before any task of that node runs.
"""

from __future__ import annotations

from collections.abc import Iterable

from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

_DOCUMENT = "zarr.json"


def _is_document(key: str) -> bool:
    return key == _DOCUMENT or key.endswith("/" + _DOCUMENT)


def _under(key: str, prefix: str) -> bool:
    """Whether ``key`` lies under the prefix (folder) ``prefix`` ("": the whole store)."""
    return not prefix or key.startswith(prefix.rstrip("/") + "/")


def _within(prefix: str, outer: str) -> bool:
    """Whether the prefix ``prefix`` is ``outer`` or lies under it."""
    return prefix.rstrip("/") == outer.rstrip("/") or _under(prefix, outer)


class NodeWriteStore(WrapperStore):
    """``store`` for one node write: each ``zarr.json`` read, written or found missing is remembered (content, or
    absent), and ``delete_dir`` of a prefix already emptied here deletes only what was written under it since.
    Chunks are always read from ``store``: the tasks filling a template write them from other threads or
    processes."""

    def __init__(self, store: Store):
        super().__init__(store)
        self._documents: dict[str, Buffer | None] = {}
        """``zarr.json`` key -> its bytes, or None: there is none."""
        self._emptied: list[str] = []
        """Prefixes deleted here: whatever lies under them was written here (``_written``)."""
        self._written: set[str] = set()

    def _with_store(self, store: Store) -> NodeWriteStore:
        return type(self)(store)

    def _absent(self, key: str) -> bool:
        """The document ``key`` lies under a prefix emptied here and was not written since."""
        return key not in self._written and any(_under(key, prefix) for prefix in self._emptied)

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        if not _is_document(key) or byte_range is not None:  # chunks: always the store's (a task may have written them)
            return await super().get(key, prototype, byte_range)
        if self._absent(key):
            return None
        if key not in self._documents:
            self._documents[key] = await super().get(key, prototype)
        return self._documents[key]

    async def exists(self, key: str) -> bool:
        if not _is_document(key):
            return await super().exists(key)
        if self._absent(key):
            return False
        if key in self._documents:
            return self._documents[key] is not None
        return await super().exists(key)

    async def set(self, key: str, value: Buffer) -> None:
        await super().set(key, value)
        self._written.add(key)
        if _is_document(key):
            self._documents[key] = value

    async def _set_many(self, values: Iterable[tuple[str, Buffer]]) -> None:  # through set: each key noted
        for key, value in values:
            await self.set(key, value)

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        if _is_document(key) and self._documents.get(key) is not None:
            return
        if _is_document(key) and (self._absent(key) or key in self._documents):  # known to be missing
            await self.set(key, value)
            return
        await super().set_if_not_exists(key, value)
        self._documents.pop(key, None)  # written, or there already: read again if asked

    async def delete(self, key: str) -> None:
        await super().delete(key)
        self._written.discard(key)
        if _is_document(key):
            self._documents[key] = None

    async def delete_dir(self, prefix: str) -> None:
        if any(_within(prefix, done) for done in self._emptied):  # emptied here before: only what came since
            for key in [k for k in self._written if _under(k, prefix)]:
                await self.delete(key)
            return
        await super().delete_dir(prefix)
        self._emptied.append(prefix)
        self._written = {k for k in self._written if not _under(k, prefix)}
        for key in self._documents:
            if _under(key, prefix):
                self._documents[key] = None
