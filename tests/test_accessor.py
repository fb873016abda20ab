"""ds.nersemble: exact values on hand-made arrays, calibration that follows the pixels, laziness, the preprocess CLI."""


import dask.array as da
import numpy as np
import pytest
import xarray as xr

import nersemble_cube
from nersemble_cube.source import layout
from nersemble_cube.errors import NersembleCubeError, UsageError
from nersemble_cube.preprocessing import Steps
from nersemble_cube.source.sample import head_centre

from conftest import run_cli

SEQ = "nvs/388/sequences/GLASSES"


def tiny(images, alpha, k=None):
    """A 1-camera sequence Dataset from (time, y, x, 3) images and (time, y, x) alpha."""
    k = np.array([[10.0, 0, 4.0], [0, 10.0, 3.0], [0, 0, 1]]) if k is None else k
    return xr.Dataset(
        {"images": (("camera", "time", "y", "x", "channel"), np.asarray(images, np.uint8)[None]),
         "alpha": (("camera", "time", "y", "x"), np.asarray(alpha, np.uint8)[None]),
         "intrinsics": (("camera", "intrinsics_row", "intrinsics_col"), k[None]),
         "world_2_cam": (("camera", "pose_row", "pose_col"), np.eye(4)[None])},
        coords={"camera": ["222200042"], "time": np.arange(len(images))})


def test_composite_formula_and_rounding():
    images = np.full((1, 1, 3, 3), [200, 100, 0])
    alpha = np.array([[[0, 128, 255]]])
    ds = tiny(images, alpha)
    out = ds.nersemble.composite("white").images.values[0, 0, 0]
    a = np.array([0, 128, 255])[:, None] / 255
    expected = np.rint(np.array([200, 100, 0]) * a + 255 * (1 - a)).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert out[1].tolist() == [227, 177, 127]  # 200*128/255 + 255*127/255 = 227.39 -> 227, 177.2 -> 177, 127
    floats = ds.nersemble.composite((0, 0, 255), dtype="float32").images.values[0, 0, 0]
    np.testing.assert_allclose(floats[0], [0, 0, 1])
    np.testing.assert_allclose(floats[2], [200 / 255, 100 / 255, 0])
    with pytest.raises(NersembleCubeError, match="unknown background"):
        ds.nersemble.composite("pink")


def test_downscale_is_an_area_average_and_scales_intrinsics():
    images = np.arange(1 * 4 * 5 * 3).reshape(1, 4, 5, 3) % 251
    alpha = np.array([[[0, 255, 10, 20, 7], [255, 255, 30, 40, 7], [1, 2, 3, 4, 7], [5, 6, 7, 9, 7]]])
    ds = tiny(images, alpha).nersemble.downscale(2)
    assert ds.images.shape == (1, 1, 2, 2, 3) and ds.images.dtype == np.uint8  # the 5th column is dropped
    np.testing.assert_array_equal(ds.alpha.values[0, 0], [[191, 25], [4, 6]])  # 765/4=191.25, 100/4, 14/4=3.5->4, 26/4=6.5->6
    block = images[0, 0:2, 0:2].reshape(4, 3).mean(0)
    np.testing.assert_array_equal(ds.images.values[0, 0, 0, 0], np.rint(block))
    np.testing.assert_allclose(ds.intrinsics.values[0], [[5.0, 0, 2.0], [0, 5.0, 1.5], [0, 0, 1]])


def test_crop_shifts_the_principal_point():
    ds = tiny(np.zeros((2, 6, 8, 3)), np.zeros((2, 6, 8)))
    out = ds.nersemble.crop((2, 1, 7, 5))
    assert out.images.shape == (1, 2, 4, 5, 3)
    np.testing.assert_allclose(out.intrinsics.values[0], [[10.0, 0, 2.0], [0, 10.0, 2.0], [0, 0, 1]])
    assert out.crop_x0.values.tolist() == [2] and out.crop_y0.values.tolist() == [1]
    with pytest.raises(NersembleCubeError, match="leaves the 8x6 image"):
        ds.nersemble.crop((4, 0, 9, 2))


def test_to_float():
    ds = tiny(np.full((1, 1, 1, 3), 51), np.full((1, 1, 1), 255)).nersemble.to_float()
    assert ds.images.dtype == np.float32 and ds.images.values.ravel().tolist() == pytest.approx([0.2] * 3)
    assert ds.alpha.values.ravel().tolist() == [1.0]


def test_steps_are_lazy(cube):
    ds = nersemble_cube.open(cube)[SEQ].to_dataset()
    out = ds.nersemble.composite("white").nersemble.downscale(2).nersemble.to_float()
    assert isinstance(out.images.data, da.Array) and isinstance(out.alpha.data, da.Array)
    assert out.images.data.chunksize == (1, 1, 802, 550, 3)  # one task per camera-frame


