import json
import os
import shutil

import numpy as np
import pytest
import zarr

import nersemble_cube
from nersemble_cube import StorageSpec, convert
from nersemble_cube.source import layout
from nersemble_cube.errors import SourceError, StoreError
from nersemble_cube.source.sample import write_sample

from conftest import N_CAMERAS, N_FRAMES, decode_pyav, tree_digest

NVS_CAMS = sorted(layout.NVS_TRAIN_SERIALS[:N_CAMERAS])


def test_images_and_alpha_are_bit_equal_to_the_decoded_mp4s(sample_dir, cube):
    tree = nersemble_cube.open(cube)
    for group, serials in [("nvs/388/sequences/GLASSES", NVS_CAMS),
                           ("mono_flame_avatar/393/sequences/EXP-2-eyes", ["222200037"])]:
        ds = tree[group].to_dataset()
        assert ds.camera.values.tolist() == serials
        assert ds.time.values.tolist() == list(range(N_FRAMES))
        assert ds.images.dims == ("camera", "time", "y", "x", "channel") and ds.images.dtype == np.uint8
        assert ds.alpha.dims == ("camera", "time", "y", "x") and ds.alpha.dtype == np.uint8
        for serial in serials:
            src = sample_dir / group
            np.testing.assert_array_equal(ds.images.sel(camera=serial).values,
                                          decode_pyav(src / f"images/cam_{serial}.mp4"))
            np.testing.assert_array_equal(ds.alpha.sel(camera=serial).values,
                                          decode_pyav(src / f"alpha_maps/cam_{serial}.mp4")[..., 0])


def test_calibration_is_exact_and_keeps_the_hold_out_cameras(sample_dir, cube):
    params = json.loads((sample_dir / "nvs/388/calibration/camera_params.json").read_text())
    tree = nersemble_cube.open(cube)
    calib = tree["nvs/388/calibration"].to_dataset()
    assert calib.camera.values.tolist() == sorted(layout.SERIALS)
    for serial in layout.SERIALS:
        np.testing.assert_array_equal(calib.world_2_cam.sel(camera=serial).values, params["world_2_cam"][serial])
        np.testing.assert_array_equal(calib.intrinsics.sel(camera=serial).values, params["intrinsics"][serial])
    assert calib.world_2_cam.dtype == np.float64
    roles = dict(zip(calib.camera.values.tolist(), calib.role.values.tolist()))
    assert sorted(s for s, r in roles.items() if r == "hold_out") == sorted(layout.NVS_HOLD_OUT_SERIALS)
    # the sequence carries the calibration of exactly its video cameras, and no frames for hold-out cameras
    seq = tree["nvs/388/sequences/GLASSES"].to_dataset()
    for serial in NVS_CAMS:
        np.testing.assert_array_equal(seq.world_2_cam.sel(camera=serial).values, params["world_2_cam"][serial])
        np.testing.assert_array_equal(seq.intrinsics.sel(camera=serial).values, params["intrinsics"][serial])
    assert not set(layout.NVS_HOLD_OUT_SERIALS) & set(seq.camera.values.tolist())


def test_attrs_record_schema_sources_and_rate(cube):
    root = zarr.open_group(str(cube), mode="r")
    assert root.attrs["schema"] == "nersemble-cube" and root.attrs["schema_version"] == "1.5"
    assert root.attrs["integrity"] == {"chunk_checksum": "crc32c", "every_chunk_stored": True}
    assert "writing" not in root.attrs  # the conversion finished
    seq = zarr.open_group(str(cube), path="nvs/388/sequences/GLASSES", mode="r").attrs
    assert seq["fps"] == 73.0 and seq["n_frames"] == N_FRAMES and seq["complete"] is True
    assert (seq["height"], seq["width"]) == (1604, 1100)
    assert seq["sources"]["images"]["222200042"] == "nvs/388/sequences/GLASSES/images/cam_222200042.mp4"
    assert seq["storage"] == {"codec": "zstd", "level": 3, "frames_per_chunk": 1, "frames_per_shard": 32, "distance": 0.6,
                              "effort": 5, "crf": None, "preset": "medium",
                              "psnr": 43.5, "fast_decode": False, "row_blocks": 1}
    assert zarr.open_group(str(cube), path="mono_flame_avatar/393/sequences/EXP-1-head", mode="r").attrs["fps"] == 24.3


