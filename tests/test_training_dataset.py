"""FrameDataset and its samplers (nersemble_cube.training.dataset): every sample against FrameReader, the cube's
calibration, numpy's own block mean, the tracking npz as numpy reads it, the accessor's colour correction."""

import pickle

import numpy as np
import pytest

import nersemble_cube
from nersemble_cube.errors import SelectionError, UsageError
from nersemble_cube.training.dataset import FLAME_FIELDS, FrameDataset, MultiViewBatches, RandomFrames

from conftest import DATASET_FRAMES, N_CAMERAS, N_FRAMES

NVS = "nvs/388/sequences/GLASSES"
MONO = "mono_flame_avatar/393/sequences/EXP-1-head"


def test_every_sample_is_frame_readers_frame_with_the_cubes_calibration(cube):
    data = FrameDataset(cube)
    tree = nersemble_cube.open(cube, dask=False)
    sequences = [s.path for s in data.sequences]
    assert sequences == ["mono_flame_avatar/393/sequences/EXP-1-head", "mono_flame_avatar/393/sequences/EXP-2-eyes",
                         NVS]  # every sequence with frames, not svfr's images nor the hold-out sequences
    assert len(data) == 2 * 1 * N_FRAMES + N_CAMERAS * N_FRAMES
    seen = set()
    for i in range(len(data)):
        sample = data[i]
        ds = tree[sample["sequence"]].to_dataset()
        serial, t = sample["serial"], sample["time"]
        seen.add((sample["sequence"], serial, t))
        reader = nersemble_cube.FrameReader(cube, sample["sequence"])
        np.testing.assert_array_equal(sample["image"], reader.read(serial, t))
        alpha = nersemble_cube.FrameReader(cube, sample["sequence"], "alpha").read(serial, t)
        np.testing.assert_array_equal(sample["alpha"], alpha[..., None])
        assert sample["image"].dtype == np.uint8 and sample["image"].shape == ds.images.shape[2:]
        assert str(ds.camera.values[sample["camera"]]) == serial
        np.testing.assert_array_equal(sample["intrinsics"], ds.intrinsics.sel(camera=serial).values.astype(np.float32))
        np.testing.assert_array_equal(sample["world_2_cam"], ds.world_2_cam.sel(camera=serial).values.astype(np.float32))
        assert data.index(sample["sequence"], serial, t) == i
    assert len(seen) == len(data)


def test_samples_of_one_time_are_consecutive_and_multi_view_batches_hold_every_camera_once(cube):
    data = FrameDataset(cube, [NVS, "mono_flame_avatar/393/EXP-1-head"])
    batches = list(MultiViewBatches(data, seed=3))
    assert len(batches) == len(MultiViewBatches(data)) == 2 * N_FRAMES
    assert sorted(i for b in batches for i in b) == list(range(len(data)))
    for batch in batches:
        keys = [(data[i]["sequence"], data[i]["time"]) for i in batch]
        assert len(set(keys)) == 1
        assert len(batch) == (N_CAMERAS if keys[0][0] == NVS else 1)
    again = MultiViewBatches(data, seed=3)
    assert list(again) == batches  # seeded
    again.set_epoch(1)
    assert list(again) != batches and sorted(map(tuple, again)) == sorted(map(tuple, batches))
    assert [b for b in MultiViewBatches(data, shuffle=False)][0] == list(range(N_CAMERAS))


def test_random_frames_cover_every_sample_once_per_pass_and_are_seeded(cube):
    data = FrameDataset(cube, [NVS])
    one = list(RandomFrames(data, seed=1))
    assert sorted(one) == list(range(len(data))) and one == list(RandomFrames(data, seed=1))
    longer = list(RandomFrames(data, num_samples=len(data) + 4, seed=1))
    assert len(longer) == len(data) + 4 and sorted(longer[:len(data)]) == list(range(len(data)))
    drawn = list(RandomFrames(data, num_samples=200, replacement=True))
    assert len(drawn) == 200 and set(drawn) == set(range(len(data)))


