"""Temporal selection and NeRF / 3DGS folders (GaussianAvatars / VHAP layout) from a cube."""

import json

import imagecodecs
import numpy as np
from scipy.spatial.transform import Rotation
import pytest

import nersemble_cube
from nersemble_cube.source import layout
from nersemble_cube.accessor import frame_indices
from nersemble_cube.errors import SelectionError, NersembleCubeError, StoreError
from nersemble_cube.training.nerf import euler_xyz, export_nerf, world_2_cam_from_opengl
from nersemble_cube.source.sample import head_centre

from conftest import N_FRAMES, run_cli

pytestmark = pytest.mark.xdist_group("nerf")  # one worker builds the module's fixtures (--dist loadgroup)

SEQ = "nvs/388/sequences/GLASSES"


# ---- temporal selection -------------------------------------------------------------------------------------------

def test_frame_indices_follow_the_documented_rules():
    assert frame_indices(10, 73, every_nth=3).tolist() == [0, 3, 6, 9]
    assert frame_indices(10, 73, every_nth=3, start=2, stop=8).tolist() == [2, 5]
    # 73 -> 25 fps: the nearest source frame to k / 25 s is round(k * 2.92)
    assert frame_indices(20, 73, target_fps=25).tolist() == [0, 3, 6, 9, 12, 15, 18]
    assert frame_indices(1118, 73, target_fps=25).tolist()[-3:] == [1110, 1113, 1115]
    assert len(frame_indices(1118, 73, target_fps=25)) == 383  # 1118 frames at 73 fps last 15.3 s
    assert frame_indices(12, 24.3, target_fps=24.3).tolist() == list(range(12))
    for bad in ({"every_nth": 0}, {"target_fps": 100}, {"every_nth": 2, "target_fps": 25}, {"start": 12},
                {"stop": 13}, {"start": 5, "stop": 5}):
        with pytest.raises(NersembleCubeError):
            frame_indices(12, 73, **bad)


def test_select_time_is_lazy_and_keeps_the_source_indices(cube):
    ds = nersemble_cube.open(cube)[SEQ].to_dataset()
    with pytest.raises(SelectionError, match=r"frames 0:100 are not in the sequence: it has frames 0 to 4"):
        ds.nersemble.select_time(start=0, stop=100)  # a range past the end is a mistake, not quietly cut
    out = ds.nersemble.select_time(fps=25)
    assert out.time.values.tolist() == [0, 3]
    assert out.attrs["fps"] == 25 and out.attrs["source_fps"] == 73 and out.attrs["n_frames"] == 2
    assert hasattr(out.images.data, "dask")
    np.testing.assert_array_equal(out.images.sel(time=3).values, ds.images.sel(time=3).values)
    every = ds.nersemble.select_time(every_nth=2, start=1)
    assert every.time.values.tolist() == [1, 3] and every.attrs["fps"] == 36.5


# ---- export-nerf --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nvs_export(cube, tmp_path_factory):
    out = tmp_path_factory.mktemp("nerf") / "388_GLASSES"
    report = export_nerf(cube, out, "nvs/388/GLASSES", downscale=2, background="white", every_nth=2)
    return out, report, json.loads((out / "transforms.json").read_text())


def test_frame_selection_and_files(nvs_export, cube):
    out, report, db = nvs_export
    serials = nersemble_cube.open(cube)[SEQ].camera.values.tolist()
    assert report.frames == [0, 2, 4] and report.cameras == serials
    assert report.files == 2 * len(serials) * 3
    assert len(db["frames"]) == len(serials) * 3
    assert sorted({f["timestep_index_original"] for f in db["frames"]}) == [0, 2, 4]
    assert db["timestep_indices"] == [0, 1, 2]
    all_serials = nersemble_cube.open(cube)["nvs/388/calibration"].camera.values.tolist()
    assert db["camera_indices"] == sorted(all_serials.index(s) for s in serials)
    for f in db["frames"]:
        assert f["file_path"] == f"images/{f['timestep_index']:05d}_{f['camera_index']:02d}.png"
        assert (out / f["file_path"]).is_file() and (out / f["fg_mask_path"]).is_file()
    # GaussianAvatars reads an nvs export (no FLAME) with its Blender reader, which opens transforms_train.json
    # and transforms_test.json only: the validation view (camera index 8, serial 222200042) must be in the test file
    train, test = (json.loads((out / f"transforms_{d}.json").read_text()) for d in ("train", "test"))
    assert not (out / "transforms_val.json").exists()
    assert {f["camera_id"] for f in test["frames"]} == {"222200042"} and len(test["frames"]) == 3
    assert "222200042" not in {f["camera_id"] for f in train["frames"]}
    assert len(train["frames"]) + len(test["frames"]) == len(db["frames"])
    assert (out / "points3d.ply").read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\nelement vertex 5000")
    # intrinsics differ per camera: only the shared size may be top-level (nerfstudio would apply it to all)
    assert (db["w"], db["h"]) == (550, 802) and not {"fl_x", "fl_y", "cx", "cy", "camera_angle_x"} & set(db)
    assert any("static scene" in note for note in report.notes)


