"""Property-based tests (hypothesis): the pcd parser, the ragged point-cloud layout, the submission path
rules and the zip validator hold for generated inputs, damaged ones included, not only for our samples."""

import io
import os
import re
import struct
import zipfile
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nersemble_cube.conversion.tasks import CLOUD_BATCH_POINTS, cloud_layout
from nersemble_cube.errors import InvalidSubmissionError, SourceError
from nersemble_cube.source.converters.pcd import PointCloud, read_pcd, write_pcd
from nersemble_cube.submission.rules import expected_videos, is_unsafe, svfr_image_keys, video_path
from nersemble_cube.submission.validate import validate_submission

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

floats = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@st.composite
def clouds(draw) -> PointCloud:
    n = draw(st.integers(0, 40))
    xyz = np.array(draw(st.lists(floats, min_size=3 * n, max_size=3 * n)), np.float32).reshape(n, 3)
    normals = np.array(draw(st.lists(floats, min_size=3 * n, max_size=3 * n)), np.float32).reshape(n, 3) \
        if draw(st.booleans()) else None
    colors = np.array(draw(st.lists(st.integers(0, 255), min_size=3 * n, max_size=3 * n)), np.uint8).reshape(n, 3) \
        if draw(st.booleans()) else None
    return PointCloud(xyz, normals, colors)


def _pcd_bytes(cloud: PointCloud, layout: str) -> bytes:
    """The cloud as open3d writes each DATA layout (written here independently of write_pcd)."""
    fields = [("x", "F"), ("y", "F"), ("z", "F")]
    columns = [cloud.positions[:, i] for i in range(3)]
    if cloud.normals is not None:
        fields += [("normal_x", "F"), ("normal_y", "F"), ("normal_z", "F")]
        columns += [cloud.normals[:, i] for i in range(3)]
    if cloud.colors is not None:
        fields.append(("rgb", "U"))
        c = cloud.colors.astype(np.uint32)
        columns.append((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2])
    n = len(cloud)
    header = (f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS {' '.join(f for f, _ in fields)}\n"
              f"SIZE {' '.join('4' for _ in fields)}\nTYPE {' '.join(t for _, t in fields)}\n"
              f"COUNT {' '.join('1' for _ in fields)}\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\n"
              f"DATA {layout}\n").encode()
    typed = [col.astype("<u4" if t == "U" else "<f4") for col, (_, t) in zip(columns, fields)]
    if layout == "ascii":
        rows = [" ".join(repr(float(v)) if t == "F" else str(int(v)) for v, (_, t) in zip(row, fields))
                for row in zip(*typed)]
        return header + ("\n".join(rows) + "\n").encode()
    planar = b"".join(col.tobytes() for col in typed)
    packed = imagecodecs.lzf_encode(planar) if planar else b""
    return header + struct.pack("<II", len(packed), len(planar)) + packed


EMPTY = PointCloud(np.zeros((0, 3), np.float32), None, None)


@FAST
@given(cloud=clouds(), layout=st.sampled_from(["binary", "ascii", "binary_compressed"]))
@example(cloud=EMPTY, layout="ascii")  # found by hypothesis: an empty ascii cloud was "more data than its 0 points"
@example(cloud=EMPTY, layout="binary_compressed")  # found by hypothesis: LZF refused to decode 0 bytes
def test_pcd_round_trip_in_every_layout(tmp_path, cloud, layout):
    path = tmp_path / "frame_00000.pcd"
    if layout == "binary":
        write_pcd(path, cloud)
    else:
        path.write_bytes(_pcd_bytes(cloud, layout))
    back = read_pcd(path)
    np.testing.assert_array_equal(back.positions, cloud.positions)
    for name in ("normals", "colors"):
        ours, theirs = getattr(back, name), getattr(cloud, name)
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            np.testing.assert_array_equal(ours, theirs)


@FAST
@given(cloud=clouds(), layout=st.sampled_from(["binary", "ascii", "binary_compressed"]),
       damage=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 10_000))
def test_damaged_pcd_files_read_right_or_raise_source_error(tmp_path, cloud, layout, damage, cut):
    """Overwritten bytes and truncation anywhere: the parser returns a cloud of exactly the (possibly damaged)
    header's POINTS, positions and every other field alike, or raises SourceError (never another exception)."""
    data = bytearray(_pcd_bytes(cloud, layout))
    for offset, value in damage:
        data[offset % len(data)] = value
    path = tmp_path / "frame_00000.pcd"
    data = bytes(data[: max(1, len(data) - cut % len(data))])
    path.write_bytes(data)
    try:
        back = read_pcd(path)
    except SourceError:
        return
    points = int(re.search(rb"^POINTS (\d+)$", data, re.MULTILINE)[1])  # read: the header had a POINTS line
    assert back.positions.shape == (points, 3) and back.positions.dtype == np.float32
    assert all(f is None or len(f) == points for f in (back.normals, back.colors))


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 3 * CLOUD_BATCH_POINTS // 2), max_size=12),
       chunk=st.sampled_from([1, 7, 4096, 262_144]), start_chunks=st.integers(0, 3))