@pytest.mark.parametrize("factor", [2, 3])
def test_a_downscaled_sample_is_numpys_block_mean_with_intrinsics_that_project_alike(cube, factor):
    full, small = FrameDataset(cube, [NVS]), FrameDataset(cube, [NVS], scale=factor, dtype="float32",
                                                          channels="first")
    for i in (0, len(full) - 1):
        image, want = small[i]["image"], full[i]["image"]
        h, w = want.shape[0] // factor * factor, want.shape[1] // factor * factor
        mean = want[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).astype(np.float64).mean((1, 3))
        assert image.shape == (3, h // factor, w // factor) and image.dtype == np.float32
        np.testing.assert_array_equal(image, (np.rint(mean) / 255).astype(np.float32).transpose(2, 0, 1))
        assert small[i]["alpha"].shape == (1, h // factor, w // factor)
        # a point seen at pixel position (u, v) of the full frame is at (u, v) / factor in the small one
        point = np.array([0.02, -0.03, 0.0, 1.0])
        cam = full[i]["world_2_cam"].astype(np.float64) @ point
        project = lambda k: (k.astype(np.float64) @ cam[:3])[:2] / cam[2]  # noqa: E731
        np.testing.assert_allclose(project(small[i]["intrinsics"]), project(full[i]["intrinsics"]) / factor, rtol=1e-6)


def test_flame_parameters_are_the_tracking_files_at_the_samples_time(cube, sample_dir):
    data = FrameDataset(cube, [MONO], flame=True)
    with np.load(sample_dir / MONO.replace("sequences/", "sequences/", 1) / "tracking" / "flame2023_tracking_v2.npz") as npz:
        files = {k: npz[k] for k in npz.files}
    for i in range(len(data)):
        sample = data[i]
        row = list(files["frames"]).index(sample["time"])
        for name in FLAME_FIELDS:
            np.testing.assert_array_equal(sample["flame"][name], files[name][row].astype(np.float32))
        np.testing.assert_array_equal(sample["flame"]["shape"], files["shape"].reshape(-1).astype(np.float32))
        np.testing.assert_array_equal(sample["flame"]["scale"], files["scale"].reshape(1).astype(np.float32))


def test_colour_corrected_samples_equal_the_accessors_correction(dataset_conversion):
    cube, _ = dataset_conversion
    data = FrameDataset(cube, ["dataset/018/EXP-1-head"], color_correction=True)
    assert len(data) == 3 * (DATASET_FRAMES - 1)  # the short camera cuts the sequence
    corrected = nersemble_cube.open(cube)["dataset/018/sequences/EXP-1-head"].to_dataset().nersemble.color_correct()
    plain = FrameDataset(cube, ["dataset/018/EXP-1-head"])
    assert "alpha" not in data[0]  # the full dataset has no mattes
    for i in (0, 4, len(data) - 1):
        sample = data[i]
        want = corrected.images.sel(camera=sample["serial"], time=sample["time"]).values
        np.testing.assert_array_equal(sample["image"], want)
        assert not np.array_equal(sample["image"], plain[i]["image"])


def test_a_dataset_pickles_without_its_readers_as_spawned_workers_get_it(cube):
    data = FrameDataset(cube, [NVS], cameras=["222200044", 222200042])
    first = data[0]
    assert [s.serials for s in data.sequences] == [("222200044", "222200042")]
    assert data._readers
    again = pickle.loads(pickle.dumps(data))
    assert again._readers == {}
    np.testing.assert_array_equal(again[0]["image"], first["image"])
    assert again[0]["serial"] == "222200044"


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"sequences": ["nvs/388/NOPE"]}, SelectionError, "has no 'NOPE'"),
    ({"sequences": ["mono_flame_avatar/393/FREE"]}, SelectionError, "holds no frames"),
    ({"sequences": [NVS], "flame": True}, SelectionError, "no FLAME tracking"),
    ({"sequences": [NVS], "color_correction": True}, SelectionError, "no color_correction"),
    ({"sequences": [NVS], "cameras": ["1"]}, SelectionError, "none of the cameras"),
    ({"dtype": "float16"}, UsageError, "dtype must be"),
    ({"channels": "middle"}, UsageError, "channels must be"),
    ({"scale": 0}, UsageError, "scale must be"),
])
def test_mistakes_are_one_line_errors_naming_what_exists(cube, kwargs, error, words):
    with pytest.raises(error, match=words) as e:
        FrameDataset(cube, **kwargs)
    assert "\n" not in str(e.value)


