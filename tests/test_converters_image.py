import numpy as np
import pytest

from nersemble_cube.source.converters.image import png_size, read_png, write_png
from nersemble_cube.errors import SourceError

from conftest import decode_pyav


def test_png_roundtrip_is_lossless_and_equal_to_an_independent_decode(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    write_png(tmp_path / "rgb.png", image)
    assert png_size(tmp_path / "rgb.png") == (512, 512)
    np.testing.assert_array_equal(read_png(tmp_path / "rgb.png", (512, 512)), image)
    np.testing.assert_array_equal(decode_pyav(tmp_path / "rgb.png")[0], image)


def test_wrong_size_and_not_a_png(tmp_path):
    write_png(tmp_path / "rgb.png", np.zeros((256, 300, 3), np.uint8))
    assert png_size(tmp_path / "rgb.png") == (256, 300)
    with pytest.raises(SourceError, match="rgb.png: image is 300x256, expected 512x512"):
        read_png(tmp_path / "rgb.png", (512, 512))
    (tmp_path / "bad.png").write_bytes(b"JFIF" * 10)
    with pytest.raises(SourceError, match="bad.png: not a png"):
        png_size(tmp_path / "bad.png")
