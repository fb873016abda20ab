import subprocess
import sys
import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.storage import LocalStore, WrapperStore

import nersemble_cube
from nersemble_cube.compat import NVSDataManager
from nersemble_cube.cube.access import IncompleteCubeWarning
from nersemble_cube.errors import IncompleteCubeError, SelectionError, StoreError, UsageError
from nersemble_cube import convert

from conftest import N_FRAMES, decode_pyav


class CountingStore(WrapperStore):
    """Records every key read (get) from the wrapped store."""

    def __init__(self, store):
        super().__init__(store)
        self.keys: list[str] = []
        self.ranges: list = []

    def _with_store(self, store):
        return type(self)(store)

    async def get(self, key, prototype, byte_range=None):
        self.keys.append(key)
        self.ranges.append(byte_range)
        return await self._store.get(key, prototype, byte_range)

    async def get_ranges(self, key, byte_ranges, *args, **kwargs):  # zarr >= 3.2's coalescing reads: each range
        byte_ranges = list(byte_ranges)
        self.keys += [key] * len(byte_ranges)
        self.ranges += byte_ranges
        async for group in self._store.get_ranges(key, byte_ranges, *args, **kwargs):
            yield group


def test_open_is_lazy_and_dask_backed(cube):
    tree = nersemble_cube.open(cube)
    assert isinstance(tree, xr.DataTree)
    ds = tree["nvs/388/sequences/GLASSES"].to_dataset()
    assert isinstance(ds.images.data, da.Array) and isinstance(ds.alpha.data, da.Array)
    assert ds.images.data.chunksize == (1, 1, 1604, 1100, 3)


def test_without_dask_reads_the_same_frame_on_access(cube):
    lazy = nersemble_cube.open(cube, dask=False)["nvs/388/sequences/GLASSES"].to_dataset()
    eager = nersemble_cube.open(cube)["nvs/388/sequences/GLASSES"].to_dataset()
    assert not isinstance(lazy.images.variable._data, (np.ndarray, da.Array))  # nothing loaded yet
    np.testing.assert_array_equal(lazy.images.sel(camera="222200042", time=4).values,
                                  eager.images.sel(camera="222200042", time=4).values)


