"""Each ``export-nerf --for`` target as its reader sees it.

nerfstudio is packaged: its own dataparser (1.1.5, tests/wheels.py) reads our folder and its own
``Cameras.generate_rays`` casts the rays. GaussianAvatars, VHAP and instant-ngp are not packaged: each
test below encodes the reader's contract (keys, dtypes, shapes, path and split rules, conventions),
with the file and commit it mirrors; none of their code is copied. Every geometric check projects
points of the sample head (its centre and points of its point cloud, on its surface) with the cube's
OpenCV camera and compares with where the reader's camera puts them.
"""

import json
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from PIL import Image

import nersemble_cube
from nersemble_cube.errors import UsageError
from nersemble_cube.source import layout
from nersemble_cube.source.sample import head_centre
from nersemble_cube.training.nerf import export_nerf

from conftest import run_cli
from nerf_geometry import NVS, cube_camera, frame_identity, head_points, project

MONO = "mono_flame_avatar/393/sequences/EXP-1-head"


# ---- nerfstudio: its own dataparser and ray generation -------------------------------------------------------------

def test_nerfstudio_keys(nerfstudio_export):
    out, report, db = nerfstudio_export
    assert db["camera_model"] == "OPENCV" and db["ply_file_path"] == "points3d.ply" and (out / "points3d.ply").is_file()
    # per-camera intrinsics differ, so none of them is top-level (nerfstudio would apply it to every frame)
    assert not {"fl_x", "fl_y", "cx", "cy"} & set(db) and (db["w"], db["h"]) == (550, 802)
    assert set(db["frames"][0]) == {"cx", "cy", "fl_x", "fl_y", "h", "w", "camera_angle_x", "camera_angle_y",
                                    "transform_matrix", "file_path", "mask_path"}
    assert sorted(db["train_filenames"] + db["val_filenames"]) == sorted(f["file_path"] for f in db["frames"])
    assert db["val_filenames"] == db["test_filenames"]
    assert sorted(p.name for p in out.glob("*.json")) == ["transforms.json"]
    assert any("static scene" in note for note in report.notes)  # 2 frames of each camera, no time in nerfstudio


# ---- GaussianAvatars (not packaged): its reader contract ---------------------------------------------------------

def _gaussian_avatars_cameras(folder: Path, name: str):
    """The contract of GaussianAvatars' scene/dataset_readers.py readCamerasFromTransforms (commit 30cc4bd):
    '.png' is appended to a file_path without '.png'; the OpenGL c2w has its y and z columns negated and is
    inverted; the field of view comes from camera_angle_x (per frame, else top-level) and w; the vertical
    one is derived from it with the same focal length; the principal point is the image centre.
    Yields (frame, world_2_cam, K as that camera projects)."""
    contents = json.loads((folder / name).read_text())
    for frame in contents["frames"]:
        path = frame["file_path"] if ".png" in frame["file_path"] else frame["file_path"] + ".png"
        assert (folder / path).is_file(), path
        c2w = np.array(frame["transform_matrix"])
        c2w[:3, 1:3] *= -1
        fovx = frame.get("camera_angle_x", contents.get("camera_angle_x"))
        w, h = frame["w"], frame["h"]
        focal = w / (2 * np.tan(fovx / 2))
        fovy = 2 * np.arctan(h / (2 * focal))
        k = np.array([[focal, 0, w / 2], [0, h / (2 * np.tan(fovy / 2)), h / 2], [0, 0, 1]])
        yield frame, np.linalg.inv(c2w), k


