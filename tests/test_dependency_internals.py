"""The few private parts of our dependencies the package uses, each pinned by a test that fails loudly when a
release changes it (instead of reads quietly going slow or wrong). Run against the floors (.ci/lower-bounds) and
the newest releases (the README's test command resolves those).

- zarr: ``_decode_sync`` / ``_encode_sync`` of its codecs, ``Array._async_array.config``, a wrapped store's
  ``_store``, ``ShardingCodec._shard_index_size`` and ``_morton_order`` (cube/shards.py, which writes the bytes
  zarr writes: tests/test_shards.py compares the files);
- xarray: the wrappers around the zarr array its backend opened (cube/access.py ``_opened_array``);
- dask.distributed: ``ProgressBar._draw_bar`` (cluster.py, the progress of graphs run on a cluster).
"""

import inspect

import numpy as np
import zarr

import nersemble_cube
from conftest import N_FRAMES

SEQ = "nvs/388/sequences/GLASSES"


def test_zarr_internals_the_shard_reader_and_writer_use(cube, tmp_path):
    from zarr.codecs import ShardingCodec

    from nersemble_cube.cube import shards

    array = zarr.open_array(str(cube / SEQ / "images"), mode="r")
    sharding = array.metadata.codecs[0]
    assert isinstance(sharding, ShardingCodec)
    per_shard = tuple(s // c for s, c in zip(array.shards, array.chunks))
    # the index: 16 bytes (offset, length) per chunk plus its crc32c, at the shard's end
    assert sharding._shard_index_size(per_shard) == 16 * int(np.prod(per_shard)) + 4
    assert array._async_array.config is not None
    order = shards._morton_order((2, 2)).tolist()
    assert sorted(map(tuple, order)) == [(0, 0), (0, 1), (1, 0), (1, 1)] and tuple(order[0]) == (0, 0)
    for codec in sharding.codecs:
        assert inspect.ismethod(getattr(codec, "_decode_sync")) and inspect.ismethod(getattr(codec, "_encode_sync"))
    reader = shards.ChunkReader(array)
    np.testing.assert_array_equal(reader.chunk((1, N_FRAMES - 1, 0, 0, 0))[0, 0], array[1, N_FRAMES - 1])


def test_xarray_opened_array_is_found_behind_its_wrappers(cube):
    from nersemble_cube.cube.access import _opened_array

    import xarray as xr

    ds = nersemble_cube.open(cube, dask=False)[SEQ].to_dataset()
    raw = xr.open_datatree(str(cube), engine="zarr", chunks=None)[SEQ].to_dataset()
    assert isinstance(_opened_array(raw.images.variable), zarr.Array)  # else every frame read re-opens the array
    assert ds.images.isel(camera=0, time=0).values.shape == (1604, 1100, 3)


def test_distributed_progress_bar_hook_exists():
    """ProgressBar.listen feeds its subclasses' ``_draw_bar(remaining=, all=, ...)`` (as its own TextProgressBar
    implements it): cluster.py's TaskProgress does the same."""
    from distributed.diagnostics.progressbar import ProgressBar, TextProgressBar

    assert "self._draw_bar(**response)" in inspect.getsource(ProgressBar.listen)
    assert {"remaining", "all"} <= set(inspect.signature(TextProgressBar._draw_bar).parameters)


def test_zarr_words_a_checksum_mismatch_as_the_integrity_check_expects(cube, tmp_path):
    """integrity.py tells a chunk whose bytes changed from other unreadable chunks by zarr's ValueError text."""
    import shutil

    from nersemble_cube.cube.shards import is_checksum_mismatch

    shutil.copytree(cube / "nvs/388/calibration", tmp_path / "calibration")
    chunk = tmp_path / "calibration/world_2_cam/c/0/0/0"
    data = bytearray(chunk.read_bytes())
    data[3] ^= 0xFF
    chunk.write_bytes(bytes(data))
    try:
        zarr.open_array(str(tmp_path / "calibration/world_2_cam"), mode="r")[...]
    except ValueError as error:
        assert is_checksum_mismatch(error), error
    else:
        raise AssertionError("zarr read a chunk whose bytes changed")
