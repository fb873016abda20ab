"""Shards written in the worker thread (cube/shards.py) hold the bytes zarr-python writes for the same data."""

from __future__ import annotations

import os

import numpy as np
import pytest
import zarr

from nersemble_cube.cube.shards import ChunkReader, ShardWriter
from nersemble_cube.cube.storage import StorageSpec


def _array(root, name, spec: StorageSpec, shape, rng):
    frame = shape[2:]
    enc = spec.frame_encoding(shape[1], frame)
    arr = zarr.create_array(zarr.storage.LocalStore(root / name), shape=shape, dtype="uint8", fill_value=0,
                            chunks=enc["chunks"], shards=enc.get("shards"), compressors=enc["compressors"],
                            serializer=enc.get("serializer", "auto"), config={"write_empty_chunks": True})
    return arr, rng.integers(0, 256, shape, dtype=np.uint8) // 7 * 7  # compressible, not constant


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("c/**/*")) if p.is_file()}


@pytest.mark.parametrize("spec, shape", [
    (StorageSpec("zstd", frames_per_shard=4), (2, 10, 6, 5, 3)),     # a last shard cut by the array's end
    (StorageSpec("lz4", frames_per_shard=4), (1, 8, 6, 5, 3)),
    (StorageSpec("none", frames_per_shard=4), (1, 5, 6, 5)),          # mattes: (camera, time, y, x)
    (StorageSpec("zstd", frames_per_chunk=2, frames_per_shard=4), (1, 7, 6, 5, 3)),  # a padded last chunk
    (StorageSpec("zstd", frames_per_shard=0), (1, 3, 6, 5, 3)),        # unsharded: one file per chunk
    (StorageSpec("jpegxl", frames_per_shard=4), (1, 6, 16, 16, 3)),
])
def test_a_shard_written_in_the_thread_is_the_shard_zarr_writes(tmp_path, spec, shape):
    rng = np.random.default_rng(3)
    ours, data = _array(tmp_path, "ours", spec, shape, rng)
    theirs, _ = _array(tmp_path, "theirs", spec, shape, rng)
    writer = ShardWriter(ours)
    assert writer.direct
    step = spec.shard_frames(shape[1])
    for c in range(shape[0]):
        for t in range(0, shape[1], step):
            writer.write((c, t) + (0,) * (len(shape) - 2), data[c:c + 1, t:t + step])
            theirs[c:c + 1, t:t + step] = data[c:c + 1, t:t + step]
    files = _files(tmp_path / "ours")
    assert files == _files(tmp_path / "theirs")
    assert len(files) == shape[0] * -(-shape[1] // step)
    stored = zarr.open_array(zarr.storage.LocalStore(tmp_path / "ours"), mode="r")
    if spec.lossless:
        np.testing.assert_array_equal(stored[:], data)
    reader, per = ChunkReader(stored), spec.frames_per_chunk
    assert (reader._decode is not None) == spec.lossless  # the lossless chains decompress straight into the array
    for c in range(shape[0]):
        for t in range(0, shape[1], per):
            chunk = reader.chunk((c, t // per) + (0,) * (len(shape) - 2))
            np.testing.assert_array_equal(chunk[:, :shape[1] - t], stored[c:c + 1, t:t + per])
            assert chunk.flags.writeable


@pytest.mark.parametrize("preadv", [True, False], ids=["preadv", "no-preadv"])
@pytest.mark.parametrize("codec", ["zstd", "lz4", "none"])
def test_a_damaged_chunk_fails_its_checksum_when_read_directly(tmp_path, codec, preadv, monkeypatch):
    if not preadv:  # a system without os.preadv (Windows) reads through a file object
        monkeypatch.delattr(os, "preadv")
    arr, data = _array(tmp_path, "a", StorageSpec(codec, frames_per_shard=4), (1, 4, 6, 5, 3), np.random.default_rng(1))
    ShardWriter(arr).write((0, 0, 0, 0, 0), data)
    shard = tmp_path / "a" / "c" / "0" / "0" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[5] ^= 0x10  # inside the first chunk in Morton order (frame 0)
    shard.write_bytes(bytes(raw))
    reader = ChunkReader(zarr.open_array(zarr.storage.LocalStore(tmp_path / "a"), mode="r"))
    with pytest.raises(ValueError, match="checksum do not match"):
        reader.chunk((0, 0, 0, 0, 0))
    np.testing.assert_array_equal(reader.chunk((0, 1, 0, 0, 0)), data[:, 1:2])  # the other chunks still read
    shard.write_bytes(bytes(raw[:len(raw) // 2]))  # cut short while the reader holds its index
    with pytest.raises(ValueError, match="truncated"):
        reader.chunk((0, 3, 0, 0, 0))


def test_a_chunk_never_written_reads_as_the_fill_value(tmp_path):
    arr, data = _array(tmp_path, "a", StorageSpec("zstd", frames_per_shard=4), (1, 8, 6, 5, 3), np.random.default_rng(0))
    ShardWriter(arr).write((0, 4, 0, 0, 0), data[:, 4:])
    reader = ChunkReader(arr)
    assert reader.chunk((0, 1, 0, 0, 0)).max() == 0  # shard 0 was never written
    np.testing.assert_array_equal(reader.chunk((0, 5, 0, 0, 0)), data[:, 5:6])


def test_a_region_off_the_shard_grid_is_refused(tmp_path):
    arr, data = _array(tmp_path, "a", StorageSpec("zstd", frames_per_shard=4), (1, 8, 6, 5, 3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="whole shards"):
        ShardWriter(arr).write((0, 2, 0, 0, 0), data[:, 2:6])
    with pytest.raises(ValueError, match="whole shards"):
        ShardWriter(arr).write((0, 0, 0, 0, 0), data[:, :3])


@pytest.mark.parametrize("shape", [(2, 5, 11, 5, 3), (1, 3, 8, 4)])  # 11 rows in 4 blocks: a padded last block
def test_frames_in_row_blocks_read_back_through_zarr_tensorstore_and_the_chunk_reader(tmp_path, shape):
    """``row_blocks`` cuts each frame into chunks of rows (a shard holds whole blocks: 12 rows for 11); the shard
    writer stores a frame's blocks one after the other, and zarr and tensorstore (a second zarr v3 reader) read
    the frames written, as does the chunk reader: from one range, and from blocks zarr itself wrote (its Morton
    order interleaves the frames of a shard: a read per block)."""
    import tensorstore as ts

    spec = StorageSpec("zstd", frames_per_shard=4, row_blocks=4)
    rng = np.random.default_rng(5)
    ours, data = _array(tmp_path, "ours", spec, shape, rng)
    theirs, _ = _array(tmp_path, "theirs", spec, shape, rng)
    assert ours.chunks[2] == -(-shape[2] // 4) and ours.shards[2] == 4 * ours.chunks[2]
    for c in range(shape[0]):
        for t in range(0, shape[1], 4):
            ShardWriter(ours).write((c, t) + (0,) * (len(shape) - 2), data[c:c + 1, t:t + 4])
    theirs[:] = data
    stored = zarr.open_array(zarr.storage.LocalStore(tmp_path / "ours"), mode="r")
    np.testing.assert_array_equal(stored[:], data)
    store = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(tmp_path / "ours")}}).result()
    np.testing.assert_array_equal(store.read().result(), data)
    for arr, one_range in ((stored, True), (zarr.open_array(zarr.storage.LocalStore(tmp_path / "theirs"), mode="r"), False)):
        reader, ranges = ChunkReader(arr), []
        assert reader.row_blocks == 4
        for c in range(shape[0]):
            for t in range(shape[1]):
                coords = (c, t) + (0,) * (len(shape) - 2)
                ranges.append(reader.frame_ranges(coords) is not None)
                np.testing.assert_array_equal(reader.frame(coords, 0), data[c, t])
        assert all(ranges) if one_range else not all(ranges), ranges  # zarr interleaves the frames of a shard