def test_source_folder_is_never_modified(sample_dir, tmp_path):
    before = tree_digest(sample_dir)
    convert(sample_dir, tmp_path / "c.zarr", participants=[393], sequences=["EXP-1-head"])
    assert tree_digest(sample_dir) == before


def test_rerun_skips_complete_nodes_and_overwrite_redoes_them(sample_dir, tmp_path):
    target = tmp_path / "c.zarr"
    first = convert(sample_dir, target, benchmarks=["mono_flame_avatar"], sequences=["EXP-1-head", "EXP-2-eyes"])
    seq = "mono_flame_avatar/393/sequences"
    assert first.written == ["mono_flame_avatar/393/calibration"] + [
        f"{seq}/{name}{node}" for name in ("EXP-1-head", "EXP-2-eyes")
        for node in ("", "/flame2023_tracking_v1", "/flame2023_tracking_v2")]
    chunk = target / "mono_flame_avatar/393/sequences/EXP-1-head/images/c/0/0/0/0/0"
    mtime = chunk.stat().st_mtime_ns
    again = convert(sample_dir, target, benchmarks=["mono_flame_avatar"], sequences=["EXP-1-head", "EXP-2-eyes"])
    assert again.written == [] and again.skipped == first.written and again.items == 0
    assert chunk.stat().st_mtime_ns == mtime
    redo = convert(sample_dir, target, benchmarks=["mono_flame_avatar"], sequences=["EXP-1-head"], overwrite=True)
    assert redo.written == first.written[:4]
    # adding another benchmark later leaves the first untouched
    more = convert(sample_dir, target, benchmarks=["nvs"])
    assert more.written == ["nvs/388/calibration", "nvs/388/sequences/GLASSES", "nvs/388/sequences/GLASSES/pointclouds"]
    assert sorted(nersemble_cube.open(target).children) == ["mono_flame_avatar", "nvs"]


def test_incomplete_sequence_is_redone(sample_dir, tmp_path):
    target = tmp_path / "c.zarr"
    convert(sample_dir, target, benchmarks=["mono_flame_avatar"], sequences=["EXP-1-head"])
    from nersemble_cube.cube.store import begin_writing

    begin_writing(target)  # as left by a conversion killed while writing the video of camera 0
    group = zarr.open_group(str(target), path="mono_flame_avatar/393/sequences/EXP-1-head", mode="r+",
                            use_consolidated=False)
    group.attrs["complete"] = False
    group["images_complete"][0] = False
    group["images"][0, 2] = 0
    report = convert(sample_dir, target, benchmarks=["mono_flame_avatar"], sequences=["EXP-1-head"])
    # only the unfinished video is redone; the complete children are kept
    assert report.written == ["mono_flame_avatar/393/sequences/EXP-1-head"]
    assert report.items == N_FRAMES
    assert sorted(report.skipped) == ["mono_flame_avatar/393/calibration"] + [
        f"mono_flame_avatar/393/sequences/EXP-1-head/flame2023_tracking_v{v}" for v in (1, 2)]
    ds = nersemble_cube.open(target)["mono_flame_avatar/393/sequences/EXP-1-head"].to_dataset()
    np.testing.assert_array_equal(
        ds.images.isel(camera=0).values,
        decode_pyav(sample_dir / "mono_flame_avatar/393/sequences/EXP-1-head/images/cam_222200037.mp4"))


@pytest.mark.parametrize("storage", [StorageSpec("lz4", 5, 2), StorageSpec("none", 0, N_FRAMES + 1, 0),
                                     StorageSpec("zstd", 3, 1, 0), StorageSpec("zstd", 3, 1, 4, row_blocks=5)])
