
import numpy as np
import pytest

from conftest import run_cli

pytest.importorskip("matplotlib")


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
    assert res.returncode == 4 and "no sequence 'nvs/999/sequences/x'" in res.stderr and "Traceback" not in res.stderr
    # the short spelling export-nerf accepts works here too
    res = run_cli("preview", cube, "--sequence", "nvs/388/GLASSES", "--frames", "1", "--out", tmp_path / "p.png")
    assert res.returncode == 0 and (tmp_path / "p.png").stat().st_size > 10_000, res.stderr
