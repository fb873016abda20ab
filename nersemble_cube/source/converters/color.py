"""``calibration/color_calibration.json`` (full dataset) -> per-camera colour-correction matrices, and the
correction itself, computed as ``nersemble_data.util.color_correction.correct_color`` does.

The file maps each camera serial to a ``(3, terms)`` matrix of the polynomial model of Cheung et al.
(2004) (colour-science's ``matrix_augmented_Cheung2004``), applied in linear sRGB: decode the sRGB
transfer function, expand each pixel's RGB into ``terms`` monomials, multiply, encode again. The model is
non-linear (products and powers of R, G, B), so it cannot be folded into a 3x3 matrix. The toolkit uses
colour-science for it; this module is the same arithmetic in numpy, in the same order, so results match to
the last bit in float64 (tests compare with colour-science itself).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SourceError
from ..files import as_path

STRIP = 1 << 18
"""Pixels corrected at a time (a 3208x2200 frame expanded to 10 terms at once would take 560 MB)."""
TABLE_PIXELS = 1 << 21
"""uint8 images of at least this many pixels (2 MP: every full-dataset frame) are corrected through a table of
every 8-bit colour (:func:`_table`): the same values, ~15x faster per frame once the table is built (~3 s)."""
TABLES_KEPT = 16
"""Colour tables kept (64 MiB each: one per camera of a 16-camera sequence)."""
METHOD = "Cheung 2004 polynomial (colour-science matrix_augmented_Cheung2004) in linear sRGB"
"""What ``color_correction`` means, recorded in the cube's attrs."""

# the monomials of each number of terms, as colour-science lists them (exponents of R, G, B); 1 = (0, 0, 0)
_R, _G, _B, _1 = (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0)
_PAIRS = [(1, 1, 0), (1, 0, 1), (0, 1, 1)]
_SQUARES = [(2, 0, 0), (0, 2, 0), (0, 0, 2)]
_RGB = (1, 1, 1)
_MIXED = [(2, 1, 0), (0, 2, 1), (1, 0, 2)]
_MIXED2 = [(2, 0, 1), (1, 2, 0), (0, 1, 2)]
_CUBES = [(3, 0, 0), (0, 3, 0), (0, 0, 3)]
_QUARTIC = [(2, 1, 1), (1, 2, 1), (1, 1, 2)]
TERMS: dict[int, list[tuple[int, int, int]]] = {
    3: [_R, _G, _B],
    4: [_R, _G, _B, _1],
    5: [_R, _G, _B, _RGB, _1],
    7: [_R, _G, _B, *_PAIRS, _1],
    8: [_R, _G, _B, *_PAIRS, _RGB, _1],
    10: [_R, _G, _B, *_PAIRS, *_SQUARES, _1],
    11: [_R, _G, _B, *_PAIRS, *_SQUARES, _RGB, _1],
    14: [_R, _G, _B, *_PAIRS, *_SQUARES, _RGB, *_CUBES, _1],
    16: [_R, _G, _B, *_PAIRS, *_SQUARES, _RGB, *_MIXED, *_CUBES],
    17: [_R, _G, _B, *_PAIRS, *_SQUARES, _RGB, *_MIXED, *_CUBES, _1],
    19: [_R, _G, _B, *_PAIRS, *_SQUARES, _RGB, *_MIXED, *_MIXED2, *_CUBES],
    20: [_R, _G, _B, *_PAIRS, *_SQUARES, _RGB, *_MIXED, *_MIXED2, *_CUBES, _1],
    22: [_R, _G, _B, *_PAIRS, *_SQUARES, _RGB, *_MIXED, *_MIXED2, *_CUBES, *_QUARTIC],
}
"""Monomials (exponents of R, G, B) of colour-science's ``matrix_augmented_Cheung2004`` for each number of
terms it defines (its 35-term model is left out: no colour calibration uses it)."""


@dataclass(frozen=True)
class ColorCalibration:
    """Per-camera colour-correction matrices, sorted by serial: ``matrices`` ``(camera, 3, terms)`` float64."""

    serials: list[str]
    matrices: np.ndarray

    @property
    def terms(self) -> int:
        return self.matrices.shape[-1]