def test_gaussian_avatars_nvs_uses_every_frame_and_only_misses_by_its_centred_principal_point(cube, tmp_path):
    out = tmp_path / "ga"
    export_nerf(cube, out, "nvs/388/GLASSES", downscale=2, every_nth=4)  # the default reader
    # no canonical_flame_param.npz: Scene takes the Blender reader, which opens train and test only
    assert not (out / "canonical_flame_param.npz").exists() and (out / "transforms_train.json").is_file()
    read = [f for name in ("transforms_train.json", "transforms_test.json")
            for f in _gaussian_avatars_cameras(out, name)]
    db = json.loads((out / "transforms.json").read_text())
    assert len(read) == len(db["frames"])  # every exported image is trained or tested on
    for frame, w2c, k_ga in read:
        k, cube_w2c = cube_camera(cube, NVS, frame["camera_id"], 2)
        np.testing.assert_allclose(w2c, cube_w2c, atol=1e-12)
        points = head_points(cube, frame["timestep_index_original"])
        miss = project(k_ga, w2c, points) - project(k, cube_w2c, points)
        # fx == fy on these cameras: the reader's only error is the principal point it puts at the centre
        np.testing.assert_allclose(miss, np.broadcast_to([275 - k[0, 2], 401 - k[1, 2]], miss.shape), atol=1e-6)


def test_gaussian_avatars_mono_flame_params_follow_load_meshes(cube, tmp_path):
    """GaussianAvatars' scene/flame_gaussian_model.py load_meshes (commit 30cc4bd) reads, from the npz of
    timestep 0, ``static_offset`` (padded along axis 1 to 5023 vertices) and ``shape``; from every
    timestep of train and test ``expr``, ``rotation``, ``neck_pose``, ``jaw_pose``, ``eyes_pose``,
    ``translation``; the files are named by ``flame_param_path`` (readMeshesFromTransforms)."""
    out = tmp_path / "ga-mono"
    export_nerf(cube, out, "mono_flame_avatar/393/EXP-1-head", every_nth=2)
    assert (out / "canonical_flame_param.npz").is_file()  # Scene's cue for readDynamicNerfInfo
    meshes = {}
    for name in ("transforms_train.json", "transforms_test.json"):
        for frame in json.loads((out / name).read_text())["frames"]:
            meshes.setdefault(frame["timestep_index"], dict(np.load(out / frame["flame_param_path"], allow_pickle=True)))
    assert sorted(meshes) == list(range(len(meshes))) and 0 in meshes
    first = meshes[0]
    assert first["static_offset"].shape == (1, 5023, 3) and not first["static_offset"].any()
    assert first["shape"].shape == (300,)
    shapes = {"expr": (1, 100), "rotation": (1, 3), "neck_pose": (1, 3), "jaw_pose": (1, 3), "eyes_pose": (1, 6),
              "translation": (1, 3)}
    for mesh in meshes.values():
        assert {k: v.shape for k, v in mesh.items() if k in shapes} == shapes
        assert {v.dtype for v in mesh.values()} == {np.dtype(np.float32)}
    canonical = np.load(out / "canonical_flame_param.npz")
    assert set(canonical.files) == set(first) and canonical["jaw_pose"].tolist() == [[pytest.approx(0.3), 0, 0]]


def test_gaussian_avatars_refuses_jpg(cube, tmp_path):
    with pytest.raises(UsageError, match=r"--format jpg cannot be read by gaussian-avatars: GaussianAvatars "
                                         r"appends '.png'"):
        export_nerf(cube, tmp_path / "x", "nvs/388/GLASSES", image_format="jpg")
    res = run_cli("export-nerf", cube, tmp_path / "y", "-s", "nvs/388/GLASSES", "--format", "jpg")
    assert res.returncode == 2 and "appends '.png'" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("export-nerf", cube, tmp_path / "z", "-s", "nvs/388/GLASSES", "--for", "mipnerf")
    assert res.returncode == 2 and "gaussian-avatars" in res.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# ---- VHAP (not packaged): its reader contract ---------------------------------------------------------------------

