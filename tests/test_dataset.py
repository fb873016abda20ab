"""The full NeRSemble dataset (``nersemble-data download``'s layout): discovery, conversion, colour correction,
the toolkit's ``NeRSembleParticipantDataManager`` and the CLI, checked against the toolkit itself
(``nersemble_data`` 0.0.6, colour-science), PyAV decodes and the JPEG decodes of Pillow and OpenCV."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess

import cv2
import numpy as np
import xarray as xr
import zarr
import pytest
from conftest import DATASET_FRAMES, DATASET_SEQUENCES, decode_pyav, run_cli, store_contents, tree_digest
from PIL import Image
from toolkit import dataset_color_correction, dataset_data

import nersemble_cube
from nersemble_cube.compat import NeRSembleParticipantDataManager
from nersemble_cube.errors import SourceError, UsageError
from nersemble_cube.source import dataset
from nersemble_cube.source.converters import color
from nersemble_cube.source.converters.color import TERMS, correct_color, read_color_calibration
from nersemble_cube.source.converters.video import ffmpeg_exe, fps_filter_frames

SEQUENCES = DATASET_SEQUENCES
N_FRAMES = DATASET_FRAMES


@pytest.fixture(scope="module")
def folder(dataset_dir):
    return dataset_dir


@pytest.fixture(scope="module")
def cube(dataset_conversion):
    return dataset_conversion


def test_discover_follows_the_toolkit_layout(folder):
    found = dataset.discover(folder)
    assert [p.participant_id for p in found.participants] == [18, 30]
    p18, p30 = found.participants
    assert p18.calibration == folder / "018/calibration/camera_params.json"
    assert p18.color_calibration == folder / "018/calibration/color_calibration.json"
    assert [s.sequence for s in p18.sequences] == sorted(SEQUENCES)
    assert list(p18.sequences[0].images) == sorted(dataset.SERIALS[:3])
    assert p18.sequences[0].images["222200042"] == folder / "018/sequences/EXP-1-head/images/cam_222200042.mp4"
    assert p30.sequences == [] and sorted(p30.backgrounds) == sorted(dataset.SERIALS[:3])
    assert sorted(found.metadata) == ["metadata_participants.csv", "metadata_sequences.csv"]
    # the benchmark toolkit's spelling of SEN-07 selects the same sequence; cameras filter videos and stills
    picked = dataset.discover(folder, [18], ["SEN-07-fond_note_fried"], ["222200044"])
    (only,) = picked.participants
    assert [s.sequence for s in only.sequences] == ["SEN-07-fond_note_friend"]
    assert list(only.sequences[0].images) == ["222200044"] and list(only.backgrounds) == ["222200044"]
    with pytest.raises(SourceError, match="unknown cameras"):
        dataset.discover(folder, cameras=["123"])
    with pytest.raises(SourceError, match="no videos or backgrounds found for participants"):
        dataset.discover(folder, participants=[99])


def test_constants_match_the_toolkit():
    constants = __import__("toolkit").no_deps(__import__("wheels").DATASET_TOOLKIT, "nersemble_data.constants")
    assert list(dataset.SERIALS) == constants.SERIALS
    assert ["BACKGROUND", *dataset.SEQUENCES] == constants.SEQUENCE_NAMES
    assets = {k: v for group in constants.ASSETS.values() for k, v in group.items()}
    assert assets["calibration"] == dataset.CALIBRATION.replace("{p_id:03d}", "{p_id:03d}")
    assert assets["color_calibration"] == dataset.COLOR_CALIBRATION
    assert assets["images"].format(p_id=18, seq_name="FREE", serial="1") == dataset.IMAGES.format(
        p_id=18, seq_name="FREE", serial="1")
    assert assets["backgrounds"].format(p_id=18, serial="1") == dataset.BACKGROUND.format(p_id=18, serial="1")
    assert (assets["metadata_participants"], assets["metadata_sequences"]) == (
        dataset.METADATA_PARTICIPANTS, dataset.METADATA_SEQUENCES)


@pytest.mark.parametrize("terms", sorted(TERMS))
def test_color_correction_is_the_toolkits_to_the_bit(terms):
    toolkit = dataset_color_correction()
    rng = np.random.default_rng(terms)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    image[0, :4] = [[0, 0, 0], [255, 255, 255], [10, 10, 10], [11, 11, 11]]  # both sides of the sRGB threshold
    ccm = rng.normal(0, 0.08, (3, terms))
    ccm[:, :3] += np.eye(3) * 1.1
    expected = toolkit.correct_color(image, ccm)
    assert expected.dtype == np.uint8 and 0 < (expected == 255).sum()  # the clipping is exercised
    np.testing.assert_array_equal(correct_color(image, ccm), expected)
    as_float = image / 255.
    got = correct_color(as_float, ccm)
    assert got.dtype == np.float64 and (got > 1).any()  # unclipped, as the toolkit
    np.testing.assert_array_equal(got, toolkit.correct_color(as_float, ccm))


def test_full_size_frames_go_through_the_colour_table_to_the_same_bits():
    toolkit = dataset_color_correction()
    rng = np.random.default_rng(7)
    ccm = rng.normal(0, 0.08, (3, 10))
    ccm[:, :3] += np.eye(3) * 1.1
    frame = rng.integers(0, 256, (1604, 1400, 3), dtype=np.uint8)  # 2.2 MP: a full-dataset frame takes the table
    assert frame.shape[0] * frame.shape[1] >= color.TABLE_PIXELS
    np.testing.assert_array_equal(correct_color(frame, ccm), toolkit.correct_color(frame, ccm))
    assert color._table.cache_info().currsize >= 1


def test_convert_writes_frames_calibration_backgrounds_and_metadata(folder, cube):
    target, report = cube
    before = tree_digest(folder)
    assert report.written == ["dataset/018/calibration", "dataset/018/background", "dataset/018/sequences/EXP-1-head",
                              "dataset/018/sequences/SEN-07-fond_note_friend", "dataset/030/calibration",
                              "dataset/030/background"]
    short = dataset.SERIALS[2]
    assert any(f"kept the {N_FRAMES - 1} frames every camera has" in n and "222200042 (7)" in n for n in report.notes)
    tree = nersemble_cube.open(target)
    seq = tree["dataset/018/sequences/EXP-1-head"].to_dataset()
    assert seq.images.dims == ("camera", "time", "y", "x", "channel") and seq.images.dtype == np.uint8
    assert seq.time.values.tolist() == list(range(N_FRAMES - 1))
    for serial in seq.camera.values:
        decoded = decode_pyav(folder / f"018/sequences/EXP-1-head/images/cam_{serial}.mp4")
        assert len(decoded) == (N_FRAMES - 1 if serial == short else N_FRAMES)
        np.testing.assert_array_equal(seq.images.sel(camera=serial).values, decoded[:N_FRAMES - 1])
    params = json.loads((folder / "018/calibration/camera_params.json").read_text())
    calib = tree["dataset/018/calibration"].to_dataset()
    assert calib.sizes["camera"] == 16 and set(calib.role.values) == {"train"}
    for serial in calib.camera.values:
        np.testing.assert_array_equal(calib.intrinsics.sel(camera=serial).values, params["intrinsics"])
        np.testing.assert_array_equal(calib.world_2_cam.sel(camera=serial).values, params["world_2_cam"][serial])
    assert calib.intrinsics.attrs["shared_intrinsics"] and (calib.attrs["height"], calib.attrs["width"]) == (402, 276)
    colors = json.loads((folder / "018/calibration/color_calibration.json").read_text())
    for serial in calib.camera.values:
        np.testing.assert_array_equal(calib.color_correction.sel(camera=serial).values, colors[serial])
    assert "Cheung" in calib.color_correction.attrs["method"] and calib.color_correction.attrs["terms"] == 10
    np.testing.assert_array_equal(seq.color_correction.values, calib.color_correction.sel(camera=seq.camera).values)
    background = tree["dataset/030/background"].to_dataset().background
    for serial in background.camera.values:
        jpeg = (folder / f"030/sequences/BACKGROUND/image_{serial}.jpg").read_bytes()
        np.testing.assert_array_equal(background.sel(camera=serial).values, np.array(Image.open(io.BytesIO(jpeg))))
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)  # OpenCV, as the toolkit reads them
        np.testing.assert_array_equal(background.sel(camera=serial).values, bgr[..., ::-1])
    table = tree["dataset"].attrs["metadata"]["metadata_sequences.csv"]
    assert table["columns"][:3] == ["ID", "wears_glasses", "BACKGROUND"] and [r[0] for r in table["rows"]] == ["18", "30"]
    assert tree_digest(folder) == before  # the source is only read


def test_every_nth_keeps_source_indices_and_frames(folder, tmp_path):
    target = tmp_path / "every3.zarr"
    nersemble_cube.convert(folder, target, participants=[18], sequences=["EXP-1-head"],
                           cameras=["222200044"], every_nth=3)
    seq = nersemble_cube.open(target)["dataset/018/sequences/EXP-1-head"].to_dataset()
    assert seq.time.values.tolist() == [0, 3, 6] and seq.camera.values.tolist() == ["222200044"]  # a full-length camera
    assert seq.attrs["fps"] == pytest.approx(73 / 3) and seq.attrs["every_nth"] == 3
    decoded = decode_pyav(folder / "018/sequences/EXP-1-head/images/cam_222200044.mp4")
    np.testing.assert_array_equal(seq.images.values[0], decoded[[0, 3, 6]])
    reader = nersemble_cube.FrameReader(target, "dataset/018/sequences/EXP-1-head")
    np.testing.assert_array_equal(reader.read("222200044", 3), decoded[3])
    with pytest.raises(nersemble_cube.errors.SelectionError, match="frame 4 is not in"):
        reader.read("222200044", 4)


@pytest.mark.parametrize("dask", [True, False])
def test_color_correct_accessor_equals_the_toolkit(cube, dask):
    toolkit = dataset_color_correction()
    ds = nersemble_cube.open(cube[0], dask=dask)["dataset/018/sequences/SEN-07-fond_note_friend"].to_dataset()
    corrected, as_float = ds.nersemble.color_correct(), ds.nersemble.color_correct("float64")
    assert corrected.images.chunks is not None  # lazy either way
    for serial, t in (("222200044", 0), ("222200046", 5)):
        raw = ds.images.sel(camera=serial, time=t).values
        ccm = ds.color_correction.sel(camera=serial).values
        np.testing.assert_array_equal(corrected.images.sel(camera=serial, time=t).values, toolkit.correct_color(raw, ccm))
        np.testing.assert_array_equal(as_float.images.sel(camera=serial, time=t).values,
                                      toolkit.correct_color(raw / 255., ccm))
    assert not np.array_equal(corrected.images.values, ds.images.values)


@pytest.mark.parametrize("step", ["to_float", "downscale", "crop", "composite"])
def test_color_correct_in_every_chain_order(cube, step):
    """Correcting first, then any step, is the toolkit's corrected frame with that step applied; the steps that
    change pixel values before it (float, area average, compositing) are refused in one line, never cast or
    corrected wrongly; crop, a per-pixel selection, commutes."""
    toolkit = dataset_color_correction()
    ds = nersemble_cube.open(cube[0])["dataset/018/sequences/SEN-07-fond_note_friend"].to_dataset()
    ds = ds.assign(alpha=xr.full_like(ds.images.isel(channel=0), 200))  # a matte, for composite
    apply = {"to_float": lambda d: d.nersemble.to_float(), "downscale": lambda d: d.nersemble.downscale(2),
             "crop": lambda d: d.nersemble.crop((10, 20, 60, 90)), "composite": lambda d: d.nersemble.composite("white")}[step]
    raw, ccm = ds.images.sel(camera="222200044", time=0), ds.color_correction.sel(camera="222200044").values
    corrected = ds.images.sel(camera=["222200044"], time=[0]).copy(data=toolkit.correct_color(raw.values, ccm)[None, None])
    expected = apply(ds.sel(camera=["222200044"], time=[0]).assign(images=corrected)).images.values
    first = apply(ds.nersemble.color_correct()).images.sel(camera=["222200044"], time=[0]).values
    np.testing.assert_array_equal(first, expected)
    if step == "crop":
        np.testing.assert_array_equal(apply(ds).nersemble.color_correct().images.sel(camera=["222200044"], time=[0]).values,
                                      expected)
    else:
        with pytest.raises(UsageError, match=f"needs the frames as decoded .*; call it before {step}"):
            apply(ds).nersemble.color_correct()


def test_participant_data_manager_side_by_side_with_the_toolkit(folder, cube):
    theirs = dataset_data().NeRSembleParticipantDataManager(str(folder), 18)
    ours = NeRSembleParticipantDataManager(cube[0], 18)
    seq = "EXP-1-head"
    assert ours.list_sequences() == sorted(s for s in theirs.list_sequences() if s != "BACKGROUND")
    assert ours.list_cameras(seq) == sorted(theirs.list_cameras(seq))
    assert ours.list_timesteps(seq) == list(range(N_FRAMES - 1))  # every camera's frames (the toolkit: camera 1's)
    calib_t, calib_o = theirs.load_camera_calibration(), ours.load_camera_calibration()
    np.testing.assert_array_equal(calib_o.intrinsics, calib_t.intrinsics)
    assert sorted(calib_o.world_2_cam) == sorted(calib_t.world_2_cam)
    for serial in calib_t.world_2_cam:
        np.testing.assert_array_equal(calib_o.world_2_cam[serial], calib_t.world_2_cam[serial])
    colors_t, colors_o = theirs.load_color_calibration(), ours.load_color_calibration()
    assert sorted(colors_o) == sorted(colors_t)
    for serial in colors_t:
        np.testing.assert_array_equal(colors_o[serial], colors_t[serial])
    for kwargs in ({}, {"as_uint8": True}, {"apply_color_correction": True},
                   {"as_uint8": True, "apply_color_correction": True},
                   {"as_uint8": True, "apply_color_correction": True, "downscale_factor": 2}):
        for serial, t in (("222200042", 0), ("222200046", 5)):
            expected = theirs.load_image(seq, serial, t, **kwargs)
            got = ours.load_image(seq, serial, t, **kwargs)
            assert got.dtype == expected.dtype and got.shape == expected.shape, kwargs
            np.testing.assert_array_equal(got, expected, err_msg=str(kwargs))


def test_cli_sample_convert_info_and_export(tmp_path):
    src, store = tmp_path / "nersemble", tmp_path / "cube.zarr"
    made = run_cli("sample", "--dataset", src, "--cameras", "2", "--n-frames", "4", "-p", "104")
    assert made.returncode == 0, made.stderr
    assert (src / "104/sequences/BACKGROUND/image_222200044.jpg").is_file()
    with pytest.raises(UsageError, match="has no benchmarks"):
        nersemble_cube.convert(src, store, benchmarks=["nvs"])
    dry = run_cli("convert", src, store, "--every-nth", "2", "-c", "222200042", "--dry-run", "--json")
    assert dry.returncode == 0 and not store.exists(), dry.stderr
    guess = json.loads(dry.stdout)
    assert (guess["frames_decoded"], guess["frames_written"], guess["background_stills"]) == (8, 4, 1)
    assert guess["bytes"]["jpegxl"] < guess["bytes"]["zstd"] < guess["bytes"]["none"] and guess["chosen"] == "zstd"
    done = run_cli("convert", src, store, "--every-nth", "2", "-c", "222200042")
    assert done.returncode == 0, done.stderr
    from nersemble_cube.cube.store import stored_bytes

    assert 0.5 < stored_bytes(nersemble_cube.cube.location.locate(store)) / guess["bytes"]["zstd"] < 1.5
    from nersemble_cube.conversion.estimate import estimate
    from nersemble_cube.conversion.plan import plan

    again = estimate(nersemble_cube.cube.location.locate(store), plan(src, every_nth=2, cameras=["222200042"]),
                     nersemble_cube.StorageSpec())
    assert (again.decoded, again.frames) == (0, 0)  # what the store holds is not counted again
    shown = run_cli("info", store)
    assert "dataset/104/sequences/EXP-1-head: 1 camera x 2 frames of 402x276 (height x width) @ 36.5 fps" in shown.stdout
    assert "dataset/104/calibration: 16 cameras (16 train), colour correction" in shown.stdout
    assert "dataset/104/background: background stills of 1 camera, 402x276" in shown.stdout
    out = tmp_path / "nerf"
    exported = run_cli("export-nerf", store, out, "-s", "dataset/104/EXP-1-head", "--color-correct", "--downscale", "2")
    assert exported.returncode == 0, exported.stderr
    meta = json.loads((out / "transforms.json").read_text())
    assert [f["timestep_index_original"] for f in meta["frames"]] == [0, 2]
    assert meta["source"]["fps"] == pytest.approx(36.5) and (meta["h"], meta["w"]) == (201, 138)
    assert meta["source"]["background"] == "none (no mattes: frames as they are)"  # nothing was composited
    ds = nersemble_cube.open(store)["dataset/104/sequences/EXP-1-head"].to_dataset()
    expected = ds.nersemble.color_correct().nersemble.downscale(2).images.sel(camera="222200042", time=2).values
    png = np.array(Image.open(out / meta["frames"][1]["file_path"]))
    np.testing.assert_array_equal(png, expected)


@pytest.mark.parametrize(("content", "message"), [
    ("{", "not a readable JSON file"),
    ("[]", "expected a mapping of serial -> 3xN matrix"),
    (json.dumps({"222200042": [[1, 0, 0], [0, 1, 0]]}), "'222200042' is not a finite 3xN matrix"),
    (json.dumps({"222200042": np.ones((3, 6)).tolist()}), "N in [3, 4, 5, 7"),  # 6 terms: no such model
    (json.dumps({"222200042": np.ones((3, 3)).tolist(), "222200044": np.ones((3, 10)).tolist()}), "differ in shape"),
])
def test_malformed_color_calibration_is_refused(tmp_path, content, message):
    path = tmp_path / "color_calibration.json"
    path.write_text(content)
    with pytest.raises(SourceError, match=re.escape(message)):
        read_color_calibration(path)


def test_colour_calibration_must_cover_the_calibrated_cameras(folder, tmp_path):
    copy = tmp_path / "nersemble"
    shutil.copytree(folder / "018/calibration", copy / "018/calibration")
    shutil.copytree(folder / "018/sequences/EXP-1-head", copy / "018/sequences/EXP-1-head")
    colors = json.loads((copy / "018/calibration/color_calibration.json").read_text())
    del colors["222200040"]
    (copy / "018/calibration/color_calibration.json").write_text(json.dumps(colors))
    with pytest.raises(SourceError, match=r"no colour calibration for cameras \['222200040'\]"):
        nersemble_cube.convert(copy, tmp_path / "cube.zarr")
    assert not (tmp_path / "cube.zarr").exists()


def test_preprocess_bakes_the_correction_in_once(cube, tmp_path):
    target, _ = cube
    out = tmp_path / "corrected.zarr"
    nersemble_cube.preprocess(target, out, nersemble_cube.Steps(color_correct=True))
    raw = nersemble_cube.open(target)["dataset/018/sequences/EXP-1-head"].to_dataset()
    baked = nersemble_cube.open(out)["dataset/018/sequences/EXP-1-head"].to_dataset()
    np.testing.assert_array_equal(baked.images.values, raw.nersemble.color_correct().images.values)
    assert "color_correction" not in baked and baked.images.attrs["color_corrected"]
    with pytest.raises(nersemble_cube.errors.UsageError, match="colour-corrected already"):
        baked.nersemble.color_correct()
    with pytest.raises(nersemble_cube.errors.SelectionError, match="colour-corrected already"):
        NeRSembleParticipantDataManager(out, 18).load_image("EXP-1-head", "222200042", 0, apply_color_correction=True)
    no_ccm = raw.drop_vars("color_correction")  # as a benchmark sequence
    with pytest.raises(nersemble_cube.errors.SelectionError, match="only sequences of the full dataset"):
        no_ccm.nersemble.color_correct()


def test_verify_compares_the_kept_frames_colours_and_stills(folder, tmp_path):
    from nersemble_cube.conversion.verify import verify

    target = tmp_path / "every2.zarr"
    nersemble_cube.convert(folder, target, every_nth=2)
    report = verify(folder, target, every_nth=2, frames_per_video=3)
    assert report.ok and report.checked > 10, report.mismatches
    node = zarr.open_group(str(target), path="dataset/018/background", mode="r+")
    node["background"][1] = 0  # damage one still: verify compares one random still per participant
    found = [verify(folder, target, every_nth=2, seed=s).mismatches for s in range(6)]
    assert any("dataset/018/background" in m for ms in found for m in ms)


def _numbered_video(path, n_frames: int, fps: float) -> None:
    """A video whose frame i shows i in binary (10 blocks of 16 px, black or white: survives H.264)."""
    frames = np.zeros((n_frames, 32, 160, 3), np.uint8)
    for i in range(n_frames):
        for bit in range(10):
            frames[i, :, bit * 16:(bit + 1) * 16] = 255 * ((i >> bit) & 1)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "160x32",
                    "-r", str(fps), "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", str(path)],
                   input=frames.tobytes(), check=True)


@pytest.mark.parametrize(("n_frames", "fps", "target"), [(300, 73, 25), (97, 73, 30), (50, 24.3, 10)])
def test_fps_filter_frames_are_ffmpegs(tmp_path, n_frames, fps, target):
    path = tmp_path / "numbered.mp4"
    _numbered_video(path, n_frames, fps)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", f"fps={target}", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    shown = np.frombuffer(raw, np.uint8).reshape(-1, 32, 160, 3)[:, 16, 8::16, 0] > 127
    picked = (shown * (1 << np.arange(10))).sum(axis=1)
    np.testing.assert_array_equal(fps_filter_frames(n_frames, fps, target), picked)


def _vhap_mattes(folder, sequence_dir, serials, fps=25):
    """What VHAP's preprocess_video.py leaves in alpha_maps/: per camera the frames ffmpeg's fps filter
    extracts, numbered from 0, each a greyscale JPEG written by Pillow (here a threshold of the frame)."""
    folder.mkdir(parents=True)
    for serial in serials:
        raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(sequence_dir / f"images/cam_{serial}.mp4"),
                              "-vf", f"fps={fps}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             capture_output=True, check=True).stdout
        for k, frame in enumerate(np.frombuffer(raw, np.uint8).reshape(-1, 402, 276, 3)):
            Image.fromarray(np.where(frame[..., 0] > 140, 255, 0).astype(np.uint8)).save(folder / f"cam_{serial}_{k:06d}.jpg")


def test_vhap_mattes_import_onto_the_frames_they_were_made_of(folder, tmp_path):
    target = tmp_path / "fps25.zarr"
    nersemble_cube.convert(folder, target, participants=[18], sequences=["EXP-1-head"], fps=25)
    seq_dir = folder / "018/sequences/EXP-1-head"
    ds = nersemble_cube.open(target)["dataset/018/sequences/EXP-1-head"].to_dataset()
    assert ds.time.values.tolist() == [1, 4] and ds.attrs["fps"] == 25 and ds.attrs["fps_filter"] == 25
    decoded = decode_pyav(seq_dir / "images/cam_222200044.mp4")
    np.testing.assert_array_equal(ds.images.sel(camera="222200044").values, decoded[[1, 4]])
    mattes = tmp_path / "vhap/alpha_maps"
    _vhap_mattes(mattes, seq_dir, ds.camera.values.tolist())
    before = nersemble_cube.open(target)["dataset/018/sequences/EXP-1-head"].attrs
    done = run_cli("import-alpha", target, mattes, "-s", "dataset/018/EXP-1-head", "--method", "VHAP bgmv2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"store": str(target), "sequence": "dataset/018/sequences/EXP-1-head",
                                       "cameras": ["222200042", "222200044", "222200046"], "frames": 2}
    ds = nersemble_cube.open(target)["dataset/018/sequences/EXP-1-head"].to_dataset()
    assert ds.attrs == before  # the node's own attrs (fps, storage, sources, ...) kept: only the mattes are new
    assert "EXP-1-head: 3 cameras x 2 frames" in run_cli("info", target).stdout
    for serial in ds.camera.values:
        for k, t in enumerate(ds.time.values):
            expected = np.array(Image.open(mattes / f"cam_{serial}_{k:06d}.jpg"))
            np.testing.assert_array_equal(ds.alpha.sel(camera=serial, time=t).values, expected)
    assert ds.alpha.attrs["method"] == "VHAP bgmv2" and "fps=25" in ds.alpha.attrs["frames"]
    again = run_cli("import-alpha", target, mattes, "-s", "dataset/018/EXP-1-head")
    assert again.returncode == 4 and "already has alpha mattes" in again.stderr
    imported = store_contents(target)
    replaced = run_cli("import-alpha", target, mattes, "-s", "dataset/018/EXP-1-head", "--method", "VHAP bgmv2",
                       "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert store_contents(target) == imported


@pytest.mark.parametrize("where", ["before the template", "after the first camera"])
def test_an_interrupted_import_is_finished_by_the_same_command(folder, tmp_path, monkeypatch, where):
    """A crash inside import-alpha's write window (injected: the template write, or the second camera's task,
    fails): the cube says which command finishes it, and running it again gives the uninterrupted result."""
    from nersemble_cube.conversion import mattes as module

    seq, target, clean = "dataset/018/EXP-1-head", tmp_path / "cut.zarr", tmp_path / "clean.zarr"
    for store in (target, clean):
        nersemble_cube.convert(folder, store, participants=[18], sequences=["EXP-1-head"], fps=25)
    serials = nersemble_cube.open(clean)["dataset/018/sequences/EXP-1-head"].camera.values.tolist()
    _vhap_mattes(tmp_path / "mattes", folder / "018/sequences/EXP-1-head", serials)
    module.import_alpha(clean, tmp_path / "mattes", seq)
    with monkeypatch.context() as patch:
        if where == "before the template":
            patch.setattr(module.xr.Dataset, "to_zarr", lambda *a, **k: (_ for _ in ()).throw(OSError("killed")))
        else:
            real = module.fill_alpha
            patch.setattr(module, "fill_alpha", lambda *a: real(*a) if a[2] == 0 else (_ for _ in ()).throw(OSError("killed")))
        with pytest.raises(OSError, match="killed"):
            module.import_alpha(target, tmp_path / "mattes", seq, workers=1)
    with pytest.raises(nersemble_cube.errors.IncompleteCubeError, match="run the same nersemble-cube import-alpha again"):
        nersemble_cube.open(target)
    module.import_alpha(target, tmp_path / "mattes", seq)  # no overwrite needed: it finishes its own import
    assert store_contents(target) == store_contents(clean)


def test_mattes_that_miss_frames_or_size_write_nothing(folder, tmp_path):
    from nersemble_cube.conversion.mattes import import_alpha

    target = tmp_path / "all.zarr"
    nersemble_cube.convert(folder, target, participants=[18], sequences=["EXP-1-head"])
    mattes = tmp_path / "alpha_maps"
    _vhap_mattes(mattes, folder / "018/sequences/EXP-1-head", ["222200042", "222200044", "222200046"])
    before = tree_digest(target)
    with pytest.raises(SourceError, match=r"no matte of camera 222200042 for 4 of the node's 6 frames \(first: "
                                          r"source frame 0\).*--fps 25"):
        import_alpha(target, mattes, "dataset/018/EXP-1-head")  # 25 fps mattes for a 73 fps node
    big = tmp_path / "big"
    big.mkdir()
    Image.fromarray(np.zeros((804, 552), np.uint8)).save(big / "cam_222200042_000000.png")
    with pytest.raises(SourceError, match="mattes are 804x552 .* frames of dataset/018/sequences/EXP-1-head are 402x276"):
        import_alpha(target, big, "dataset/018/EXP-1-head", fps=None)
    assert tree_digest(target) == before