def read_color_calibration(path: str | Path) -> ColorCalibration:
    """Parse ``color_calibration.json``; raises :class:`SourceError` naming the file if it is malformed
    (not a serial -> 3xN mapping, N a number of terms of the model, the same N for every camera)."""
    path = as_path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceError(f"{path}: not a readable JSON file ({e}); download it again") from None
    if not isinstance(data, dict) or not data:
        raise SourceError(f"{path}: malformed color_calibration.json, expected a mapping of serial -> 3xN matrix")
    matrices = {}
    for serial, value in data.items():
        try:
            m = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            m = None
        if m is None or m.ndim != 2 or m.shape[0] != 3 or m.shape[1] not in TERMS or not np.isfinite(m).all():
            raise SourceError(f"{path}: malformed color_calibration.json, {serial!r} is not a finite 3xN matrix "
                              f"with N in {sorted(TERMS)}")
        matrices[str(serial)] = m
    if len({m.shape for m in matrices.values()}) > 1:
        raise SourceError(f"{path}: malformed color_calibration.json, the cameras' matrices differ in shape")
    serials = sorted(matrices)
    return ColorCalibration(serials, np.stack([matrices[s] for s in serials]))


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """colour-science's ``eotf_sRGB`` (its sign-preserving power)."""
    threshold = 0.0031308 * 12.92  # its eotf_inverse_sRGB(0.0031308), which takes the linear branch
    a = (v + 0.055) / 1.055
    return np.where(threshold >= v, v / 12.92, np.sign(a) * np.abs(a) ** 2.4)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """colour-science's ``eotf_inverse_sRGB``."""
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * (np.sign(v) * np.abs(v) ** (1 / 2.4)) - 0.055)


def _expand(rgb: np.ndarray, terms: int) -> np.ndarray:
    """``(n, 3)`` float64 -> ``(n, terms)``: each pixel's monomials, in colour-science's order."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    out = np.empty((len(rgb), terms))
    for j, (er, eg, eb) in enumerate(TERMS[terms]):
        out[:, j] = _monomial(r, g, b, er, eg, eb)
    return out


def _monomial(r: np.ndarray, g: np.ndarray, b: np.ndarray, er: int, eg: int, eb: int) -> np.ndarray | float:
    """``r**er * g**eg * b**eb`` multiplied in colour-science's order (powers first, then left to right)."""
    factors = [x if e == 1 else x ** e for x, e in ((r, er), (g, eg), (b, eb)) if e]
    if not factors:
        return 1.0
    value = factors[0]
    for f in factors[1:]:
        value = value * f
    return value


def correct_color(image: np.ndarray, ccm: np.ndarray) -> np.ndarray:
    """The toolkit's ``correct_color(image, ccm)``: ``image`` ``(..., 3)``, uint8 (0-255) or float (0-1 sRGB);
    ``ccm`` ``(3, terms)``. A uint8 image is divided by 255 first and returned as uint8 with the toolkit's
    ``np.clip(x * 255, 0, 255).astype(np.uint8)`` (truncating); a float image comes back float64, unclipped
    (values may leave [0, 1]). Large uint8 images go through a table of every colour (:data:`TABLE_PIXELS`)."""
    is_uint8 = image.dtype == np.uint8
    if is_uint8 and image.size >= 3 * TABLE_PIXELS:
        table = _table(np.ascontiguousarray(ccm, dtype=np.float64).tobytes(), ccm.shape[-1])
        packed = (image[..., 0].astype(np.uint32) << 16) | (image[..., 1].astype(np.uint32) << 8) | image[..., 2]
        return np.ascontiguousarray(table[packed].view(np.uint8).reshape(*image.shape[:-1], 4)[..., :3])
    return _compute(image, ccm)


def _compute(image: np.ndarray, ccm: np.ndarray) -> np.ndarray:
    """:func:`correct_color` computed pixel by pixel, in strips of :data:`STRIP` pixels."""
    is_uint8 = image.dtype == np.uint8
    pixels = np.asarray(image).reshape(-1, 3)
    out = np.empty(pixels.shape, np.uint8 if is_uint8 else np.float64)
    for start in range(0, len(pixels), STRIP):  # strips keep the (pixels, terms) expansion small
        part = pixels[start:start + STRIP]
        rgb = part / 255.0 if is_uint8 else part.astype(np.float64)
        corrected = _linear_to_srgb(np.dot(ccm, _expand(_srgb_to_linear(rgb), ccm.shape[-1]).T).T)
        out[start:start + STRIP] = np.clip(corrected * 255, 0, 255).astype(np.uint8) if is_uint8 else corrected
    return out.reshape(np.shape(image))


@functools.lru_cache(maxsize=TABLES_KEPT)
def _table(ccm: bytes, terms: int) -> np.ndarray:
    """The corrected colour of every 8-bit RGB triple ``(r << 16) | (g << 8) | b``, packed in a uint32 (RGB and
    a zero byte, in memory order): :func:`correct_color` of all 2**24 colours, computed like any image."""
    matrix = np.frombuffer(ccm, np.float64).reshape(3, terms)
    levels = np.arange(256, dtype=np.uint8)
    colours = np.empty((256, 256, 256, 4), np.uint8)
    colours[..., 0], colours[..., 1], colours[..., 2] = levels[:, None, None], levels[None, :, None], levels
    colours[..., :3] = _compute(colours[..., :3].reshape(-1, 3), matrix).reshape(256, 256, 256, 3)
    colours[..., 3] = 0
    return colours.reshape(-1, 4).view(np.uint32).ravel()
