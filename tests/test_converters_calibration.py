import json

import numpy as np
import pytest

from nersemble_cube.source.converters.calibration import read_calibration
from nersemble_cube.errors import SourceError


def _write(tmp_path, doc) -> str:
    path = tmp_path / "camera_params.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


_C, _S = np.cos(0.5), np.sin(0.5)
RIGID = [[_C, -_S, 0.0, 0.1], [_S, _C, 0.0, -0.2], [0.0, 0.0, 1.0, 1.5], [0.0, 0.0, 0.0, 1.0]]
GOOD = {
    "world_2_cam": {"222200042": RIGID, "220700191": np.eye(4).tolist()},
    "intrinsics": {"222200042": [[3000.5, 0, 550.25], [0, 3001, 802], [0, 0, 1]], "220700191": np.eye(3).tolist()},
}


def test_matrices_are_read_exactly_and_sorted_by_serial(tmp_path):
    calib = read_calibration(_write(tmp_path, GOOD))
    assert calib.serials == ["220700191", "222200042"]
    assert calib.world_2_cam.dtype == np.float64 and calib.intrinsics.dtype == np.float64
    np.testing.assert_array_equal(calib.world_2_cam[1], RIGID)
    np.testing.assert_array_equal(calib.intrinsics[1], [[3000.5, 0, 550.25], [0, 3001, 802], [0, 0, 1]])
    sub = calib.select(["222200042"])
    assert sub.serials == ["222200042"] and sub.world_2_cam.shape == (1, 4, 4)


@pytest.mark.parametrize("doc, message", [
    ("{not json", "not a readable JSON file"),
    ([1, 2], "expected a JSON object"),
    ({"intrinsics": GOOD["intrinsics"]}, "no 'world_2_cam' mapping"),
    ({**GOOD, "intrinsics": {**GOOD["intrinsics"], "222200042": [[1, 2], [3, 4]]}}, r"intrinsics\['222200042'\] is not a finite 3x3"),
    ({**GOOD, "world_2_cam": {**GOOD["world_2_cam"], "220700191": [["a"] * 4] * 4}}, r"world_2_cam\['220700191'\]"),
    ({**GOOD, "intrinsics": {"222200042": GOOD["intrinsics"]["222200042"]}}, "list different cameras"),
    # accepted silently before: numbers as strings or booleans, an all-zero pose, a camera matrix without focus
    ({**GOOD, "world_2_cam": {**GOOD["world_2_cam"], "220700191": [[str(v) for v in r] for r in RIGID]}},
     r"world_2_cam\['220700191'\] is not a finite 4x4 matrix of numbers"),
    ({**GOOD, "intrinsics": {**GOOD["intrinsics"], "220700191": [[True, False, 0], [0, True, 0], [0, 0, True]]}},
     r"intrinsics\['220700191'\] is not a finite 3x3 matrix of numbers"),
    ({**GOOD, "world_2_cam": {**GOOD["world_2_cam"], "220700191": np.zeros((4, 4)).tolist()}},
     r"world_2_cam\['220700191'\] is not a rigid transform"),
    ({**GOOD, "intrinsics": {**GOOD["intrinsics"], "220700191": np.zeros((3, 3)).tolist()}},
     r"intrinsics\['220700191'\] is not a pinhole camera matrix"),
])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, doc, message):
    with pytest.raises(SourceError, match=message) as e:
        read_calibration(_write(tmp_path, doc))
    assert "camera_params.json" in str(e.value)


def test_nan_is_refused(tmp_path):
    doc = json.dumps(GOOD).replace("3000.5", "NaN")
    with pytest.raises(SourceError, match="not a finite 3x3"):
        read_calibration(_write(tmp_path, doc))