def test_ragged_point_cloud_layout_round_trips(counts, chunk, start_chunks):
    """Clouds packed by cloud_layout: each at its own offset, none overlapping, batches starting on chunk
    boundaries (no two tasks share a chunk), and each cloud read back from [offset, offset + count)."""
    start = start_chunks * chunk
    offsets, batches = cloud_layout(counts, start, chunk)
    assert [i for b in batches for i in b] == list(range(len(counts)))
    assert all(offsets[b.start] % chunk == 0 for b in batches)
    ends = [o + n for o, n in zip(offsets, counts)]
    assert all(o >= start for o in offsets) and all(e <= o2 for e, o2 in zip(ends, offsets[1:]))
    for b, nxt in zip(batches, batches[1:]):
        assert -(-ends[b.stop - 1] // chunk) * chunk <= offsets[nxt.start]  # the next batch starts past my chunk
    stored = np.full(max(ends, default=start) + 1, -1)
    for i, (o, n) in enumerate(zip(offsets, counts)):
        stored[o:o + n] = i
    for i, (o, n) in enumerate(zip(offsets, counts)):
        assert (stored[o:o + n] == i).all()


segments = st.sampled_from(["a", "388", "GLASSES", "..", ".", "", "cam_1.mp4", "x..y", "C:", "\\", "~"])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(segments, min_size=1, max_size=5), lead=st.sampled_from(["", "/", "\\", "C:\\", "C:/"]))
def test_a_safe_entry_name_never_leaves_the_extraction_folder(parts, lead):
    name = lead + "/".join(parts)
    root = "/srv/extract"  # where a reader would extract (paths only, nothing is created)
    target = os.path.normpath(os.path.join(root, name.replace("\\", "/")))
    if not is_unsafe(name):
        assert target == root or target.startswith(root + os.sep), name


def test_the_submission_paths_are_all_safe():
    names = [video_path(p, s, c) for b in ("nvs", "mono_flame_avatar") for (p, s), cams in expected_videos(b).items()
             for c in cams] + [f"{k}/mesh_posed.ply" for k in svfr_image_keys()]
    assert len(names) == 15 + 80 + 391 and not any(map(is_unsafe, names))


entry_names = st.one_of(
    st.sampled_from(["388/GLASSES/cam_222200037.mp4", "388/GLASSES/", "../evil.mp4", "/abs.mp4",
                     "017/EMO-1-shout+laugh_156_221501007/mesh_posed.ply",
                     "017/EMO-1-shout+laugh_156_221501007/landmarks_posed.npy", "x.txt"]),
    st.text(alphabet="abc/._-", min_size=1, max_size=20))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(entry_names, st.binary(max_size=600), st.sampled_from([0, 8])),
                        min_size=0, max_size=5, unique_by=lambda e: e[0]),
       benchmark=st.sampled_from(["nvs", "svfr"]), damage=st.integers(-1, 5000))
def test_the_validator_reports_any_zip_and_raises_only_for_a_non_zip(tmp_path, entries, benchmark, damage):
    path = tmp_path / "sub.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, method in entries:
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    data = bytearray(buf.getvalue())
    if damage >= 0 and data:
        data[damage % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))
    try:
        report = validate_submission(path, benchmark)
    except InvalidSubmissionError as e:
        assert "not a readable zip" in str(e)
        return
    assert not report.valid  # a few random entries are never a complete submission
    if damage < 0:  # names intact: every unsafe one is reported as such
        unsafe = sorted(n for n, _, _ in entries if is_unsafe(n))
        assert sorted(report.issues.get("unsafe_paths", [])) == unsafe
    assert [p.name for p in Path(tmp_path).iterdir()] == ["sub.zip"]  # nothing extracted beside it


# ---- metadata documents ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def metadata_cube(cube, tmp_path_factory):
    """A copy of the session's cube (metadata documents only: chunks are not read here) and its documents."""
    import shutil

    copy = tmp_path_factory.mktemp("meta") / "cube.zarr"
    shutil.copytree(cube, copy, ignore=lambda folder, names: [n for n in names if n == "c"])
    return copy, sorted(p for p in copy.rglob("zarr.json") if p.parent != copy)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**6), at=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_in_a_metadata_document_is_named_or_changes_nothing(metadata_cube, pick, at, bit):
    """One flipped bit anywhere in any node's or array's zarr.json: verify's metadata check names exactly that
    document, unless the document still means the same (``1e5`` read as ``1E5``)."""
    import json

    from nersemble_cube.cube.integrity import check_metadata

    root, documents = metadata_cube
    path = documents[pick % len(documents)]
    original = path.read_bytes()
    flipped = bytearray(original)
    flipped[int(at * len(original))] ^= 1 << bit
    path.write_bytes(bytes(flipped))
    try:
        named = [d.key for d in check_metadata(root)]
        try:
            same = json.loads(bytes(flipped)) == json.loads(original)
        except ValueError:
            same = False
        assert named == ([] if same else [str(path.relative_to(root))]), (path, named)
    finally:
        path.write_bytes(original)


def test_a_users_own_root_attr_is_not_damage(metadata_cube):
    """Keys one character away from those nersemble-cube writes are damage; a user's own annotation is not."""
    import json

    from nersemble_cube.cube.integrity import check_metadata
    from nersemble_cube.cube.store import check_cube

    root, _ = metadata_cube
    original = (root / "zarr.json").read_bytes()
    try:
        for key, damaged in (("lab_notes", False), ("schemb", True), ("created_bx", True)):
            doc = json.loads(original)
            doc["attributes"][key] = "x"
            (root / "zarr.json").write_text(json.dumps(doc))
            assert [d.key for d in check_metadata(root)] == (["zarr.json"] if damaged else []), key
            if not damaged:
                assert check_cube(root)["lab_notes"] == "x"
    finally:
        (root / "zarr.json").write_bytes(original)
