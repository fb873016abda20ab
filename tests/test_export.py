"""Prediction templates and submission zips: shapes, round trips, the toolkit's own writers and readers."""

import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor

import av
import dask.array as da
import numpy as np
import pytest
import trimesh
import xarray as xr

import nersemble_cube
from nersemble_cube.source import layout
from nersemble_cube.errors import PredictionError
from nersemble_cube.submission.export import SvfrMesh, export_submission
from nersemble_cube.submission.rules import svfr_image_keys
from nersemble_cube.submission.template import prediction_template, write_frames
from nersemble_cube.submission.validate import validate_submission

from conftest import FULL_FRAMES, decode_pyav, fill, filled_frames, pattern, psnr
from toolkit import submission_data

pytestmark = pytest.mark.xdist_group("full_cube")  # one worker builds full_cube and nvs_zip (--dist loadgroup)


def decoded(zip_path, name, tmp_path):
    path = tmp_path / name.replace("/", "_")
    path.write_bytes(zipfile.ZipFile(zip_path).read(name))
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate)
    return decode_pyav(path), rate


# ---- templates ----------------------------------------------------------------------------------------------------

def test_nvs_template_renders_every_frame_from_the_hold_out_cameras(full_cube):
    tree = prediction_template(full_cube, "nvs")
    cube = nersemble_cube.open(full_cube)
    assert sorted(n.path for n in tree.subtree if "images" in n.dataset) == sorted(
        f"/{p:03d}/{s}" for p, s in layout.NVS_IDS_AND_SEQUENCES)
    node = tree["388/GLASSES"].to_dataset()
    assert node.images.shape == (3, FULL_FRAMES, 1604, 1100, 3) and node.images.dtype == np.uint8
    assert isinstance(node.images.data, da.Array)  # nothing allocated
    assert node.camera.values.tolist() == sorted(layout.NVS_HOLD_OUT_SERIALS)
    calib = cube["nvs/388/calibration"].to_dataset()
    for serial in layout.NVS_HOLD_OUT_SERIALS:
        np.testing.assert_array_equal(node.world_2_cam.sel(camera=serial), calib.world_2_cam.sel(camera=serial))
        np.testing.assert_array_equal(node.intrinsics.sel(camera=serial), calib.intrinsics.sel(camera=serial))
    assert node.attrs["fps"] == 73.0


def test_mono_template_has_tracking_length(full_cube):
    tree = prediction_template(full_cube, "mono_flame_avatar")
    nodes = [n for n in tree.subtree if "images" in n.dataset]
    assert len(nodes) == 5 * 4
    node = tree["404/SEN-09-frown_events_bad"].to_dataset()
    assert node.images.shape == (4, FULL_FRAMES + 3, 512, 512, 3)
    assert node.camera.values.tolist() == ["220700191", "222200037", "222200039", "222200046"]


# ---- round trips --------------------------------------------------------------------------------------------------

def test_mono_round_trip(full_cube, tmp_path):
    preds = fill(prediction_template(full_cube, "mono_flame_avatar"))
    report = export_submission(preds, tmp_path / "mono.zip", "mono_flame_avatar", workers=2)
    assert len(report.entries) == 80 and report.missing == []
    zf = zipfile.ZipFile(tmp_path / "mono.zip")
    assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    for name in ["393/FREE/cam_222200037.mp4", "486/SEN-10-port_strong_smokey/cam_220700191.mp4"]:
        frames, rate = decoded(tmp_path / "mono.zip", name, tmp_path)
        p, seq, cam = name.split("/")
        want = preds[f"{p}/{seq}"].images.sel(camera=cam[4:-4]).values
        assert frames.shape == want.shape == (FULL_FRAMES + 3, 512, 512, 3)
        assert rate == pytest.approx(24.3)
        assert psnr(frames, want) >= 40
    assert validate_submission(tmp_path / "mono.zip", "mono_flame_avatar", cube=full_cube).valid