@pytest.mark.parametrize("ops", ["downscale", "crop_to_alpha", "both"])
def test_calibration_follows_the_pixels(cube, ops):
    """The sample head's centre, projected with the new intrinsics, lands on the head in the new frames."""
    ds = nersemble_cube.open(cube)[SEQ].to_dataset()
    if ops in ("crop_to_alpha", "both"):
        ds = ds.nersemble.crop_to_alpha(8)
    if ops in ("downscale", "both"):
        ds = ds.nersemble.downscale(4)
    for serial in ds.camera.values:
        k, e = ds.intrinsics.sel(camera=serial).values, ds.world_2_cam.sel(camera=serial).values
        for t in (0, 4):
            p = e[:3, :3] @ head_centre(t, layout.NVS_FPS) + e[:3, 3]
            u, v = (k @ p)[:2] / p[2]
            assert ds.alpha.sel(camera=serial, time=t).values[int(v), int(u)] > 250
            # a point 1.3 head radii to the side (camera x) is background in the new frame too
            q = k @ (p + np.array([0.11 * 1.3, 0, 0]))
            x, y = int(q[0] / q[2]), int(q[1] / q[2])
            inside = 0 <= x < ds.sizes["x"] and 0 <= y < ds.sizes["y"]
            if ops == "downscale":
                assert inside and ds.alpha.sel(camera=serial, time=t).values[y, x] < 5
            else:  # a crop to the foreground (8 px margin) cuts that background away
                assert not inside


def test_crop_to_alpha_keeps_every_frame_of_the_foreground(cube):
    ds = nersemble_cube.open(cube)[SEQ].to_dataset()
    full = (ds.alpha > 0).sum(["y", "x"]).values
    cropped = ds.nersemble.crop_to_alpha(4)
    np.testing.assert_array_equal((cropped.alpha > 0).sum(["y", "x"]).values, full)
    boxes = ds.nersemble.alpha_boxes(4)  # one size for all cameras: the largest foreground box, margin included
    assert cropped.sizes["y"] == max(y1 - y0 for _, y0, _, y1 in boxes.values()) < 1604
    assert cropped.sizes["x"] == max(x1 - x0 for x0, _, x1, _ in boxes.values()) < 1100


def test_preprocess_cli_equals_the_accessor(cube, tmp_path, cluster_address):
    # a bad argument is refused before anything is created (by the library as by the CLI's choices), so the
    # same command with a good one then runs
    with pytest.raises(UsageError, match="unknown background 'purple'"):
        nersemble_cube.preprocess(cube, tmp_path / "p.zarr", Steps(composite="purple"))
    bad = run_cli("preprocess", cube, tmp_path / "p.zarr", "--background", "purple")
    assert bad.returncode == 2 and "purple" in bad.stderr and not (tmp_path / "p.zarr").exists()
    res = run_cli("preprocess", cube, tmp_path / "p.zarr", "--background", "white", "--crop-to-alpha", "8",
                  "--downscale", "2", "--scheduler", cluster_address)  # a running cluster's workers write it
    assert res.returncode == 0, res.stderr
    written = nersemble_cube.open(tmp_path / "p.zarr")
    src = nersemble_cube.open(cube)[SEQ].to_dataset()
    expected = src.nersemble.composite("white").nersemble.crop_to_alpha(8).nersemble.downscale(2)
    got = written[SEQ].to_dataset()
    np.testing.assert_array_equal(got.images.values, expected.images.values)
    np.testing.assert_array_equal(got.alpha.values, expected.alpha.values)
    np.testing.assert_array_equal(got.intrinsics.values, expected.intrinsics.values)
    assert written.attrs["preprocessing"] == {"composite": "white", "crop_to_alpha": 8, "downscale": 2, "to_float": False,
                                            "color_correct": False}
    assert "pointclouds" in written[SEQ].children  # other nodes copied
    res = run_cli("preprocess", cube, tmp_path / "p.zarr")
    assert res.returncode == 4 and "already a cube" in res.stderr


def test_multiscale_levels_at_conversion(sample_dir, tmp_path):
    target = tmp_path / "c.zarr"
    nersemble_cube.convert(sample_dir, target, benchmarks=["nvs"], scales=(1, 2, 4))
    full = nersemble_cube.open(target)
    assert full.attrs["multiscales"] == [1, 2, 4]
    for factor in (2, 4):
        level = nersemble_cube.open(target, scale=factor)
        ds = level[SEQ].to_dataset()
        expected = full[SEQ].to_dataset().nersemble.downscale(factor)
        assert ds.images.shape == (3, 5, 1604 // factor, 1100 // factor, 3)
        np.testing.assert_array_equal(ds.images.values, expected.images.values)
        np.testing.assert_array_equal(ds.alpha.values, expected.alpha.values)
        np.testing.assert_allclose(ds.intrinsics.values, expected.intrinsics.values)
        calib = level["nvs/388/calibration"].to_dataset()
        np.testing.assert_allclose(calib.intrinsics.values[:, :2], full["nvs/388/calibration"].intrinsics.values[:, :2] / factor)
        files = [p for p in (target / f"scales/{factor}" / SEQ / "images/c").rglob("*") if p.is_file()]
        assert len(files) == 3  # sharded like full resolution: one file per camera and shard
    with pytest.raises(nersemble_cube.StoreError, match=r"no scale 3 in this cube \(it has \[1, 2, 4\]\)"):
        nersemble_cube.open(target, scale=3)
    assert nersemble_cube.convert(sample_dir, target, benchmarks=["nvs"], scales=(1, 2, 4)).written == []
