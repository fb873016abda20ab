import numpy as np
import pytest

from nersemble_cube.source.converters.flame import SHAPES, FlameTracking, read_flame_tracking, write_flame_tracking
from nersemble_cube.errors import SourceError
from nersemble_cube.source.sample import flame_tracking


def _arrays(n=6):
    t = flame_tracking(n, seed=1)
    return {k: getattr(t, k) for k in SHAPES}


def test_fields_are_those_of_the_toolkit_dataclass():
    # nersemble_benchmark.data.benchmark_data.FlameTracking (it imports open3d, so it is compared by hand)
    assert list(SHAPES) == ["shape", "expression", "rotation", "rotation_matrices", "translation", "jaw", "frames",
                            "scale", "neck", "eyes"]
    assert list(FlameTracking.__dataclass_fields__) == list(SHAPES)


def test_read_is_exact(tmp_path):
    arrays = _arrays()
    np.savez(tmp_path / "t.npz", **arrays)
    t = read_flame_tracking(tmp_path / "t.npz")
    for k, v in arrays.items():
        assert getattr(t, k).dtype == v.dtype
        np.testing.assert_array_equal(getattr(t, k), v)
    assert t.n_frames == 6


def test_write_then_read(tmp_path):
    t = flame_tracking(4, seed=2)
    write_flame_tracking(tmp_path / "x/t.npz", t)
    back = read_flame_tracking(tmp_path / "x/t.npz")
    assert all(np.array_equal(getattr(back, k), getattr(t, k)) for k in SHAPES)


@pytest.mark.parametrize("damage, message", [
    (lambda a: a.pop("eyes"), r"without keys \['eyes'\]"),
    (lambda a: a.__setitem__("jaw", a["jaw"][:-1]), r"'jaw' has shape \(5, 3\), expected \(6, 3\)"),
    (lambda a: a.__setitem__("shape", a["shape"][:, :100]), r"'shape' has shape \(1, 100\), expected \(1, 300\)"),
    (lambda a: a["expression"].__setitem__((2, 5), np.nan), "'expression' contains NaN"),
    (lambda a: a.__setitem__("frames", a["frames"].reshape(2, 3)), r"'frames' has shape \(2, 3\), expected \(T,\)"),
])
def test_bad_tracking_names_file_and_problem(tmp_path, damage, message):
    arrays = _arrays()
    damage(arrays)
    np.savez(tmp_path / "flame2023_tracking_v2.npz", **arrays)
    with pytest.raises(SourceError, match=message) as e:
        read_flame_tracking(tmp_path / "flame2023_tracking_v2.npz")
    assert "flame2023_tracking_v2.npz" in str(e.value)


def test_not_an_npz(tmp_path):
    (tmp_path / "t.npz").write_bytes(b"garbage")
    with pytest.raises(SourceError, match="not a readable npz"):
        read_flame_tracking(tmp_path / "t.npz")
