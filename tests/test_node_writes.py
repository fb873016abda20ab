"""Writing a node through NodeWriteStore stores exactly what zarr stores without it, with far fewer store calls
(on an object store each one is a request)."""

import collections
import logging

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.storage import LoggingStore, MemoryStore

from nersemble_cube import StorageSpec
from nersemble_cube.cube import store
from nersemble_cube.cube.location import Location
from nersemble_cube.cube.node_writes import NodeWriteStore

CALLS = ("get", "exists", "set", "set_if_not_exists", "delete", "delete_dir", "list_dir", "list_prefix")
"""The store methods counted (zarr's LoggingStore also counts property reads)."""


def _node(n_frames: int, dask_backed: bool) -> xr.Dataset:
    frames = np.arange(2 * n_frames * 4 * 5 * 3, dtype=np.uint8).reshape(2, n_frames, 4, 5, 3)
    return xr.Dataset(
        {"images": (("camera", "time", "y", "x", "channel"), da.from_array(frames, chunks=(1, n_frames, 4, 5, 3))
                    if dask_backed else frames),
         "world_2_cam": (("camera", "row", "col"), np.tile(np.eye(4, dtype=np.float32), (2, 1, 1))),
         "note": ((), "x")},
        coords={"camera": ["222200037", "222200038"], "time": np.arange(n_frames)},
        attrs={"participant_id": 388, "sequence": "GLASSES"})


def _write(monkeypatch, cached: bool, compute: bool) -> tuple[dict, collections.Counter]:
    """A cube holding an older version of the node (with an array the new one lacks) under ancestors with
    attrs, then the node written again (frames in shards of 4, chunks of 1): ``(every key -> bytes, store calls of
    that write)``."""
    memory = MemoryStore()
    logged = LoggingStore(memory, log_handler=logging.NullHandler())  # zarr's own call counter
    monkeypatch.setattr(Location, "zarr_store", lambda self, read_only=False, strict=False: logged)
    monkeypatch.setattr(store, "NodeWriteStore", NodeWriteStore if cached else (lambda inner: inner))
    loc = Location("memory://cube.zarr")
    root = zarr.open_group(memory, mode="w", zarr_format=3)
    root.attrs["schema"] = "nersemble-cube"
    root.create_group("nvs/388").attrs["participant_id"] = 388
    store.write_node(loc, "nvs/388/sequences/GLASSES", _node(3, False).assign(old=("time", np.zeros(3))))
    logged.counter.clear()
    store.write_node(loc, "nvs/388/sequences/GLASSES", _node(4, True), StorageSpec(), compute=compute)
    calls = collections.Counter({name: n for name, n in logged.counter.items() if name in CALLS and n})
    return {k: v.to_bytes() for k, v in memory._store_dict.items()}, calls


@pytest.mark.parametrize("compute", [True, False])
def test_the_same_bytes_with_half_the_calls_or_fewer(monkeypatch, compute):
    plain, plain_calls = _write(monkeypatch, cached=False, compute=compute)
    cached, cached_calls = _write(monkeypatch, cached=True, compute=compute)
    assert cached.keys() == plain.keys()
    assert all(cached[k] == plain[k] for k in plain)
    assert not any(k.startswith("nvs/388/sequences/GLASSES/old/") for k in cached)  # the old array is gone
    assert b'"participant_id": 388' in cached["nvs/388/zarr.json"]  # the ancestors keep their attrs
    if compute:
        assert len([k for k in cached if k.startswith("nvs/388/sequences/GLASSES/images/c/")]) == 2  # a shard a camera
    # the same objects written; every question before them (a read, an existence check, a listing, a write
    # only if missing, a delete of what is already gone) asked at most half as often
    assert cached_calls["set"] == plain_calls["set"]
    asked = sum(n for name, n in cached_calls.items() if name != "set")
    asked_plain = sum(n for name, n in plain_calls.items() if name != "set")
    assert asked <= asked_plain / 2, (cached_calls, plain_calls)