def test_poses_convert_back_to_the_cube_and_intrinsics_follow_the_downscale(nvs_export, cube):
    _, _, db = nvs_export
    ds = nersemble_cube.open(cube)[SEQ].to_dataset()
    for f in db["frames"]:
        c2w = np.array(f["transform_matrix"])
        np.testing.assert_allclose(world_2_cam_from_opengl(c2w), ds.world_2_cam.sel(camera=f["camera_id"]).values,
                                   atol=1e-12)
        # GaussianAvatars' reader: flip y, z of c2w (OpenGL -> OpenCV), invert
        c2w[:3, 1:3] *= -1
        np.testing.assert_allclose(np.linalg.inv(c2w), ds.world_2_cam.sel(camera=f["camera_id"]).values, atol=1e-12)
        k = ds.intrinsics.sel(camera=f["camera_id"]).values
        # VHAP's convention, which GaussianAvatars' folders follow: cy measured from the bottom row
        assert (f["fl_x"], f["fl_y"], f["cx"], f["cy"]) == pytest.approx(
            (k[0, 0] / 2, k[1, 1] / 2, k[0, 2] / 2, 802 - k[1, 2] / 2), abs=1e-12)
        assert (f["w"], f["h"]) == (550, 802)
        assert f["camera_angle_x"] == pytest.approx(2 * np.arctan(550 / (2 * f["fl_x"])))