def test_other_codecs_and_chunkings_store_the_same_frames(sample_dir, tmp_path, storage):
    """Every lossless layout holds the decoded mp4's frames as zarr reads them, and as FrameReader and xarray with
    dask read them (row blocks: 5 chunks of 103 rows a 512-row frame, joined again)."""
    target = tmp_path / "c.zarr"
    convert(sample_dir, target, benchmarks=["mono_flame_avatar"], sequences=["EXP-2-eyes"], storage=storage)
    seq = "mono_flame_avatar/393/sequences/EXP-2-eyes"
    arr = zarr.open_array(str(target), path=f"{seq}/images", mode="r")
    assert arr.chunks == (1, min(storage.frames_per_chunk, N_FRAMES), -(-512 // storage.row_blocks), 512, 3)
    expected_codec = {"lz4": "blosc", "none": None, "zstd": "zstd"}[storage.codec]
    assert [c.to_dict()["name"] for c in arr.compressors] == ([expected_codec] if expected_codec else []) + ["crc32c"]
    want = decode_pyav(sample_dir / f"{seq}/images/cam_222200037.mp4")
    np.testing.assert_array_equal(arr[0], want)
    np.testing.assert_array_equal(nersemble_cube.FrameReader(target, seq).read("222200037", 2), want[2])
    np.testing.assert_array_equal(nersemble_cube.open(target)[seq].images[0].values, want)
    assert nersemble_cube.open(target)[seq].attrs["storage"]["row_blocks"] == storage.row_blocks


# ---- bad input: a clear error, and nothing written ----------------------------------------------------------------

@pytest.fixture
def mono_copy(sample_dir, tmp_path):
    """A private, writable copy of the mono part of the sample (tests damage it)."""
    root = tmp_path / "bench"
    shutil.copytree(sample_dir / "mono_flame_avatar", root / "mono_flame_avatar")
    return root


SEQ = "mono_flame_avatar/393/sequences/EXP-1-head"


def _assert_nothing_written(target):
    assert not target.exists()


def test_corrupt_mp4(mono_copy, tmp_path):
    (mono_copy / SEQ / "images/cam_222200037.mp4").write_bytes(b"\x00" * 5000)
    with pytest.raises(SourceError, match=r"EXP-1-head/images/cam_222200037.mp4: not a readable video"):
        convert(mono_copy, tmp_path / "c.zarr")
    _assert_nothing_written(tmp_path / "c.zarr")


def test_truncated_mp4_is_refused_before_writing(mono_copy, tmp_path):
    video = mono_copy / SEQ / "alpha_maps/cam_222200037.mp4"
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 3])  # the index (moov) at the end is cut off: the probe fails
    target = tmp_path / "c.zarr"
    with pytest.raises(SourceError, match="cam_222200037.mp4: not a readable video"):
        convert(mono_copy, target)
    _assert_nothing_written(target)


def test_a_file_found_bad_while_writing_removes_its_half_written_node(sample_dir, tmp_path):
    """An ascii point cloud whose header is fine but whose rows are cut short passes the plan (which reads
    headers only) and fails in its task: its node is removed (it cannot be resumed), the nodes written before
    it stay complete."""
    source = tmp_path / "bench"
    shutil.copytree(sample_dir / "nvs", source / "nvs")
    cloud = source / "nvs/388/sequences/GLASSES/pointclouds/frame_00003.pcd"
    header, _, _ = cloud.read_bytes().partition(b"DATA binary\n")
    rows = "\n".join(" ".join(["1"] * 7) for _ in range(100))  # x y z, normal, packed rgb: 100 of 5000 points
    cloud.write_bytes(header + b"DATA ascii\n" + rows.encode())
    target = tmp_path / "c.zarr"
    group = "nvs/388/sequences/GLASSES/pointclouds"
    with pytest.raises(SourceError, match=f"frame_00003.pcd: .*the half-written {group} was removed"):
        convert(source, target, workers=1)
    assert not (target / group).exists()
    assert zarr.open_group(target, path="nvs/388/calibration", mode="r").attrs["complete"] is True