def test_an_index_outside_the_dataset_is_an_index_error(cube):
    data = FrameDataset(cube, [NVS])
    with pytest.raises(IndexError):
        data[len(data)]
    assert data[-1]["time"] == N_FRAMES - 1


def test_threaded_batches_are_the_samples_collated_in_batch_order(cube):
    data = FrameDataset(cube, [NVS, MONO], flame=False)
    order = list(MultiViewBatches(data, seed=5))
    got = list(data.batches(order, threads=3, prefetch=1))
    assert len(got) == len(order)
    for indices, batch in zip(order, got):
        samples = [data[i] for i in indices]
        np.testing.assert_array_equal(batch["image"], np.stack([s["image"] for s in samples]))
        np.testing.assert_array_equal(batch["intrinsics"], np.stack([s["intrinsics"] for s in samples]))
        assert batch["serial"] == [s["serial"] for s in samples]
        assert batch["time"].dtype == np.int64 and batch["time"].tolist() == [s["time"] for s in samples]
    with pytest.raises(IndexError):
        list(data.batches([[0, 1], [len(data)]], threads=2))
    with pytest.raises(UsageError, match="frames of different sizes"):  # nvs's 1604 x 1100 and mono's 512 x 512
        list(data.batches([[0, len(data) - 1]], threads=1))


def test_threaded_batches_collate_flame_parameters_key_by_key(cube):
    data = FrameDataset(cube, [MONO], flame=True)
    batch = next(data.batches([[0, 1, 2]], threads=2))
    np.testing.assert_array_equal(batch["flame"]["expression"], np.stack([data[i]["flame"]["expression"]
                                                                         for i in range(3)]))
    assert batch["flame"]["shape"].shape == (3, 300)


def test_the_gpu_reader_without_its_extra_is_a_usage_error_naming_it(cube, monkeypatch):
    """GpuFrames (nersemble_cube.training.gpu) and FrameDataset.gpu_batches need torch and nvCOMP's Python API, the
    ``gpu`` extra: without them each says so in one line (a UsageError) instead of an ImportError traceback."""
    import sys

    from nersemble_cube.training.gpu import GpuFrames

    monkeypatch.setitem(sys.modules, "nvidia.nvcomp", None)  # as on a machine without the extra
    with pytest.raises(UsageError, match=r"pip install 'nersemble-cube\[gpu\]'"):
        GpuFrames(cube, "nvs/388/GLASSES")
    data = FrameDataset(cube, [NVS])
    with pytest.raises(UsageError, match=r"pip install 'nersemble-cube\[gpu\]'"):
        data.gpu_batches(MultiViewBatches(data))


@pytest.mark.parametrize("layout", ["frame per chunk", "row blocks, one range", "row blocks, zarr's own shards",
                                    "row blocks, one range, over HTTP"])