def test_pixels_background_and_a_projected_point(nvs_export, cube):
    out, _, db = nvs_export
    ds = nersemble_cube.open(cube)[SEQ].to_dataset()
    for f in db["frames"][::2]:
        serial, t = f["camera_id"], f["timestep_index_original"]
        image = imagecodecs.png_decode((out / f["file_path"]).read_bytes())
        mask = imagecodecs.png_decode((out / f["fg_mask_path"]).read_bytes())
        assert image.shape == (802, 550, 3) and mask.shape == (802, 550)
        # independent expectation: composite on white and 2x2 area average, in float64
        rgb = ds.images.sel(camera=serial, time=t).values.astype(np.float64)
        a = ds.alpha.sel(camera=serial, time=t).values.astype(np.float64)[..., None] / 255
        comp = rgb * a + 255 * (1 - a)
        expected = comp.reshape(802, 2, 550, 2, 3).mean(axis=(1, 3))
        assert np.abs(image - expected).max() <= 1
        # background (alpha 0 in the whole 2x2 block) is exactly the background colour
        empty = a[..., 0].reshape(802, 2, 550, 2).max(axis=(1, 3)) == 0
        assert empty.any() and (image[empty] == 255).all() and (mask[empty] == 0).all()
        # the head's centre, projected with the exported camera, shows the same content as in the cube frame
        k = np.array([[f["fl_x"], 0, f["cx"]], [0, f["fl_y"], f["h"] - f["cy"]], [0, 0, 1]])
        w2c = world_2_cam_from_opengl(f["transform_matrix"])
        p = w2c[:3, :3] @ head_centre(t, layout.NVS_FPS) + w2c[:3, 3]
        u, v = (k @ p)[:2] / p[2]
        full_k = ds.intrinsics.sel(camera=serial).values
        fu, fv = (full_k @ p)[:2] / p[2]
        assert mask[int(v), int(u)] > 250
        block = comp[int(fv) // 2 * 2:int(fv) // 2 * 2 + 2, int(fu) // 2 * 2:int(fu) // 2 * 2 + 2]
        assert (int(v), int(u)) == (int(fv) // 2, int(fu) // 2)
        assert np.abs(image[int(v), int(u)] - block.mean(axis=(0, 1))).max() <= 1


def test_crop_to_alpha_then_downscale(cube, tmp_path):
    """Gaussian-Head-Avatar's preparation: crop to the head, resize, every n-th frame; intrinsics follow."""
    out = tmp_path / "crop"
    export_nerf(cube, out, "nvs/388/GLASSES", crop_to_alpha=8, downscale=2, every_nth=2)
    db = json.loads((out / "transforms.json").read_text())
    ds = nersemble_cube.open(cube)[SEQ].to_dataset()
    sizes = {(f["w"], f["h"]) for f in db["frames"]}
    assert len(sizes) == 1 and next(iter(sizes))[0] < 550 and next(iter(sizes))[1] < 802
    for f in db["frames"]:
        serial, t = f["camera_id"], f["timestep_index_original"]
        k = ds.intrinsics.sel(camera=serial).values
        assert (f["fl_x"], f["cx"], f["cy"]) == pytest.approx(
            (k[0, 0] / 2, (k[0, 2] - f["crop_x0"]) / 2, f["h"] - (k[1, 2] - f["crop_y0"]) / 2), abs=1e-9)
        mask = imagecodecs.png_decode((out / f["fg_mask_path"]).read_bytes())
        assert mask.shape == (f["h"], f["w"])
        # the whole foreground is inside the crop, and the head's centre projects onto it
        alpha = ds.alpha.sel(camera=serial, time=t).values
        assert (alpha > 0).sum() == (alpha[f["crop_y0"]:f["crop_y0"] + 2 * f["h"],
                                           f["crop_x0"]:f["crop_x0"] + 2 * f["w"]] > 0).sum()
        kk = np.array([[f["fl_x"], 0, f["cx"]], [0, f["fl_y"], f["h"] - f["cy"]], [0, 0, 1]])
        u, v = _project(kk, world_2_cam_from_opengl(f["transform_matrix"]), head_centre(t, layout.NVS_FPS)[None])[0]
        assert mask[int(v), int(u)] > 250


def test_mono_export_with_flame_tracking_at_half_rate(cube, tmp_path):
    out = tmp_path / "mono"
    assert frame_indices(N_FRAMES, 24.3, target_fps=12).tolist() == [0, 2]  # k * 2.025: 4.05 is past frame 4
    report = export_nerf(cube, out, "mono_flame_avatar/393/EXP-1-head", fps=12.15, reader="vhap", image_format="jpg")
    assert report.frames == [0, 2, 4]
    db = json.loads((out / "transforms.json").read_text())
    assert db["camera_indices"] == [nersemble_cube.open(cube)["mono_flame_avatar/393/calibration"].camera.values
                                    .tolist().index("222200037")]
    assert (out / "canonical_flame_param.npz").is_file()  # GaussianAvatars' cue for a dynamic FLAME data set
    seq = nersemble_cube.open(cube)["mono_flame_avatar/393/sequences/EXP-1-head"]
    tracking = nersemble_cube.flame_tracking(seq)
    w2c = seq.world_2_cam.sel(camera="222200037").values
    k = seq.intrinsics.sel(camera="222200037").values
    model_points = np.random.default_rng(0).normal(scale=0.1, size=(20, 3))
    assert db["source"]["frame"] == "flame"
    for f in db["frames"]:
        assert f["file_path"].endswith(".jpg")
        image = imagecodecs.jpeg8_decode((out / f["file_path"]).read_bytes())
        assert image.shape == (512, 512, 3)
        params = np.load(out / f["flame_param_path"])
        t = f["timestep_index_original"]
        np.testing.assert_array_equal(params["expr"], tracking.expression[[t]])
        np.testing.assert_array_equal(params["jaw_pose"], tracking.jaw[[t]])
        np.testing.assert_array_equal(params["shape"], tracking.shape[0])
        assert not params["rotation"].any() and not params["translation"].any()  # the pose is in the camera
        assert set(params.files) >= {"translation", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "shape", "expr"}
        # a point of the unposed FLAME mesh, seen by the exported camera, lands where the cube's camera sees
        # the same point posed as the toolkit's FlameProvider poses it: scale * R v + translation, R from dreifus'
        # Pose.from_euler(rotation, translation, 'XYZ'), i.e. scipy's Rotation.from_euler('XYZ', rotation)
        rotation = Rotation.from_euler("XYZ", tracking.rotation[t]).as_matrix()
        posed = float(tracking.scale[0, 0]) * model_points @ rotation.T + tracking.translation[t]
        exported = world_2_cam_from_opengl(f["transform_matrix"])
        np.testing.assert_allclose(_project(k, exported, model_points), _project(k, w2c, posed), atol=1e-6)
    # the val split is empty with one camera, as in VHAP
    assert json.loads((out / "transforms_val.json").read_text())["frames"] == []


def _project(k, w2c, points):
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:]


def test_euler_xyz_is_intrinsic_x_then_y_then_z():
    """As dreifus' Pose.from_euler(..., 'XYZ'), which the toolkit's FlameProvider poses FLAME with, computes it:
    scipy's intrinsic 'XYZ' rotation."""
    angles = np.random.default_rng(0).uniform(-np.pi, np.pi, (50, 3))
    np.testing.assert_allclose([euler_xyz(a) for a in angles], Rotation.from_euler("XYZ", angles).as_matrix(),
                               atol=1e-12)
    np.testing.assert_allclose(euler_xyz([0, 0, np.pi / 2]), [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15)
    np.testing.assert_allclose(euler_xyz([np.pi / 2, 0, 0]), [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-15)
    # the order: Rx(90) @ Ry(90) takes z to x (Ry(90) @ Rx(90) would take it to -y)
    np.testing.assert_allclose(euler_xyz([np.pi / 2, np.pi / 2, 0]) @ [0, 0, 1], [1, 0, 0], atol=1e-15)


def test_gaussian_avatars_is_told_to_bind_a_flame_tracked_export_to_the_mesh(cube, tmp_path):
    report = export_nerf(cube, tmp_path / "ga", "mono_flame_avatar/393/EXP-1-head", every_nth=4)
    assert (tmp_path / "ga" / "canonical_flame_param.npz").is_file()  # GaussianAvatars takes its dynamic reader
    assert not (tmp_path / "ga" / "points3d.ply").exists()  # which reads no point cloud (ply_path=None)...
    assert any("train with --bind_to_mesh" in note for note in report.notes)  # ...so the user is told


def test_mono_world_frame_keeps_the_cube_poses(cube, tmp_path):
    report = export_nerf(cube, tmp_path / "w", "mono_flame_avatar/393/EXP-1-head", flame_frame=False, every_nth=2)
    db = json.loads((tmp_path / "w" / "transforms.json").read_text())
    # one static camera: GaussianAvatars' camera extent and nerfstudio's pose scale degenerate; the user is told
    assert any("every frame has the same camera position" in note for note in report.notes)
    seq = nersemble_cube.open(cube)["mono_flame_avatar/393/sequences/EXP-1-head"]
    tracking = nersemble_cube.flame_tracking(seq)
    assert db["source"]["frame"] == "world"
    for f in db["frames"]:
        np.testing.assert_allclose(world_2_cam_from_opengl(f["transform_matrix"]),
                                   seq.world_2_cam.sel(camera="222200037").values, atol=1e-12)
        params = np.load(tmp_path / "w" / f["flame_param_path"])
        np.testing.assert_array_equal(params["rotation"], tracking.rotation[[f["timestep_index_original"]]])


def test_refusals(cube, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(StoreError, match="not an empty folder"):
        export_nerf(cube, tmp_path / "full", "nvs/388/GLASSES")
    with pytest.raises(NersembleCubeError, match="no such sequence"):
        export_nerf(cube, tmp_path / "a", "nvs/388/NOPE")
    with pytest.raises(NersembleCubeError, match="no video"):
        export_nerf(cube, tmp_path / "b", "mono_flame_avatar/393/FREE")
    with pytest.raises(NersembleCubeError, match="cameras"):
        export_nerf(cube, tmp_path / "c", "nvs/388/GLASSES", cameras=["222200037"])  # a hold-out camera
    with pytest.raises(NersembleCubeError, match="no FLAME tracking"):
        export_nerf(cube, tmp_path / "d", "nvs/388/GLASSES", flame_frame=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()


def test_cli(cube, tmp_path, cluster_address):
    res = run_cli("export-nerf", cube, tmp_path / "o", "-s", "nvs/388/GLASSES", "--fps", "25", "--camera", "222200042",
                  "--downscale", "4", "--frames", f"1:{N_FRAMES}", "--scheduler", cluster_address, "--json")
    assert res.returncode == 0, res.stderr
    facts = json.loads(res.stdout)
    assert (facts["cameras"], facts["frames"], facts["folder"]) == (["222200042"], [1, 4], str(tmp_path / "o"))
    db = json.loads((tmp_path / "o" / "transforms.json").read_text())
    assert {(f["camera_id"], f["w"], f["h"]) for f in db["frames"]} == {("222200042", 275, 401)}
    bad = run_cli("export-nerf", cube, tmp_path / "p", "-s", "nvs/388/GLASSES", "--fps", "25", "--every-nth", "2")
    assert bad.returncode == 2
    bad = run_cli("export-nerf", cube, tmp_path / "p", "-s", "nvs/388/GLASSES", "--scheduler", "cluster")
    assert bad.returncode == 2 and "tcp://host:8786" in bad.stderr and not (tmp_path / "p").exists()