def test_cameras_with_different_frame_counts(mono_copy, tmp_path):
    short = write_sample(tmp_path / "short", benchmarks=("mono_flame_avatar",), mono_sequences=("EXP-1-head",),
                         n_frames=N_FRAMES - 2)
    shutil.copy(short / SEQ / "alpha_maps/cam_222200037.mp4", mono_copy / SEQ / "alpha_maps/cam_222200037.mp4")
    with pytest.raises(SourceError, match=rf"cameras disagree.*{N_FRAMES - 2} frames"):
        convert(mono_copy, tmp_path / "c.zarr")
    _assert_nothing_written(tmp_path / "c.zarr")


def test_cameras_with_different_sizes(sample_dir, mono_copy, tmp_path):
    # an nvs-sized video among 512x512 mono videos
    shutil.copy(sample_dir / "nvs/388/sequences/GLASSES/alpha_maps/cam_222200042.mp4",
                mono_copy / SEQ / "alpha_maps/cam_222200037.mp4")
    with pytest.raises(SourceError, match="cameras disagree.*of 1100x1604"):
        convert(mono_copy, tmp_path / "c.zarr")
    _assert_nothing_written(tmp_path / "c.zarr")


@pytest.mark.parametrize("content", ["{}", "not json", json.dumps({"world_2_cam": {}, "intrinsics": {}})])
def test_malformed_calibration(mono_copy, tmp_path, content):
    (mono_copy / "mono_flame_avatar/393/calibration/camera_params.json").write_text(content)
    with pytest.raises(SourceError, match="camera_params.json"):
        convert(mono_copy, tmp_path / "c.zarr")
    _assert_nothing_written(tmp_path / "c.zarr")


def test_missing_calibration(mono_copy, tmp_path):
    os.remove(mono_copy / "mono_flame_avatar/393/calibration/camera_params.json")
    with pytest.raises(SourceError, match="camera_params.json is missing"):
        convert(mono_copy, tmp_path / "c.zarr")


def test_calibration_without_a_video_camera(mono_copy, tmp_path):
    path = mono_copy / "mono_flame_avatar/393/calibration/camera_params.json"
    params = json.loads(path.read_text())
    for key in params:
        del params[key]["222200037"]
    path.write_text(json.dumps(params))
    with pytest.raises(SourceError, match=r"no calibration for cameras \['222200037'\]"):
        convert(mono_copy, tmp_path / "c.zarr")


@pytest.mark.parametrize("make", [
    lambda p: p.write_text("my thesis"),
    lambda p: (p.mkdir(), (p / "notes.txt").write_text("keep me")),
    lambda p: (p.mkdir(), (p / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group",
                                                                    "attributes": {}}))),
])
def test_target_that_exists_and_is_no_cube_is_refused_and_kept(mono_copy, tmp_path, make):
    target = tmp_path / "target"
    make(target)
    before = tree_digest(target) if target.is_dir() else target.read_bytes()
    with pytest.raises(StoreError):
        convert(mono_copy, target)
    assert (tree_digest(target) if target.is_dir() else target.read_bytes()) == before


def test_newer_schema_major_is_refused(mono_copy, tmp_path):
    target = tmp_path / "c.zarr"
    convert(mono_copy, target, sequences=["EXP-1-head"])
    zarr.open_group(str(target), mode="r+", use_consolidated=False).attrs["schema_version"] = "2.0"
    with pytest.raises(StoreError, match="schema version 2.0"):
        convert(mono_copy, target)


def test_target_inside_the_source_folder_is_refused(mono_copy):
    with pytest.raises(StoreError, match="inside the benchmark folder"):
        convert(mono_copy, mono_copy / "cube.zarr")
    assert not (mono_copy / "cube.zarr").exists()