def test_the_gpu_readers_host_half_reads_each_frames_stored_chunks_into_one_buffer(cube, tmp_path, layout):
    """GpuFrames' host half (``Stager``, no torch) reads the stored chunks of a batch of frames (repeats and all)
    into one buffer, from a local cube or over HTTP (ranged reads): each chunk ends in the crc32c zarr's own
    checksum library computes, and decompressed by numcodecs' zstd they are the frame's rows, FrameReader's
    frame; read again (locations kept), the same."""
    import contextlib
    import shutil

    import zarr

    from nersemble_cube import StorageSpec
    from nersemble_cube.cube.shards import ShardWriter
    from nersemble_cube.testing import serve_folder

    target = tmp_path / "cube.zarr"
    shutil.copytree(cube, target)
    blocks = 1 if layout == "frame per chunk" else 3
    if blocks > 1:
        old = zarr.open_array(str(cube), path=f"{NVS}/images", mode="r")
        enc = StorageSpec(row_blocks=blocks).frame_encoding(old.shape[1], old.shape[2:])
        shutil.rmtree(target / NVS / "images")
        new = zarr.create_array(str(target), name=f"{NVS}/images", shape=old.shape, dtype=old.dtype,
                                chunks=enc["chunks"], shards=enc["shards"], compressors=enc["compressors"],
                                fill_value=0, attributes=old.attrs.asdict(),
                                dimension_names=old.metadata.dimension_names)
        if layout.startswith("row blocks, one range"):
            ShardWriter(new).write((0,) * old.ndim, old[:])
        else:
            new[:] = old[:]  # zarr's Morton order: a frame's blocks apart, read one by one
    served = serve_folder(tmp_path) if layout.endswith("HTTP") else contextlib.nullcontext()
    with served as http:
        reader = nersemble_cube.FrameReader(f"{http.url}/cube.zarr" if http else target, NVS)
        _check_staged_frames(reader, blocks)
        assert (reader._chunks.root is None) == bool(http) and (not http or http.requests)


def _check_staged_frames(reader, blocks: int) -> None:
    import google_crc32c
    import numcodecs

    from nersemble_cube.training.gpu import Stager

    assert reader._chunks.row_blocks == blocks
    rng = np.random.default_rng(2)
    keys = [(reader.cameras[rng.integers(N_CAMERAS)], int(rng.integers(N_FRAMES))) for _ in range(7)]
    keys.append(keys[0])
    stager = Stager(reader, threads=3)
    for _ in range(2):
        staged = stager.stage(keys, lambda n: np.full(n + 5, 7, np.uint8))
        assert staged.total == sum(staged.chunks[:, 1]) and len(staged.chunks) == blocks * len(keys)
        assert staged.chunks[0, 0] == 0 and (staged.chunks[1:, 0] == staged.chunks[:-1].sum(axis=1)).all()
        for f, key in enumerate(keys):
            rows = []
            for start, length in staged.chunks[staged.frame_of == f]:
                chunk = staged.host[start:start + length].tobytes()
                assert google_crc32c.value(chunk[:-4]) == int.from_bytes(chunk[-4:], "little")
                rows.append(np.frombuffer(numcodecs.Zstd().decode(chunk[:-4]), np.uint8))
            frame = reader.read(*key)
            np.testing.assert_array_equal(np.concatenate(rows)[:frame.size].reshape(frame.shape), frame)


def test_the_gpu_readers_stage_the_next_batch_while_finishing_this_one():
    """GpuFrames.batches and FrameDataset.gpu_batches run through ``_ahead``: every item staged (on one other
    thread) and finished in order, the next one's staging started before this one is finished."""
    import threading

    from nersemble_cube.training.gpu import _ahead

    events, started = [], threading.Event()

    def stage(item):
        events.append(("stage", item, threading.current_thread() is threading.main_thread()))
        if item == 2:
            started.set()
        return item, item * 10

    def finish(item, tens):
        if item == 1:
            assert started.wait(10)  # item 2 is being staged while item 1 is finished
        events.append(("finish", item))
        return item + tens

    assert list(_ahead(iter([1, 2, 3]), stage, finish)) == [11, 22, 33] and list(_ahead([], stage, finish)) == []
    assert [e for e in events if e[0] == "finish"] == [("finish", 1), ("finish", 2), ("finish", 3)]
    assert [e[1:] for e in events if e[0] == "stage"] == [(1, False), (2, False), (3, False)]
