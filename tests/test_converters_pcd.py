from pathlib import Path

import numpy as np
import pytest

from nersemble_cube.source.converters.pcd import PointCloud, colors_as_float, read_pcd, write_pcd
from nersemble_cube.errors import SourceError

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = np.load(FIXTURES / "open3d_expected.npz")  # what open3d's reader returned (tests/fixtures/make_*.py)


@pytest.mark.parametrize("dialect", ["binary", "ascii", "binary_compressed", "xyz_binary"])
def test_equal_to_open3d_reader(dialect):
    cloud = read_pcd(FIXTURES / f"open3d_{dialect}.pcd")
    np.testing.assert_array_equal(cloud.positions, EXPECTED[f"{dialect}_points"])
    assert cloud.positions.dtype == np.float32
    if dialect == "xyz_binary":
        assert cloud.normals is None and cloud.colors is None
        assert EXPECTED[f"{dialect}_colors"].shape == (0, 3)
        return
    np.testing.assert_array_equal(cloud.normals, EXPECTED[f"{dialect}_normals"])
    assert cloud.colors.dtype == np.uint8
    np.testing.assert_array_equal(colors_as_float(cloud.colors), EXPECTED[f"{dialect}_colors"])


def test_our_writer_speaks_open3d_binary_dialect(tmp_path):
    ref = read_pcd(FIXTURES / "open3d_binary.pcd")
    write_pcd(tmp_path / "ours.pcd", ref)
    assert (tmp_path / "ours.pcd").read_bytes() == (FIXTURES / "open3d_binary.pcd").read_bytes()


def test_unknown_fields(tmp_path):
    data = (FIXTURES / "open3d_binary.pcd").read_bytes().replace(b"FIELDS x y z normal_x", b"FIELDS x y z intens_x")
    (tmp_path / "frame_00000.pcd").write_bytes(data)
    with pytest.raises(SourceError, match=r"frame_00000.pcd: PCD fields .* not a field set we know"):
        read_pcd(tmp_path / "frame_00000.pcd")


@pytest.mark.parametrize("dialect", ["binary", "ascii", "binary_compressed"])
def test_truncated(tmp_path, dialect):
    data = (FIXTURES / f"open3d_{dialect}.pcd").read_bytes()
    (tmp_path / "frame_00003.pcd").write_bytes(data[: len(data) - 100])
    with pytest.raises(SourceError, match="frame_00003.pcd: truncated"):
        read_pcd(tmp_path / "frame_00003.pcd")


def test_truncated_header(tmp_path):
    (tmp_path / "frame_00000.pcd").write_bytes(b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\n")
    with pytest.raises(SourceError, match="truncated PCD header"):
        read_pcd(tmp_path / "frame_00000.pcd")


def test_roundtrip_without_normals(tmp_path):
    cloud = PointCloud(np.arange(12, dtype=np.float32).reshape(4, 3), None, np.full((4, 3), 7, np.uint8))
    write_pcd(tmp_path / "a.pcd", cloud)
    back = read_pcd(tmp_path / "a.pcd")
    np.testing.assert_array_equal(back.positions, cloud.positions)
    assert back.normals is None
    np.testing.assert_array_equal(back.colors, cloud.colors)


def test_a_compressed_block_that_decodes_short_is_named(tmp_path):
    """The LZF block is well formed but holds fewer bytes than its header and the point count say."""
    import struct

    import imagecodecs

    fixture = (FIXTURES / "open3d_binary_compressed.pcd").read_bytes()
    header = fixture[: fixture.index(b"DATA binary_compressed\n") + len(b"DATA binary_compressed\n")]
    raw = 1000 * 7 * 4
    short = imagecodecs.lzf_encode(bytes(range(256)) * 8)  # 2048 bytes, not 28000
    (tmp_path / "short.pcd").write_bytes(header + struct.pack("<II", len(short), raw) + short)
    with pytest.raises(SourceError, match=r"short.pcd: damaged compressed PCD block \(2048 of its 28000 bytes"):
        read_pcd(tmp_path / "short.pcd")
