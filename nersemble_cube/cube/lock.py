"""The writer's lock: one ``convert`` at a time writes a cube.

A running ``convert`` holds the object ``{store}.lock`` next to the store (JSON: host, pid, start
time); outside the store, so no zarr reader ever sees it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator

from ..errors import StoreError
from .location import Location, located

LOCK_SUFFIX = ".lock"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(holder: dict) -> bool:
    """A lock left by a process of this machine that no longer runs (killed)."""
    return holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", -1)))


@located
@contextlib.contextmanager
def writer_lock(loc: Location) -> Iterator[None]:
    """Hold the cube's writer lock while converting into it; refuse if another writer holds it.

    The lock is the object ``{store}.lock`` beside the store (for a local store, beside the folder its path
    resolves to, so two spellings of one folder, a symlink among them, share one lock). Local folders: it is created exclusively (``O_EXCL``), so of two processes starting
    together exactly one wins; a lock left by a killed process of this machine is taken over.
    Object stores: the lock object is created with a conditional put (``mode="create"``: S3's
    ``If-None-Match``), so one of two racing writers wins; a backend without conditional puts falls
    back to check-then-write, which two writers starting within the same second can both pass; see
    docs/schema.md. The lock is removed on exit, also after an error.
    """
    me = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}).encode()
    # a local cube is locked where it really is, so a symlink (or another spelling) of it meets the same lock
    key = (os.path.realpath(loc.path) if loc.is_local else loc.key("")) + LOCK_SUFFIX
    if loc.is_local and os.path.isdir(key):
        raise StoreError(f"{key}: a folder stands where the writer's lock goes; remove it")
    for _ in range(2):
        try:
            if loc.is_local:
                os.makedirs(os.path.dirname(key), exist_ok=True)  # beside the folder the path resolves to
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
        except OSError as e:  # a read-only folder, a folder where the lock file goes, a full disk...
            raise StoreError(f"{key}: cannot create the writer's lock ({e.strerror or e}); check that the store's "
                             "folder is writable") from None
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            loc.fs.rm(key)