def test_disk_template_filled_in_parallel(full_cube, nvs_zip, tmp_path):
    store = tmp_path / "pred.zarr"
    tree = prediction_template(full_cube, "nvs", store=store)
    frames = {(int(n.attrs["participant_id"]), n.attrs["sequence"], str(c)): f  # those nvs_zip was exported from
              for n in tree.subtree if "images" in n.dataset for c, f in zip(n.dataset.camera.values, filled_frames(n))}
    jobs = list(frames)
    with ThreadPoolExecutor(4) as pool:  # one frame per call, cameras and frames interleaved
        list(pool.map(lambda a: write_frames(store, *a[0], frames[a[0]][a[1]:a[1] + 1], start=a[1]),
                      [(job, t) for t in range(FULL_FRAMES) for job in jobs]))
    # one task per video on a local dask.distributed cluster of 2 processes
    import distributed  # noqa: F401 - a runtime dependency
    export_submission(store, tmp_path / "cluster.zip", "nvs", workers=2, scheduler="processes")
    for job in jobs[:3]:
        got, rate = decoded(tmp_path / "cluster.zip", f"{job[0]:03d}/{job[1]}/cam_{job[2]}.mp4", tmp_path)
        assert got.shape == (FULL_FRAMES, 1604, 1100, 3) and rate == 73.0
        assert psnr(got, frames[job]) >= 40
    # the same entries, byte for byte, as the same frames exported from memory by threads
    a, b = zipfile.ZipFile(nvs_zip), zipfile.ZipFile(tmp_path / "cluster.zip")
    assert a.namelist() == b.namelist() and all(a.read(n) == b.read(n) for n in a.namelist())


def test_float_predictions_are_converted_as_documented(full_cube, nvs_zip, tmp_path):
    as_float = fill(prediction_template(full_cube, "nvs"), dtype=np.float32)
    export_submission(as_float, tmp_path / "b.zip", "nvs")
    a, b = zipfile.ZipFile(nvs_zip), zipfile.ZipFile(tmp_path / "b.zip")
    assert a.namelist() == b.namelist()
    name = "445/EXP-6-tongue-1/cam_222200046.mp4"
    np.testing.assert_array_equal(decoded(nvs_zip, name, tmp_path)[0], decoded(tmp_path / "b.zip", name, tmp_path)[0])


# ---- the toolkit's own writer and reader --------------------------------------------------------------------------

def test_same_files_and_bytes_as_the_toolkit_writer(full_cube, nvs_zip, tmp_path):
    sd = submission_data()
    preds = fill(prediction_template(full_cube, "nvs"))
    with sd.NVSSubmissionDataWriter(str(tmp_path / "toolkit.zip")) as writer:
        for node in preds.subtree:
            if "images" in node.dataset:
                for serial in node.dataset.camera.values:
                    frames = list(node.dataset.images.sel(camera=serial).values)
                    writer.add_video(node.attrs["participant_id"], node.attrs["sequence"], str(serial), frames)
    ours, theirs = zipfile.ZipFile(nvs_zip), zipfile.ZipFile(tmp_path / "toolkit.zip")
    assert sorted(ours.namelist()) == sorted(theirs.namelist())
    for name in theirs.namelist():
        assert ours.read(name) == theirs.read(name), name  # the same ffmpeg call: identical mp4 bytes


def test_the_toolkit_reader_accepts_our_zip(full_cube, nvs_zip, tmp_path, monkeypatch):
    sd = submission_data()
    # the toolkit downloads the expected lengths from the benchmark server; here they come from the cube
    lengths = {f"{p:03d}/{s}/cam_{c}.mp4": FULL_FRAMES for p, s in layout.NVS_IDS_AND_SEQUENCES
               for c in layout.NVS_HOLD_OUT_SERIALS}
    monkeypatch.setattr(sd.NVSSubmissionDataReader, "list_expected_video_lengths", lambda self: lengths)
    reader = sd.NVSSubmissionDataReader(str(nvs_zip))
    assert reader.validate_submission() == {}
    assert all(reader.is_complete(p, s) for p, s in layout.NVS_IDS_AND_SEQUENCES)


# ---- refusals, before anything is written -------------------------------------------------------------------------

@pytest.fixture
def existing_zip(tmp_path):
    path = tmp_path / "submission.zip"
    path.write_bytes(b"the user's earlier submission")
    return path


def _refused(preds, zip_path, match, benchmark="nvs", **kwargs):
    with pytest.raises(PredictionError, match=match):
        export_submission(preds, zip_path, benchmark, **kwargs)
    assert zip_path.read_bytes() == b"the user's earlier submission"
    assert [p.name for p in zip_path.parent.iterdir() if ".partial" in p.name] == []


def test_nan_is_refused_and_the_old_zip_kept(full_cube, existing_zip):
    preds = fill(prediction_template(full_cube, "nvs"), dtype=np.float32)
    node = preds["422/EXP-2-eyes"].to_dataset(inherit=False)
    images = node.images.values.copy()
    images[1, 1, 100, 100, 0] = np.nan
    preds["422/EXP-2-eyes"] = node.assign(images=(node.images.dims, images))
    _refused(preds, existing_zip, "NaN in the predictions")