def test_vhap_nerf_dataset_contract_and_cy_from_the_bottom(cube, tmp_path):
    """VHAP's vhap/data/nerf_dataset.py NeRFDataset (commit 4b64ab7) builds K from each frame's fl_x, fl_y,
    cx, cy, opens file_path and fg_mask_path with PIL, loads flame_param_path, and asserts that
    ``timestep_indices`` is 0..N-1 for the whole folder and the train and val divisions. Its exporter
    (export_as_nerf_dataset.py, camera_convention_conversion 'opencv->opengl', vhap/util/camera.py)
    writes cy measured from the bottom row, and its renderer reads it that way (row from the bottom =
    fy * y / -z + cy in the OpenGL camera)."""
    out = tmp_path / "vhap"
    export_nerf(cube, out, "nvs/388/GLASSES", reader="vhap", every_nth=4, image_format="jpg", downscale=2)
    for division in ("transforms.json", "transforms_train.json", "transforms_val.json"):
        meta = json.loads((out / division).read_text())
        assert len(meta["timestep_indices"]) == max(meta["timestep_indices"]) + 1
    db = json.loads((out / "transforms.json").read_text())
    for frame in db["frames"]:
        assert {"timestep_index", "timestep_index_original", "timestep_id", "camera_index", "camera_id", "cx", "cy",
                "fl_x", "fl_y", "h", "w", "camera_angle_x", "camera_angle_y", "transform_matrix", "file_path",
                "fg_mask_path"} == set(frame)
        assert np.array(Image.open(out / frame["file_path"])).shape == (802, 550, 3)
        assert np.array(Image.open(out / frame["fg_mask_path"])).shape == (802, 550)
        k, w2c = cube_camera(cube, NVS, frame["camera_id"], 2)
        cam = (np.linalg.inv(frame["transform_matrix"]) @ np.append(head_centre(frame["timestep_index_original"],
                                                                                layout.NVS_FPS), 1))[:3]
        from_bottom = frame["fl_y"] * cam[1] / -cam[2] + frame["cy"]
        column = frame["fl_x"] * cam[0] / -cam[2] + frame["cx"]
        expected = project(k, w2c, head_centre(frame["timestep_index_original"], layout.NVS_FPS)[None])[0]
        assert (column, frame["h"] - from_bottom) == pytest.approx(tuple(expected), abs=1e-6)
    assert not (out / "points3d.ply").exists()  # VHAP's exporter writes none


# ---- instant-ngp (not packaged): its loader contract --------------------------------------------------------------

def test_instant_ngp_contract(cube, tmp_path):
    """instant-ngp's src/nerf_loader.cu load_nerf (commit 090aed6): given a folder it loads every json
    file in it; per frame read_focal_length takes fl_x / fl_y and read_lens the principal point as
    cx / w, cy / h (of the frame's w, h); images are read as RGBA and the alpha channel is the
    foreground; ``aabb`` maps that box into the unit cube the model trains in (scale = 1 / side,
    offset = 0.5 - centre * scale)."""
    out = tmp_path / "ingp"
    export_nerf(cube, out, "nvs/388/GLASSES", reader="instant-ngp", every_nth=4, downscale=2)
    assert sorted(p.name for p in out.glob("*.json")) == ["transforms.json"]  # no split file loaded twice
    db = json.loads((out / "transforms.json").read_text())
    assert db["aabb_scale"] == 1 and not (out / "fg_masks").exists()
    lo, hi = np.array(db["aabb"])
    scale = 1 / (hi - lo).max()
    offset = 0.5 - (lo + hi) / 2 * scale
    ds = nersemble_cube.open(cube)[NVS].to_dataset().nersemble.downscale(2)
    for frame in db["frames"]:
        serial, t = frame_identity(db, cube, frame["file_path"])
        k, w2c = cube_camera(cube, NVS, serial, 2)
        assert (frame["fl_x"], frame["fl_y"], frame["cx"] / frame["w"] * 550, frame["cy"] / frame["h"] * 802) == \
            pytest.approx((k[0, 0], k[1, 1], k[0, 2], k[1, 2]), abs=1e-9)
        rgba = imagecodecs.png_decode((out / frame["file_path"]).read_bytes())
        assert rgba.shape == (802, 550, 4)
        np.testing.assert_array_equal(rgba[..., 3], ds.alpha.sel(camera=serial, time=t).values)
        np.testing.assert_array_equal(rgba[..., :3], ds.images.sel(camera=serial, time=t).values)
        # the whole head lies in the unit cube instant-ngp trains in
        assert ((head_points(cube, t) * scale + offset > 0) & (head_points(cube, t) * scale + offset < 1)).all()


def test_instant_ngp_refuses_jpg(cube, tmp_path):
    with pytest.raises(UsageError, match="alpha channel"):
        export_nerf(cube, tmp_path / "x", "nvs/388/GLASSES", reader="instant-ngp", image_format="jpg")
