
import numpy as np
import pytest

from conftest import run_cli


def _png(path):
    from matplotlib.image import imread

    return imread(path)


def test_contact_sheet_and_rig(cube, tmp_path):
    from nersemble_cube.preview import contact_sheet, rig_plot

    sheet = _png(contact_sheet(cube, "nvs/388/sequences/GLASSES", tmp_path / "sheet.png", frames=2))
    rig = _png(rig_plot(cube, "nvs/388/calibration", tmp_path / "rig.png"))
    assert sheet.shape[0] > 200 and sheet.shape[1] > 200  # 3 camera columns x 2 frame rows
    red = (rig[..., 0] > 0.7) & (rig[..., 1] < 0.3) & (rig[..., 2] < 0.3)
    assert red.sum() > 50  # hold-out cameras drawn in red
    assert len(np.unique(sheet.reshape(-1, sheet.shape[-1]), axis=0)) > 100  # real pictures, not blank


def test_preview_cli_errors(cube, tmp_path):
    res = run_cli("preview", cube, "--sequence", "nvs/999/x", "--out", tmp_path / "p.png")
    assert res.returncode == 2 and "nvs has no '999'; it has ['388']" in res.stderr and "Traceback" not in res.stderr
    # the short spelling export-nerf accepts works here too
    res = run_cli("preview", cube, "-s", "nvs/388/GLASSES", "--n-frames", "1", "--out", tmp_path / "p.png")
    assert res.returncode == 0 and (tmp_path / "p.png").stat().st_size > 10_000, res.stderr


def test_show_in_a_notebook_is_upright_and_at_the_frames_aspect(cube):
    import nersemble_cube

    ds = nersemble_cube.open(cube)["nvs/388/sequences/GLASSES"].to_dataset()
    fig = ds.nersemble.show(frames=2, alpha="none", factor=4)
    assert len(fig.axes) == 3 * 2  # cameras x frames
    first = fig.axes[0].images[0].get_array()
    expected = ds.images.isel(camera=0, time=0).values.reshape(401, 4, 275, 4, 3).mean((1, 3)) / 255
    np.testing.assert_allclose(first, expected, atol=1e-6)  # the frame itself, row 0 on top
    assert fig.axes[0].get_ylim()[0] > fig.axes[0].get_ylim()[1]  # y grows downwards, as in the image
    width, height = fig.get_size_inches()
    assert width / 3 == pytest.approx(1.7 * 1100 / 1604) and height == pytest.approx(2 * 1.7 + 0.4)
    mono = nersemble_cube.open(cube)["mono_flame_avatar/393/sequences/EXP-1-head"].to_dataset()
    assert mono.nersemble.show(frames=1).get_size_inches()[0] >= 3  # one 512x512 camera keeps a readable width


def test_plain_xarray_imshow_as_the_readme_calls_it_is_upright_with_square_pixels(cube):
    import matplotlib

    matplotlib.use("Agg")
    import nersemble_cube

    ds = nersemble_cube.open(cube)["nvs/388/sequences/GLASSES"].to_dataset()
    frame = ds.images.sel(camera="222200042", time=4)
    image = frame.plot.imshow(yincrease=False, size=4, aspect=ds.sizes["x"] / ds.sizes["y"])  # README's call
    ax = image.axes
    assert ax.get_ylim() == (1603.5, -0.5)  # row 0 at the top
    box = ax.get_position()
    width, height = ax.figure.get_size_inches()
    assert (box.width * width) / (box.height * height) == pytest.approx(1100 / 1604, rel=0.02)  # square pixels
    plain = frame.plot.imshow()  # without them: upside down (what the README warns of)
    assert plain.axes.get_ylim() == (-0.5, 1603.5)


def test_the_rig_has_one_scale_on_every_axis(cube):
    import nersemble_cube
    from nersemble_cube.preview import rig_figure

    ax = rig_figure(nersemble_cube.open(cube)["nvs/388/calibration"].to_dataset(), "rig").axes[0]
    spans = [hi - lo for lo, hi in (ax.get_xlim(), ax.get_ylim(), ax.get_zlim())]
    assert spans == pytest.approx([spans[0]] * 3)