@pytest.mark.parametrize("damage, match", [
    (lambda x: x.__setitem__((2, 1, 10, 10, 1), np.inf), "infinite values"),
    (lambda x: x.__setitem__((0, 0, 5, 5, 2), -0.25), r"must be in \[0, 1\], these range from -0.25 to"),
    (lambda x: x.__imul__(np.float32(255)), r"to 2\d\d(\.\d+)?; divide 0-255 values by 255"),  # a forgotten / 255
])
def test_float_values_outside_0_1_are_refused_before_anything_is_encoded(full_cube, existing_zip, monkeypatch,
                                                                         damage, match):
    import nersemble_cube.submission.export as export

    monkeypatch.setattr(export, "encode_video", lambda *a, **k: pytest.fail("a video was encoded"))
    preds = fill(prediction_template(full_cube, "nvs"), dtype=np.float32)
    node = preds["475/HAIR"].to_dataset(inherit=False)  # the last sequence: checked before the first is encoded
    images = node.images.values.copy()
    damage(images)
    preds["475/HAIR"] = node.assign(images=(node.images.dims, images))
    _refused(preds, existing_zip, match)


def test_write_frames_refuses_frames_outside_the_sequence(full_cube, tmp_path):
    store = tmp_path / "pred.zarr"
    prediction_template(full_cube, "nvs", store=store)
    frames = pattern(2, 1604, 1100, 0)
    with pytest.raises(PredictionError, match=r"has frames 0..1; frames -1..0 do not fit"):
        write_frames(store, 388, "GLASSES", "222200037", frames, start=-1)
    with pytest.raises(PredictionError, match=r"frames 1..2 do not fit"):
        write_frames(store, 388, "GLASSES", "222200037", frames, start=1)
    assert not (store / "388/GLASSES/images/c/0").exists()  # nothing written


def test_wrong_shape_camera_sequence_and_missing_videos(full_cube, existing_zip):
    template = prediction_template(full_cube, "nvs")
    small = template.copy()
    node = small["388/GLASSES"].to_dataset(inherit=False)
    small["388/GLASSES"] = node.isel(x=slice(0, 1000))
    _refused(small, existing_zip, "frames of 1000x1604x3, expected 1100x1604x3")
    extra = template.copy()
    extra["388/GLASSES"] = extra["388/GLASSES"].to_dataset(inherit=False).assign_coords(
        camera=["222200037", "222200039", "222200042"])
    _refused(extra, existing_zip, r"cameras \['222200042'\] are not submitted")
    wrong_seq = xr.DataTree.from_dict({"/388/HAIR": template["388/GLASSES"].to_dataset(inherit=False)})
    _refused(wrong_seq, existing_zip, "/388/HAIR: not a nvs submission sequence")
    fewer = xr.DataTree.from_dict({"/388/GLASSES": template["388/GLASSES"].to_dataset(inherit=False)})
    fewer.attrs["benchmark"] = "nvs"
    _refused(fewer, existing_zip, "12 of 15 videos are missing")
    report = export_submission(fewer, existing_zip, "nvs", partial=True)
    assert len(report.entries) == 3 and len(report.missing) == 12
    assert zipfile.ZipFile(existing_zip).namelist() == report.entries == [
        f"388/GLASSES/cam_{c}.mp4" for c in sorted(layout.NVS_HOLD_OUT_SERIALS)]


def test_unwritten_frames_of_a_disk_template(full_cube, tmp_path, existing_zip):
    store = tmp_path / "pred.zarr"
    prediction_template(full_cube, "nvs", store=store)
    frames = pattern(FULL_FRAMES, 1604, 1100, 0)
    write_frames(store, 388, "GLASSES", "222200037", frames[:1])  # frame 1 never written; other cameras untouched
    _refused(store, existing_zip, r"388/GLASSES camera 222200037 has 1 frames never written \(first: \[1\]\)")
    # --partial leaves out whole videos never rendered, never a video rendered in part
    with pytest.raises(PredictionError, match="camera 222200037 has 1 frames never written"):
        export_submission(store, existing_zip, "nvs", partial=True)
    write_frames(store, 388, "GLASSES", "222200037", frames[1:], start=1)
    report = export_submission(store, existing_zip, "nvs", partial=True)
    assert report.entries == ["388/GLASSES/cam_222200037.mp4"] and len(report.missing) == 14
    umask = os.umask(0)
    os.umask(umask)
    assert existing_zip.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


# ---- SVFR ---------------------------------------------------------------------------------------------------------

def _svfr_predictions(n_keys=None):
    rng = np.random.default_rng(0)
    flame_faces = np.arange(5023)[:, None] + np.arange(3)  # every vertex referenced, like FLAME's faces
    flame_faces[-2:] -= 5023 - 2
    other_faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    keys = list(svfr_image_keys())[:n_keys]
    return {k: {"posed": SvfrMesh(rng.normal(size=(5023, 3)).astype(np.float32), flame_faces),
                "neutral": SvfrMesh(rng.normal(size=(4, 3)), other_faces, rng.normal(size=(7, 3)))} for k in keys}