def test_plain_xarray_opens_the_cube_without_nersemble_cube(cube, sample_dir):
    tree = xr.open_datatree(str(cube), engine="zarr", chunks={})
    frame = tree["nvs/388/sequences/GLASSES"].images.sel(camera="222200042", time=3).values
    np.testing.assert_array_equal(frame, decode_pyav(sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200042.mp4")[3])


def test_opening_reads_metadata_and_one_frame_reads_one_chunk(cube):
    counting = CountingStore(LocalStore(str(cube), read_only=True))
    tree = xr.open_datatree(counting, engine="zarr", chunks={}, consolidated=True, zarr_format=3)
    opened = list(counting.keys)
    # one consolidated metadata document plus the small coordinate arrays
    assert opened[0] == "zarr.json"
    assert not [k for k in opened if k.endswith("zarr.json") and k != "zarr.json"]
    # everything else is a dimension coordinate (serials, frame indices, channel names): one small chunk each
    assert {k.split("/")[-3] for k in opened[1:]} == {"camera", "time", "channel", "timestep", "image"}
    assert all(k.endswith("/c/0") for k in opened[1:])
    counting.keys.clear()
    counting.ranges.clear()
    ds = tree["nvs/388/sequences/GLASSES"].to_dataset()
    frame = ds.images.sel(camera="222200044", time=2).values
    assert frame.shape == (1604, 1100, 3)
    cam = ds.camera.values.tolist().index("222200044")  # serials sorted: 222200040, 222200042, 222200044
    assert cam == 2
    # frames 0-4 share one shard file: its index (at the end) and then that frame's bytes only
    shard = f"nvs/388/sequences/GLASSES/images/c/{cam}/0/0/0/0"
    assert counting.keys == [shard, shard]
    index_read, frame_read = counting.ranges
    assert frame_read.end - frame_read.start < (cube / shard).stat().st_size / 3


def test_an_unfinished_node_is_an_error_unless_asked_for(sample_dir, tmp_path):
    target = tmp_path / "c.zarr"
    convert(sample_dir, target, benchmarks=["mono_flame_avatar"], sequences=["EXP-1-head"])
    zarr.open_group(str(target), path="mono_flame_avatar/393/sequences/EXP-1-head", mode="r+",
                    use_consolidated=False).attrs["complete"] = False
    from nersemble_cube.cube.location import locate
    from nersemble_cube.cube.store import consolidate
    consolidate(locate(target))
    seq = "mono_flame_avatar/393/sequences/EXP-1-head"
    with pytest.raises(IncompleteCubeError, match=f"did not finish \\(unfinished: /{seq}\\); run the same"):
        nersemble_cube.open(target)
    with pytest.raises(IncompleteCubeError, match="EXP-1-head is running or did not finish"):
        nersemble_cube.read_frame(target, seq, "222200037", 0)
    with pytest.warns(IncompleteCubeWarning, match="EXP-1-head"):
        frame = nersemble_cube.open(target, incomplete=True)[seq].images.isel(camera=0, time=0).values
    np.testing.assert_array_equal(nersemble_cube.FrameReader(target, seq, incomplete=True).read("222200037", 0), frame)


def test_complete_cube_opens_without_warnings(cube):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nersemble_cube.open(cube)


def test_not_a_cube(tmp_path):
    with pytest.raises(StoreError, match="not a nersemble-cube store"):
        nersemble_cube.open(tmp_path)


def test_summary_lists_every_node(cube):
    text = nersemble_cube.summary(nersemble_cube.open(cube))
    seq = "mono_flame_avatar/393/sequences"
    hold_out = [f"{seq}/{name}: no video, {N_FRAMES + 3} frames to render" for name in
                ("EMO-1-shout+laugh", "FREE", "SEN-09-frown_events_bad", "SEN-10-port_strong_smokey")]
    v2 = "FLAME tracking v2, {} frames (valid for submissions)"
    v1 = f"FLAME tracking v1, {N_FRAMES} frames (outdated, not for submissions)"
    assert text.splitlines() == [
        "mono_flame_avatar/393/calibration: 16 cameras (1 train, 3 hold_out, 12 unused)",
        hold_out[0], f"{seq}/EMO-1-shout+laugh/flame2023_tracking_v2: " + v2.format(N_FRAMES + 3),
        f"{seq}/EXP-1-head: 1 camera x {N_FRAMES} frames of 512x512 (height x width) @ 24.3 fps, alpha, 5.2 MB uncompressed",
        f"{seq}/EXP-1-head/flame2023_tracking_v1: {v1}",
        f"{seq}/EXP-1-head/flame2023_tracking_v2: " + v2.format(N_FRAMES),
        f"{seq}/EXP-2-eyes: 1 camera x {N_FRAMES} frames of 512x512 (height x width) @ 24.3 fps, alpha, 5.2 MB uncompressed",
        f"{seq}/EXP-2-eyes/flame2023_tracking_v1: {v1}",
        f"{seq}/EXP-2-eyes/flame2023_tracking_v2: " + v2.format(N_FRAMES),
        hold_out[1], f"{seq}/FREE/flame2023_tracking_v2: " + v2.format(N_FRAMES + 3),
        hold_out[2], f"{seq}/SEN-09-frown_events_bad/flame2023_tracking_v2: " + v2.format(N_FRAMES + 3),
        hold_out[3], f"{seq}/SEN-10-port_strong_smokey/flame2023_tracking_v2: " + v2.format(N_FRAMES + 3),
        "nvs/388/calibration: 16 cameras (13 train, 3 hold_out)",
        f"nvs/388/sequences/GLASSES: 3 cameras x {N_FRAMES} frames of 1604x1100 (height x width) @ 73 fps, alpha, 105.9 MB uncompressed",
        "nvs/388/sequences/GLASSES/pointclouds: 2 timesteps [0, 3], 10000 points",
        "svfr: 3 images of 512x512 (height x width) from 1 participant",
    ]


@pytest.mark.parametrize("call, message", [
    (lambda c: nersemble_cube.read_frame(c, "nvs/388/sequences/NOPE", "222200042", 0),
     r"nvs/388/sequences has no 'NOPE'; it has \['GLASSES'\]"),
    (lambda c: nersemble_cube.read_frame(c, "nvs/999/sequences/GLASSES", "222200042", 0), r"nvs has no '999'; it has \['388'\]"),
    (lambda c: nersemble_cube.read_frame(c, "nvs/388/sequences/GLASSES", "222200042", 99),
     r"frame 99 is not in nvs/388/sequences/GLASSES: it has frames 0 to 4"),
    (lambda c: nersemble_cube.read_frame(c, "mono_flame_avatar/393/sequences/FREE", "222200037", 0),
     r"has no 'images'; it holds no frames \(a hold-out sequence\)"),
    (lambda c: nersemble_cube.load_pointcloud(nersemble_cube.open(c)["nvs/388/sequences/GLASSES"].to_dataset(), 0),
     r"pass the sequence node"),
    (lambda c: nersemble_cube.flame_tracking(nersemble_cube.open(c)["nvs/388/sequences/GLASSES"]),
     r"has no 'flame2023_tracking_v2' node \(children: \['pointclouds'\]\)"),
    (lambda c: NVSDataManager(c, 999).list_sequences(), r"nvs has no '999'"),
    (lambda c: NVSDataManager(c, 388).load_image("NOPE", "222200042", 0), r"no 'NOPE'; it has \['GLASSES'\]"),
])
def test_selections_that_miss_say_what_exists(cube, call, message):
    with pytest.raises(SelectionError, match=message):
        call(cube)


def test_read_frame_without_xarray(cube, sample_dir):
    src = sample_dir / "nvs/388/sequences/GLASSES"
    frame = nersemble_cube.read_frame(cube, "nvs/388/sequences/GLASSES", "222200044", 4)
    np.testing.assert_array_equal(frame, decode_pyav(src / "images/cam_222200044.mp4")[4])
    alpha = nersemble_cube.read_frame(cube, "nvs/388/sequences/GLASSES", "222200044", 4, variable="alpha")
    np.testing.assert_array_equal(alpha, decode_pyav(src / "alpha_maps/cam_222200044.mp4")[4][..., 0])
    with pytest.raises(SelectionError, match="camera 222200037 has no video"):
        nersemble_cube.read_frame(cube, "nvs/388/sequences/GLASSES", "222200037", 0)


@pytest.mark.parametrize("sequence", ["nvs/388/GLASSES", "nvs/388/sequences/GLASSES", "/nvs/388/GLASSES/"])
def test_every_spelling_of_a_sequence_and_a_serial_as_int_read_the_same_frame(cube, sample_dir, sequence):
    expected = decode_pyav(sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200044.mp4")[2]
    np.testing.assert_array_equal(nersemble_cube.read_frame(cube, sequence, 222200044, 2), expected)
    reader = nersemble_cube.FrameReader(cube, sequence)
    assert reader.sequence == "nvs/388/sequences/GLASSES"
    np.testing.assert_array_equal(reader.read(222200044, 2), expected)
    with pytest.raises(UsageError, match="write BENCHMARK/PARTICIPANT/SEQUENCE"):
        nersemble_cube.FrameReader(cube, "GLASSES")


def test_frame_reading_does_not_import_xarray_and_the_accessor_still_registers():
    code = ("import sys, nersemble_cube; nersemble_cube.FrameReader; nersemble_cube.read_frame\n"
            "print(sorted(m for m in ('xarray', 'pandas', 'dask') if m in sys.modules))\n"
            "import xarray; print(hasattr(xarray.Dataset(), 'nersemble'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[]", "True"]


def test_dir_of_the_package_is_its_public_api():
    names = dir(nersemble_cube)
    assert names == sorted(nersemble_cube.__all__)
    assert not {"sys", "importlib", "annotations"} & set(names) and {"open", "FrameReader", "convert"} <= set(names)
