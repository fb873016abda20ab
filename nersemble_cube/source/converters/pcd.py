"""Point Cloud Data files (``.pcd``, v0.7) as open3d writes them -> positions, normals, colours.

open3d writes ``FIELDS x y z [normal_x normal_y normal_z] [rgb]``, ``SIZE 4`` each, ``TYPE F``
(float32) for coordinates and normals and ``U`` (uint32, ``0x00RRGGBB``) for ``rgb``, in one of
three ``DATA`` layouts: ``ascii``, ``binary`` (little-endian, one record per point) and
``binary_compressed`` (LZF-compressed, one field after the other). All three are read here without
open3d; :func:`write_pcd` writes open3d's ``binary`` dialect (for the sample folder).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SourceError
from ..files import as_path

XYZ = ("x", "y", "z")
NORMALS = ("normal_x", "normal_y", "normal_z")
KNOWN_FIELD_SETS = (XYZ, XYZ + NORMALS, XYZ + ("rgb",), XYZ + NORMALS + ("rgb",))
_HEADER_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")


@dataclass(frozen=True)
class PointCloud:
    """One point cloud: ``positions`` and ``normals`` ``(point, 3)`` float32 (metres, world space;
    ``normals`` is ``None`` when the file has none), ``colors`` ``(point, 3)`` uint8 RGB or ``None``."""

    positions: np.ndarray
    normals: np.ndarray | None
    colors: np.ndarray | None

    def __len__(self) -> int:
        return len(self.positions)


def _parse_header(path: Path, data: bytes) -> tuple[dict[str, list[str]], int]:
    header: dict[str, list[str]] = {}
    pos = 0
    while "DATA" not in header:
        end = data.find(b"\n", pos)
        if end < 0:
            raise SourceError(f"{path}: truncated PCD header (no DATA line); download it again")
        line = data[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        if key not in _HEADER_KEYS:
            raise SourceError(f"{path}: not a PCD file (unexpected header line {line[:40]!r})")
        header[key] = values
    return header, pos


def _dtype(path: Path, header: dict[str, list[str]]) -> np.dtype:
    fields = tuple(header.get("FIELDS", []))
    if fields not in KNOWN_FIELD_SETS:
        raise SourceError(
            f"{path}: PCD fields {' '.join(fields)!r} are not a field set we know "
            f"(x y z [normal_x normal_y normal_z] [rgb], as open3d writes)"
        )
    sizes, types, counts = header.get("SIZE", []), header.get("TYPE", []), header.get("COUNT", ["1"] * len(fields))
    expected = [("4", "U" if f == "rgb" else "F", "1") for f in fields]
    if list(zip(sizes, types, counts)) != expected:
        raise SourceError(f"{path}: PCD field types SIZE {sizes} TYPE {types} COUNT {counts} differ from open3d's")
    return np.dtype([(f, "<u4" if f == "rgb" else "<f4") for f in fields])


@dataclass(frozen=True)
class PcdInfo:
    """What a ``.pcd`` header says: number of points and which optional fields it has."""

    path: Path
    n_points: int
    has_normals: bool
    has_colors: bool


MAX_POINTS = 1 << 28
"""More points than any scan holds (NeRSemble's clouds have a few million); a header beyond it is damaged."""
MAX_HEADER = 4096
MAX_ASCII_VALUE = 48
"""Characters an ascii PCD value and its separator may take (a float32 printed in full needs about 16)."""


def _points(path: Path, header: dict[str, list[str]]) -> int:
    try:
        n = int(header["POINTS"][0])
    except (KeyError, IndexError, ValueError):
        raise SourceError(f"{path}: PCD header without a POINTS count; download it again") from None
    if not 0 <= n <= MAX_POINTS:
        raise SourceError(f"{path}: PCD header says POINTS {n}, not a point count; download it again")
    return n


def _read_header(path: Path, f) -> tuple[dict[str, list[str]], int, np.dtype, int]:
    """The header of the open file ``f`` (at most :data:`MAX_HEADER` bytes read), checked: (header, data
    offset, record dtype, point count)."""
    header, pos = _parse_header(path, f.read(MAX_HEADER))
    return header, pos, _dtype(path, header), _points(path, header)


def probe_pcd(path: str | Path) -> PcdInfo:
    """Read and check only the header of a ``.pcd`` (and, for ``binary``, that the file is long enough)."""
    path = as_path(path)
    with path.open("rb") as f:
        header, pos, dtype, n = _read_header(path, f)
    if header["DATA"][:1] == ["binary"] and path.stat().st_size < pos + n * dtype.itemsize:
        raise SourceError(f"{path}: truncated PCD, {path.stat().st_size - pos} bytes for {n} points; download it again")
    return PcdInfo(path, n, NORMALS[0] in dtype.names, "rgb" in dtype.names)


def _read_body(path: Path, f, layout: str, n: int, dtype: np.dtype) -> bytes:
    """The data after the header, read no further than ``n`` points of ``layout`` can take."""
    if layout == "binary":
        return f.read(n * dtype.itemsize)
    if layout == "binary_compressed":
        sizes = f.read(8)
        compressed = struct.unpack("<I", sizes[:4])[0] if len(sizes) == 8 else 0
        if compressed > n * dtype.itemsize + n * dtype.itemsize // 16 + 64:  # LZF grows data by 1/32 at most
            raise SourceError(f"{path}: compressed PCD block of {compressed} bytes for {n} points; download it again")
        return sizes + f.read(compressed)
    limit = (n * len(dtype.names) + 1) * MAX_ASCII_VALUE  # + 1: room for trailing blank lines
    body = f.read(limit + 1)
    if len(body) > limit:
        raise SourceError(f"{path}: ascii PCD holds more data than its {n} points; download it again")
    return body


def read_pcd(path: str | Path) -> PointCloud:
    """Read an open3d-written ``.pcd``; raises :class:`SourceError` naming the file if it is
    truncated, damaged or has fields we do not know."""
    path = as_path(path)
    with path.open("rb") as f:
        header, pos, dtype, n = _read_header(path, f)
        layout = header["DATA"][0] if header["DATA"] else ""
        f.seek(pos)
        body = _read_body(path, f, layout, n, dtype)
    if layout == "ascii":
        rows = body.decode("ascii", errors="replace").split()
        if len(rows) != n * len(dtype.names):
            raise SourceError(f"{path}: truncated PCD, {len(rows)} values for {n} points of {len(dtype.names)} fields")
        table = np.array(rows, dtype=object).reshape(n, len(dtype.names))
        records = np.empty(n, dtype)
        try:
            for i, name in enumerate(dtype.names):
                values = table[:, i].astype(np.float64)
                if name == "rgb" and not ((values >= 0) & (values < 2 ** 32) & (values == np.floor(values))).all():
                    raise ValueError("rgb values are not packed 24-bit colours")
                records[name] = values.astype(dtype[name])
        except (ValueError, OverflowError) as e:
            raise SourceError(f"{path}: ascii PCD values that are not numbers of their fields ({e}); "
                              "download it again") from None
    elif layout == "binary":
        if len(body) < n * dtype.itemsize:
            raise SourceError(f"{path}: truncated PCD, {len(body)} bytes for {n} points of {dtype.itemsize} bytes")
        records = np.frombuffer(body, dtype, count=n)
    elif layout == "binary_compressed":
        if len(body) < 8:
            raise SourceError(f"{path}: truncated PCD (no compressed block)")
        compressed, raw = struct.unpack("<II", body[:8])
        if len(body) < 8 + compressed or raw != n * dtype.itemsize:
            raise SourceError(f"{path}: truncated or damaged compressed PCD block")
        import imagecodecs  # here: reading a cube's clouds (colors_as_float) does not need it

        try:
            planar = imagecodecs.lzf_decode(body[8:8 + compressed], out=raw) if raw else b""  # an empty cloud
        except imagecodecs.LzfError as e:  # the block's bytes are not LZF
            raise SourceError(f"{path}: damaged compressed PCD block ({e})") from None
        if len(planar) != raw:
            raise SourceError(f"{path}: damaged compressed PCD block ({len(planar)} of its {raw} bytes decode); "
                              "download it again")
        records = np.empty(n, dtype)
        offset = 0
        for name in dtype.names:
            width = dtype[name].itemsize * n
            records[name] = np.frombuffer(planar, dtype[name], count=n, offset=offset)
            offset += width
    else:
        raise SourceError(f"{path}: PCD DATA {layout!r} is none of ascii, binary, binary_compressed")

    names = dtype.names
    positions = np.stack([records[f] for f in XYZ], axis=-1)
    normals = np.stack([records[f] for f in NORMALS], axis=-1) if NORMALS[0] in names else None
    colors = None
    if "rgb" in names:
        rgb = records["rgb"]
        colors = np.stack([(rgb >> 16) & 0xFF, (rgb >> 8) & 0xFF, rgb & 0xFF], axis=-1).astype(np.uint8)
    return PointCloud(positions, normals, colors)


def write_pcd(path: str | Path, cloud: PointCloud) -> None:
    """Write ``cloud`` as open3d's ``write_point_cloud`` does by default (``DATA binary``)."""
    fields = XYZ + (NORMALS if cloud.normals is not None else ()) + (("rgb",) if cloud.colors is not None else ())
    dtype = np.dtype([(f, "<u4" if f == "rgb" else "<f4") for f in fields])
    records = np.empty(len(cloud), dtype)
    for i, f in enumerate(XYZ):
        records[f] = cloud.positions[:, i]
    if cloud.normals is not None:
        for i, f in enumerate(NORMALS):
            records[f] = cloud.normals[:, i]
    if cloud.colors is not None:
        c = cloud.colors.astype(np.uint32)
        records["rgb"] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    k = len(fields)
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(fields)}\nSIZE {' '.join(['4'] * k)}\n"
        f"TYPE {' '.join('U' if f == 'rgb' else 'F' for f in fields)}\nCOUNT {' '.join(['1'] * k)}\n"
        f"WIDTH {len(cloud)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(cloud)}\nDATA binary\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode("ascii") + records.tobytes())


def colors_as_float(colors: np.ndarray) -> np.ndarray:
    """uint8 colours -> float32 in [0, 1] exactly as open3d reads them (``c / 255.0`` in float64, then float32)."""
    return (colors.astype(np.float64) / 255.0).astype(np.float32)