def test_svfr_round_trip_and_the_toolkit_reader(tmp_path):
    sd = submission_data()
    preds = _svfr_predictions()
    report = export_submission(preds, tmp_path / "svfr.zip", "svfr")
    assert len(report.entries) == 391 * 3  # posed mesh, neutral mesh, neutral landmarks (neutral is no FLAME mesh)
    zf = zipfile.ZipFile(tmp_path / "svfr.zip")
    key = "017/EMO-1-shout+laugh_156_221501007"
    for task in ("posed", "neutral"):
        mesh = trimesh.load(io.BytesIO(zf.read(f"{key}/mesh_{task}.ply")), file_type="ply", process=False)
        np.testing.assert_allclose(mesh.vertices, preds[key][task].vertices, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(mesh.faces, preds[key][task].faces)
    with zf.open(f"{key}/landmarks_neutral.npy") as f:
        np.testing.assert_array_equal(np.load(f), preds[key]["neutral"].landmarks)
    assert sd.SVFRSubmissionDataReader(str(tmp_path / "svfr.zip")).validate_submission() == {}
    assert validate_submission(tmp_path / "svfr.zip", "svfr").valid


@pytest.mark.parametrize("damage, match", [
    (lambda m: m.__setitem__("017/NOPE_001_222200037", m["017/EMO-1-shout+laugh_156_221501007"]), "not an SVFR image key"),
    (lambda m: m["017/EMO-1-shout+laugh_156_221501007"].__setitem__("neutral", SvfrMesh(np.zeros((4, 3)), np.array([[0, 1, 2]]))),
     "not FLAME topology"),
    (lambda m: m["017/EMO-1-shout+laugh_156_221501007"].__setitem__("posed", SvfrMesh(np.full((5023, 3), np.nan), np.array([[0, 1, 2]]))),
     "NaN or infinite"),
    (lambda m: m["017/EMO-1-shout+laugh_156_221501007"].__setitem__("posed", SvfrMesh(np.zeros((5023, 3)), np.array([[0, 1, 9999]]))),
     "face indices outside"),
    (lambda m: m["017/EMO-1-shout+laugh_156_221501007"].__setitem__("posed", SvfrMesh(np.zeros((5023, 3)), np.array([[0, 1, 2]]))),
     "loads as 1 vertices"),  # all-zero vertices merge into one
    (lambda m: m.pop("372/EMO-2-surprise+fear_345_222200036"), "2 meshes are missing"),
])
def test_svfr_refusals(tmp_path, damage, match):
    preds = _svfr_predictions()
    damage(preds)
    with pytest.raises(PredictionError, match=match):
        export_submission(preds, tmp_path / "svfr.zip", "svfr")
    assert not (tmp_path / "svfr.zip").exists()


def test_svfr_from_a_dataset_store(tmp_path):
    preds = _svfr_predictions(3)
    keys = list(preds)
    ds = xr.Dataset({
        "posed_vertices": (("image", "vertex", "xyz"), np.stack([preds[k]["posed"].vertices for k in keys])),
        "posed_faces": (("face", "corner"), preds[keys[0]]["posed"].faces),
    }, coords={"image": np.array(keys, dtype=object)})
    ds.to_zarr(tmp_path / "svfr.zarr", zarr_format=3, consolidated=False)
    report = export_submission(tmp_path / "svfr.zarr", tmp_path / "svfr.zip", "svfr", partial=True)
    assert report.entries == [f"{k}/mesh_posed.ply" for k in keys] and len(report.missing) == 388


def test_leftovers_of_a_killed_export_are_removed_by_the_next(tmp_path):
    """An export killed with SIGKILL leaves its partial zip and temporary folder (named with its pid); the next
    export to the same target removes those of dead processes and keeps a running one's."""
    import os
    import subprocess
    import sys

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    stale = [tmp_path / f".svfr.zip.{dead}.k3j2.partial", tmp_path / f"nersemble-cube-export-{dead}.x7"]
    stale[0].write_bytes(b"PK half a zip")
    stale[1].mkdir()
    (stale[1] / "0.mp4").write_bytes(b"half a video")
    live = tmp_path / f".svfr.zip.{os.getpid()}.q9.partial"
    live.write_bytes(b"another export, still running")
    export_submission(_svfr_predictions(n_keys=2), tmp_path / "svfr.zip", "svfr", partial=True)
    assert not any(p.exists() for p in stale) and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "svfr.zip"])
