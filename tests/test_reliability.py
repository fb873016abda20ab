"""Damage, faults and hostile input (docs/reliability.md): a damaged cube never reads wrong without an error,
verify names what is damaged and convert repairs it, a writer that died is reported, one lock per real
folder, servers that ignore Range requests are refused, corrupt sources and bombs are refused bounded."""

import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import warnings
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import imageio_ffmpeg
import numpy as np
import pytest
import zarr

import nersemble_cube
from nersemble_cube import StorageSpec, convert
from nersemble_cube.cube import store
from nersemble_cube.cube.access import IncompleteCubeWarning
from nersemble_cube.cube.lock import writer_lock
from nersemble_cube.errors import IncompleteCubeError, InvalidSubmissionError, SourceError, StoreError
from nersemble_cube.source.converters.flame import read_flame_tracking
from nersemble_cube.source.converters.pcd import probe_pcd, read_pcd
from nersemble_cube.submission.validate import validate_submission

from conftest import CLI, N_FRAMES, decode_pyav, run_cli, store_contents

SEQ = "nvs/388/sequences/GLASSES"


@pytest.fixture
def damaged(cube, tmp_path):
    """A private copy of the session's cube, to damage."""
    target = tmp_path / "cube.zarr"
    shutil.copytree(cube, target)
    return target


def _shard(cube, variable: str, camera: int):
    return cube / SEQ / variable / "c" / str(camera) / "0" / "0" / "0" / ("0" if variable == "images" else "")


def _flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


# ---- the cube: checksums, missing shards, verify and repair ----------------------------------------------------

def test_no_flipped_byte_reads_as_wrong_pixels(damaged, cube):
    """Flip one byte anywhere in a camera's shard (frame data or shard index), 24 times: every read of every
    frame either equals the original or raises; none returns other pixels. Two readers we did not write, zarr's
    own decode and tensorstore's, reject exactly the frames ours rejects."""
    import tensorstore as ts
    import zarr as zarr_python
    serial = str(nersemble_cube.open(cube)[SEQ].camera.values[1])
    pristine = [nersemble_cube.read_frame(cube, SEQ, serial, t) for t in range(N_FRAMES)]
    shard = _shard(damaged, "images", 1)
    original = shard.read_bytes()
    rng = np.random.default_rng(7)
    offsets = rng.integers(0, len(original), 20).tolist() + [len(original) - k for k in (1, 5, 9, 16)]  # + index
    wrong = detected = 0
    for offset in offsets:
        _flip(shard, offset)
        theirs = zarr_python.open_array(str(damaged / SEQ / "images"), mode="r")
        store = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{damaged}/{SEQ}/images/"}}).result()
        for t in range(N_FRAMES):
            refused = []
            for name, read in (("ours", lambda: nersemble_cube.read_frame(damaged, SEQ, serial, t)),
                               ("zarr", lambda: theirs[1, t]), ("tensorstore", lambda: store[1, t].read().result())):
                try:
                    frame = read()
                except ValueError as e:  # ours and zarr: "Stored and computed checksum do not match"; tensorstore's
                    assert "checksum" in str(e).lower() or name != "ours", (name, e)  # own wording (a ValueError)
                    refused.append(name)
                    continue
                wrong += not np.array_equal(frame, pristine[t])
            assert refused in ([], ["ours", "zarr", "tensorstore"]), (offset, t, refused)
            detected += bool(refused)
        shard.write_bytes(original)
    assert wrong == 0
    assert detected >= len(offsets)  # each flip made at least its own frame fail


def test_a_missing_shard_is_an_error_not_black_frames(damaged):
    _shard(damaged, "alpha", 0).unlink()
    serial = str(nersemble_cube.open(damaged)[SEQ].camera.values[0])
    with pytest.raises(StoreError, match="missing from the cube"):
        nersemble_cube.read_frame(damaged, SEQ, serial, 0, variable="alpha")
    with pytest.raises(StoreError, match="missing from the cube"):
        nersemble_cube.open(damaged)[SEQ].alpha.isel(camera=0, time=2).values


@pytest.mark.parametrize("document, where", [
    ("zarr.json", 0.3),  # the root: its attrs
    ("zarr.json", 0.7),  # the root: inside the consolidated metadata (copies of the node documents)
    ("nvs/388/zarr.json", 0.5),  # a participant group
    (f"{SEQ}/zarr.json", 0.5),  # a sequence node
    (f"{SEQ}/images/zarr.json", 0.5),  # an array
    ("mono_flame_avatar/393/sequences/EXP-1-head/flame2023_tracking_v2/shape/zarr.json", (b"data_type", b"data_txpe")),
    ("zarr.json", (b'"schema":', b'"schemA":')),  # a root attr's name: still JSON, no longer a cube's attrs
    ("zarr.json", (b'"integrity":', b'"integrjty":')),  # the one that makes missing chunks an error
])
def test_damaged_metadata_is_named_by_verify_and_rebuilt_by_convert(damaged, cube, sample_dir, document, where, cube_contents):
    from nersemble_cube.cube.integrity import check_chunks

    path = damaged / document
    data = bytearray(path.read_bytes())
    if isinstance(where, tuple):
        assert where[0] in data
        data = data.replace(*where, 1)
    else:
        data[int(len(data) * where)] ^= 0x20  # a letter's case, a digit, or a character JSON refuses
    path.write_bytes(bytes(data))
    try:
        report = check_chunks(damaged)
        assert report.metadata and report.chunks == 0, report  # named, and no chunk read through it
    except StoreError as e:  # the root itself: nothing else can be trusted
        assert document == "zarr.json" and "damaged metadata (its root" in str(e) and \
            "; run nersemble-cube convert SOURCE STORE to repair it" in str(e), e
    if document == f"{SEQ}/images/zarr.json":
        with pytest.raises(StoreError, match="cannot be read|not valid"):  # never a traceback of zarr's parser
            nersemble_cube.FrameReader(damaged, SEQ)
    res = run_cli("verify", damaged)
    assert res.returncode == 4 and "damaged metadata" in res.stderr and "Traceback" not in res.stderr, res.stderr
    convert(sample_dir, damaged)  # rebuilds what was damaged from the source, deletes nothing it cannot rebuild
    assert store_contents(damaged) == cube_contents
    assert not check_chunks(damaged).metadata


def test_damaged_metadata_outside_the_selection_is_refused_untouched(damaged, sample_dir):
    path = damaged / "mono_flame_avatar/393/calibration/zarr.json"
    path.write_bytes(path.read_bytes()[:-5])
    before = {p: p.read_bytes() for p in damaged.rglob("*") if p.is_file()}
    with pytest.raises(StoreError, match=r"mono_flame_avatar/393/calibration/zarr.json: damaged metadata \(not valid "
                                         r"JSON\) of a node this conversion does not write"):
        convert(sample_dir, damaged, benchmarks=["nvs"])
    assert {p: p.read_bytes() for p in damaged.rglob("*") if p.is_file()} == before


def test_the_default_verify_reads_two_shards_per_array_and_no_mark_changes_nothing(damaged, cube):
    """`verify` without --full reads min(2, shards) regions of every array of every complete node; with --no-mark
    it names damage and writes nothing."""
    import math

    from nersemble_cube.cube.integrity import check_chunks

    def groups(group):  # every group of the cube, walked independently of verify's own code
        yield group
        for _, child in group.groups():
            yield from groups(child)

    expected = arrays = 0
    for group in groups(zarr.open_group(str(cube), mode="r", use_consolidated=False)):
        if group.attrs.get("complete") is True:
            for _, arr in group.arrays():
                block = arr.shards or arr.chunks
                expected += min(2, math.prod(-(-n // b) if n else 0 for n, b in zip(arr.shape, block)))
                arrays += 1
    report = check_chunks(cube, full=False)
    assert (report.chunks, report.arrays, report.damage) == (expected, arrays, [])
    _flip(damaged / "nvs/388/calibration/world_2_cam/c/0/0/0", 3)  # one chunk: the sample always reads it
    res = run_cli("verify", damaged, "--no-mark")
    assert res.returncode == 4 and "damaged: nvs/388/calibration/world_2_cam: chunk" in res.stderr, res.stderr
    assert "marked for re-conversion" not in res.stderr
    assert zarr.open_group(str(damaged), path="nvs/388/calibration", mode="r").attrs["complete"] is True
    assert zarr.open_group(str(damaged), path=SEQ, mode="r").attrs["complete"] is True  # nothing written


def test_a_chunk_verify_may_not_read_is_an_error_not_damage(damaged, monkeypatch):
    """Permissions or the network failing a read say nothing about the bytes: verify stops with that error
    (one line) and marks nothing, instead of calling the chunk damaged and having its node converted again."""
    from nersemble_cube.cube.integrity import check_chunks, mark_for_repair

    real = zarr.storage.LocalStore.get

    async def refused(self, key, *args, **kwargs):
        if key.startswith("nvs/388/calibration/world_2_cam/c"):
            raise PermissionError(13, "Permission denied")
        return await real(self, key, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", refused)
    with pytest.raises(StoreError, match=r"nvs/388/calibration/world_2_cam: cannot be read \(Permission denied\); "
                                         r"not damage: fix access, then verify again"):
        check_chunks(damaged)
    monkeypatch.undo()
    _flip(damaged / "nvs/388/calibration/world_2_cam/c/0/0/0", 3)
    report = check_chunks(damaged)  # the same chunk damaged: named as such, and marked
    assert [(d.array, d.reason) for d in report.damage] == [
        ("nvs/388/calibration/world_2_cam", "checksum mismatch (the chunk's bytes changed)")]
    assert mark_for_repair(damaged, report.damage) == ["nvs/388/calibration"]


@pytest.mark.parametrize("size", [0, 1, 4, 16])
def test_a_shard_cut_short_is_named_by_verify_and_repaired(damaged, cube, sample_dir, size, cube_contents):
    shard = _shard(damaged, "images", 1)
    shard.write_bytes(shard.read_bytes()[:size])
    serial = str(nersemble_cube.open(cube)[SEQ].camera.values[1])
    with pytest.raises((StoreError, ValueError)):  # never the fill value's black frames
        nersemble_cube.read_frame(damaged, SEQ, serial, 0)
    res = run_cli("verify", damaged, "--full")
    assert res.returncode == 4 and f"damaged: {SEQ}/images: camera {serial} frames 0-{N_FRAMES - 1}" in res.stderr, res.stderr
    convert(sample_dir, damaged)
    assert store_contents(damaged) == cube_contents


def test_verify_names_the_damage_and_convert_repairs_exactly_it(damaged, cube, sample_dir, cube_contents):
    serials = [str(s) for s in nersemble_cube.open(cube)[SEQ].camera.values]
    shard = _shard(damaged, "images", 1)
    _flip(shard, len(shard.read_bytes()) // 2)  # somewhere in the frames of camera 1
    _shard(damaged, "alpha", 0).unlink()
    calib = damaged / "nvs/388/calibration/world_2_cam/c/0/0/0"
    _flip(calib, 3)

    res = run_cli("verify", damaged, "--full")
    assert res.returncode == 4, res.stderr
    assert f"damaged: {SEQ}/images: camera {serials[1]} frame" in res.stderr and "checksum mismatch" in res.stderr
    assert f"damaged: {SEQ}/alpha: camera {serials[0]} frames 0-{N_FRAMES - 1}: missing" in res.stderr
    assert "damaged: nvs/388/calibration/world_2_cam: chunk" in res.stderr
    assert f"marked for re-conversion: nvs/388/calibration, {SEQ}" in res.stderr
    assert "3 damaged" in res.stdout and res.stderr.strip().splitlines()[-1].startswith("error: ")
    with pytest.raises(IncompleteCubeError, match="nvs/388/calibration"):
        nersemble_cube.open(damaged)  # marked for repair: not read as data until convert has redone it

    report = convert(sample_dir, damaged)
    assert report.written == ["nvs/388/calibration", SEQ]  # only the damaged nodes; SEQ's other cameras kept
    assert report.items == 2 * N_FRAMES  # camera 1's images and camera 0's alpha, decoded again
    assert store_contents(damaged) == cube_contents
    res = run_cli("verify", damaged, "--full", "--no-mark", "--json")  # the repaired cube is sound, every chunk read
    assert res.returncode == 0, res.stderr
    facts = json.loads(res.stdout)
    assert facts["damaged"] == [] and facts["marked"] == [] and facts["chunks"] > 50 and facts["arrays"] > 20


# ---- a writer that dies ----------------------------------------------------------------------------------------

def test_a_killed_overwrite_leaves_a_cube_that_says_so_and_resumes(damaged, cube, sample_dir, cube_contents):
    proc = subprocess.Popen([*CLI, "convert", str(sample_dir), str(damaged), "--overwrite", "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = damaged / "zarr.json"
    deadline = time.monotonic() + 60
    while '"writing"' not in root.read_text() and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(0.3)  # templates rewritten, some tasks running
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pytest.raises(IncompleteCubeError, match="running or did not finish; run the same nersemble-cube convert"):
        nersemble_cube.open(damaged)  # nothing half-rewritten is read as data...
    try:  # a node the killed rewrite had begun is refused; one it had not reached still holds its complete data
        reader = nersemble_cube.FrameReader(damaged, SEQ)
    except IncompleteCubeError as e:
        assert f"the conversion of {SEQ} is running or did not finish" in str(e)
    else:
        np.testing.assert_array_equal(reader.read(reader.cameras[0], 1),
                                      nersemble_cube.read_frame(cube, SEQ, reader.cameras[0], 1))
    try:  # ...unless asked for: then with a warning, as far as the metadata of the moment can be read
        with pytest.warns(IncompleteCubeWarning, match="running or did not finish"):
            nersemble_cube.open(damaged, incomplete=True)
    except IncompleteCubeError as e:
        assert "its metadata cannot be read until then" in str(e)
    info = run_cli("info", damaged)
    assert (info.returncode, info.stderr) == (0, "") and info.stdout.startswith(
        "INCOMPLETE: a conversion into this cube is running or did not finish") or \
        (info.returncode == 4 and "its metadata cannot be read until then" in info.stderr), info
    convert(sample_dir, damaged)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteCubeWarning)
        nersemble_cube.open(damaged)
    assert store_contents(damaged) == cube_contents


def test_of_two_writers_started_together_exactly_one_wins(sample_dir, cube, tmp_path, cube_contents):
    """Two `nersemble-cube convert` processes into one store, started at once (one through a symlink): one
    converts, the other is refused by the lock while it writes, and the cube is what one conversion writes."""
    (tmp_path / "link.zarr").symlink_to(tmp_path / "c.zarr", target_is_directory=True)
    procs = [subprocess.Popen([*CLI, "convert", str(sample_dir), str(tmp_path / name), "-b", "nvs", "--workers", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("c.zarr", "link.zarr")]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 4], results
    loser = next(err for code, err in results if code == 4)
    assert "another nersemble-cube convert" in loser and "is writing this cube" in loser
    expected = {k: v for k, v in cube_contents.items() if k == "" or k.startswith("nvs")}
    got = store_contents(tmp_path / "c.zarr")
    assert {k: v for k, v in got.items() if k != ""} == {k: v for k, v in expected.items() if k != ""}


def test_one_lock_per_real_folder(tmp_path):
    real = tmp_path / "cube.zarr"
    real.mkdir()
    (tmp_path / "link.zarr").symlink_to(real)
    with writer_lock(real), pytest.raises(StoreError, match="another nersemble-cube convert"):
        with writer_lock(tmp_path / "link.zarr"):
            pass
    (tmp_path / "other.zarr.lock").mkdir()
    with pytest.raises(StoreError, match="a folder stands where the writer's lock goes"):
        with writer_lock(tmp_path / "other.zarr"):
            pass


def test_a_symlink_to_a_folder_yet_to_be_made_is_converted_into(sample_dir, tmp_path):
    (tmp_path / "link.zarr").symlink_to(tmp_path / "disk" / "real.zarr")  # neither disk/ nor real.zarr exist
    res = run_cli("convert", sample_dir, tmp_path / "link.zarr", "-b", "svfr")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "disk" / "real.zarr" / "svfr").is_dir() and not (tmp_path / "disk" / "real.zarr.lock").exists()
    assert nersemble_cube.open(tmp_path / "link.zarr")["svfr"].sizes["image"] == 3


def test_a_read_only_target_is_one_line(tmp_path, monkeypatch):
    """What a read-only file system answers (EROFS) to the first write, the lock file: the suite runs
    without the privileges to mount one, so the answer is injected (checked by hand on a tmpfs mounted
    read-only: the same message, exit 4)."""
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(StoreError, match=r"ro.zarr.lock: cannot create the writer's lock \(Read-only file system\); "
                                         "check that the store's folder is writable"):
        with writer_lock(tmp_path / "ro.zarr"):
            pass


# ---- a server that ignores Range requests ----------------------------------------------------------------------

def test_a_server_that_ignores_range_requests_is_named(cube):
    class Plain(SimpleHTTPRequestHandler):  # what `python -m http.server` runs
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Plain, directory=str(cube.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{cube.name}"
    try:
        with pytest.raises(StoreError, match="ignores HTTP Range requests"):
            nersemble_cube.open(url)
        serial = str(nersemble_cube.open(cube)[SEQ].camera.values[0])
        with pytest.raises(StoreError, match="ignores HTTP Range requests"):
            nersemble_cube.read_frame(url, SEQ, serial, 0)
    finally:
        server.shutdown()


# ---- corrupt sources --------------------------------------------------------------------------------------------

MONO = "mono_flame_avatar/393/sequences/EXP-1-head"


@pytest.fixture
def mono(sample_dir, tmp_path):
    root = tmp_path / "bench"
    shutil.copytree(sample_dir / "mono_flame_avatar", root / "mono_flame_avatar")
    return root


def test_an_mp4_with_flipped_bits_is_refused_by_name(mono, tmp_path):
    video = mono / MONO / "images/cam_222200037.mp4"
    data = bytearray(video.read_bytes())
    for i in range(2000, len(data) // 2, 97):  # the frame data (mdat) of a faststart-less mp4 comes first
        data[i] ^= 0xFF
    video.write_bytes(bytes(data))
    target = tmp_path / "c.zarr"
    with pytest.raises(SourceError, match=r"EXP-1-head/images/cam_222200037.mp4: .*(decoder reported errors|decoding)"):
        convert(mono, target)
    assert not (target / MONO).exists()  # the half-written sequence was removed


def test_a_camera_with_another_frame_rate_is_refused(mono, tmp_path):
    video = mono / MONO / "alpha_maps/cam_222200037.mp4"
    frames = decode_pyav(video)
    out = tmp_path / "30fps.mp4"
    writer = imageio_ffmpeg.write_frames(str(out), (512, 512), fps=30, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=1, output_params=["-crf", "18"])
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    shutil.copy(out, video)
    with pytest.raises(SourceError, match=r"alpha_maps/cam_222200037.mp4: 30 fps but cam_222200037.mp4 has 24.3"):
        convert(mono, tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists()


def test_a_tracking_npz_is_read_no_further_than_its_keys(tmp_path, mono):
    path = mono / MONO / "tracking/flame2023_tracking_v2.npz"
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["expression"] = np.zeros((len(arrays["frames"]), 100_000), np.float64)  # 8 MB where 4 KB belong
    np.savez_compressed(path, **arrays, unused=np.zeros(10_000_000))
    with pytest.raises(SourceError, match=r"'expression' takes \d+ bytes, more than the \d+ its shape allows"):
        read_flame_tracking(path)


@pytest.mark.parametrize("header, body, match", [
    ("POINTS -5\nDATA ascii\n", b"", "says POINTS -5, not a point count"),
    ("POINTS 2\nDATA ascii\n", b"1 2 3\nx y z\n", "not numbers"),
    ("POINTS 1\nDATA ascii\n", b"1 2 3 " * 100_000, "more data than its 1 points"),
    ("POINTS 3\nDATA binary_compressed\n", b"\x05\x00\x00\x00\x24\x00\x00\x00abc", "damaged compressed"),
])
def test_bad_point_clouds_are_source_errors(tmp_path, header, body, match):
    path = tmp_path / "frame_00000.pcd"
    path.write_bytes(("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\n"
                      + header).encode() + body)
    with pytest.raises(SourceError, match=match):
        probe_pcd(path)
        read_pcd(path)


# ---- hostile submission zips -----------------------------------------------------------------------------------

def test_a_zip_bomb_is_refused_unread(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("388/GLASSES/cam_222200037.mp4", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(200):  # 200 MB of zeros deflate to ~0.2 MB
                f.write(block)
    assert bomb.stat().st_size < 1 << 20
    report = validate_submission(bomb, "nvs")
    assert any("cam_222200037.mp4: inflates" in e for e in report.issues["unreadable_files"])


def test_landmarks_and_broken_entries_are_reported_not_loaded(tmp_path):
    path = tmp_path / "svfr.zip"
    key = "017/EMO-1-shout+laugh_156_221501007"
    big = io.BytesIO()
    np.save(big, np.zeros((100_000, 3)))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{key}/mesh_posed.ply", _ply(10))
        zf.writestr(f"{key}/landmarks_posed.npy", big.getvalue())
    report = validate_submission(path, "svfr")
    assert any(f"{key}/landmarks_posed.npy: declares" in e for e in report.issues["unreadable_files"])
    # a bad CRC: the entry's bytes changed after it was written
    data = bytearray(path.read_bytes())
    start = data.find(b"ply\n")
    data[start + 20] ^= 0x01
    path.write_bytes(bytes(data))
    report = validate_submission(path, "svfr")
    assert any("Bad CRC-32" in e for e in report.issues["unreadable_files"])


@pytest.mark.parametrize("field, value, message", [("flag", 0x1, "encrypted entry"),
                                                    ("method", 99, "unsupported compression method 99")])
def test_encrypted_and_unknown_compression_entries_are_named_unread(tmp_path, field, value, message):
    """The two header fields set by hand (zipfile writes neither): the general-purpose flag bit 0
    (encrypted) and the compression method (99: WinZip AES), in the local and the central header."""
    path = tmp_path / "p.zip"
    key = "017/EMO-1-shout+laugh_156_221501007"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{key}/mesh_posed.ply", _ply(10))
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature) + offset + (0 if field == "flag" else 2)
        data[at:at + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    report = validate_submission(path, "svfr")
    assert f"{key}/mesh_posed.ply: {message}" in report.issues["unreadable_files"]


def _ply(n: int) -> bytes:
    vertices = "".join(f"{i} {i % 3} {i % 5}\n" for i in range(n))
    return (f"ply\nformat ascii 1.0\nelement vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
            f"element face 1\nproperty list uchar int vertex_indices\nend_header\n{vertices}3 0 1 2\n").encode()


def test_the_validate_command_says_unreadable_in_one_report(tmp_path):
    bomb = tmp_path / "b.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("388/GLASSES/cam_222200037.mp4", bytes(50 << 20))
    res = run_cli("validate", bomb, "-b", "nvs")
    assert res.returncode == 6 and "unreadable_files" in res.stdout and "inflates" in res.stdout
    assert "Traceback" not in res.stderr
    assert json.loads(json.dumps(os.listdir(tmp_path))) == ["b.zip"]  # nothing extracted beside it


def test_a_full_disk_while_writing_is_a_store_error_and_resumable(sample_dir, tmp_path, monkeypatch):
    from nersemble_cube.conversion import nodes

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nodes, "fill_video", no_space)  # every video task fails as a full disk makes it
    target = tmp_path / "c.zarr"
    with pytest.raises(StoreError, match=r"writing mono_flame_avatar/393/sequences/EXP-1-head failed \(No space left"):
        convert(sample_dir, target, benchmarks=["mono_flame_avatar"], workers=1)
    monkeypatch.undo()
    report = convert(sample_dir, target, benchmarks=["mono_flame_avatar"])
    assert "mono_flame_avatar/393/sequences/EXP-1-head" in report.written


@pytest.mark.parametrize("args, message", [
    (("--level", "100"), "level 100 is not a zstd level"),
    (("--workers", "-1"), r"(greater than or equal to 1|-1 is not in the range x>=1)"),  # click < 8.2 / >= 8.2
    (("-b", "foo"), "'foo' is not one of"),
])
def test_bad_options_are_usage_errors_before_anything_is_written(sample_dir, tmp_path, args, message):
    res = run_cli("convert", sample_dir, tmp_path / "c.zarr", *args)
    assert res.returncode == 2 and re.search(message, res.stderr), res.stderr
    assert not (tmp_path / "c.zarr").exists()


def test_fuzzed_npz_crashes_are_source_errors(tmp_path, mono):
    """Found by benchmarks/fuzz_parsers.py (atheris): an npz whose zip entries need a newer zip version
    made zipfile raise NotImplementedError."""
    path = mono / MONO / "tracking/flame2023_tracking_v2.npz"
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 6] = 255  # "version needed to extract" of the first central directory entry: 25.5
    path.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="not a readable npz file .*zip file version 25.5"):
        read_flame_tracking(path)


def _one_entry_zip() -> bytearray:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("388/GLASSES/cam_222200037.mp4", b"x")
    return bytearray(buf.getvalue())


def test_fuzzed_zip_crashes_are_one_line_errors(tmp_path):
    """Found by benchmarks/fuzz_parsers.py (atheris): an entry name flagged UTF-8 that is not UTF-8 made
    zipfile raise UnicodeDecodeError when the validator opened the zip."""
    data = _one_entry_zip()
    central = data.find(b"PK\x01\x02")
    data[central + 9] |= 0x08  # general purpose flag bit 11 (0x0800, little-endian): the name is UTF-8
    name = data.find(b"388/GLASSES", central)
    data[name + 3] = 0xEC  # ... which it is not
    path = tmp_path / "bad.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidSubmissionError, match="not a readable zip file"):
        validate_submission(path, "nvs")


def test_fuzzed_local_header_names_are_unreadable_entries(tmp_path):
    """Found by benchmarks/fuzz_parsers.py: a local file header whose UTF-8-flagged name is not UTF-8 made
    zipfile raise UnicodeDecodeError while the validator read the entry."""
    data = _one_entry_zip()
    data[7] |= 0x08  # the local header's flag bit 11: its name is UTF-8 ...
    data[30 + 3] = 0x80  # ... which it is not (the name starts at offset 30)
    path = tmp_path / "bad.zip"
    path.write_bytes(bytes(data))
    report = validate_submission(path, "nvs")
    assert any(e.startswith("388/GLASSES/cam_222200037.mp4: ") for e in report.issues["unreadable_files"])


def test_convert_verify_reports_an_unreadable_chunk_instead_of_crashing(damaged, sample_dir):
    from nersemble_cube.conversion.verify import verify

    shard = _shard(damaged, "images", 2)
    _flip(shard, len(shard.read_bytes()) - 3)  # the shard index: no frame of camera 2 can be read
    report = verify(sample_dir, damaged, benchmarks=["nvs"], frames_per_video=1)  # any frame of camera 2 fails
    assert [m for m in report.mismatches if "unreadable in the cube" in m] == [
        m for m in report.mismatches if m.startswith(f"{SEQ}/images camera ")]
    assert len(report.mismatches) == 1 and "checksum" in report.mismatches[0]


def test_the_space_check_of_a_resumed_run_counts_what_is_left(damaged, sample_dir, monkeypatch):
    """A run interrupted with 2 of 3 cameras' videos written needs room for the third only."""
    from collections import namedtuple

    from nersemble_cube.conversion import estimate
    from nersemble_cube.conversion.plan import plan
    from nersemble_cube.cube.storage import StorageSpec

    store.begin_writing(damaged)  # as a conversion interrupted with camera 0's images to redo leaves it
    flags = zarr.open_array(str(damaged), path=f"{SEQ}/images_complete", mode="r+")
    flags[0] = False  # camera 0's images to redo; the rest of the node written
    zarr.open_group(str(damaged), path=SEQ, mode="r+").attrs["complete"] = False
    checked = plan(sample_dir, benchmarks=["nvs"])
    spec = StorageSpec()
    whole = estimate.estimate_bytes(checked, [spec])[spec]
    left = estimate.estimate_bytes(checked, [spec], skip=lambda g: g != SEQ,
                                   done=lambda g, v: store.count_flags(damaged, g, v))[spec]
    assert left < whole / 2  # 1 of 3 cameras' images, no mattes (points and images of other nodes aside)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(estimate.shutil, "disk_usage", lambda p: usage(10**12, 10**12 - (left + whole) // 2,
                                                                          (left + whole) // 2))
    report = convert(sample_dir, damaged, benchmarks=["nvs"])
    assert report.written == [SEQ] and report.items == N_FRAMES


def test_ctrl_c_stops_the_tasks_not_yet_done(sample_dir, tmp_path):
    """Ctrl-C (KeyboardInterrupt in the main thread, as SIGINT raises it) while the first of 6 videos is
    written with one worker: the queued ones never start, the running one stops at its next batch, and the
    lock is released. In-process: the same test through a subprocess and SIGINT lost its signal in
    full-suite runs (3 of 3 in fresh environments, never alone); the CLI turns KeyboardInterrupt into
    exit 130 (`_user_errors`)."""
    import _thread

    target = tmp_path / "c.zarr"

    def interrupt_at_the_first_chunk() -> None:
        deadline = time.monotonic() + 60
        while not any(p for v in ("images", "alpha") for p in (target / SEQ / v).glob("c/*")):
            if time.monotonic() > deadline:
                return
            time.sleep(0.002)
        _thread.interrupt_main()

    # Python's own SIGINT handler, whatever an earlier test or library left installed (in full-suite runs
    # something did: interrupt_main then raised nothing, and a child process inherited the same)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    watcher = threading.Thread(target=interrupt_at_the_first_chunk, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            convert(sample_dir, target, benchmarks=["nvs"], workers=1, storage=StorageSpec("zstd", frames_per_shard=1))
    finally:
        watcher.join()
        signal.signal(signal.SIGINT, previous)
    flags = sum(zarr.open_array(str(target), path=f"{SEQ}/{v}_complete", mode="r")[:].sum() for v in ("images", "alpha"))
    assert flags <= 1  # of 6 videos; without stopping, all 6 would have been written before the exit
    assert not (target.parent / "c.zarr.lock").exists()  # resuming is tested with SIGKILL in test_scale_out


def test_ctrl_c_in_a_running_convert_exits_130_and_the_same_command_finishes(sample_dir, cube, tmp_path, cube_contents):
    """SIGINT, as a terminal's Ctrl-C sends it, to a real `nersemble-cube convert` while it writes."""
    target = tmp_path / "c.zarr"
    proc = subprocess.Popen([*CLI, "convert", str(sample_dir), str(target), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((target / "zarr.json").is_file() and '"writing"' in (target / "zarr.json").read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "convert ended before it began writing"
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted; run the same command again to finish (complete parts are kept)"
    assert "Traceback" not in stderr and "wrote" not in stdout
    again = run_cli("convert", sample_dir, target)
    assert again.returncode == 0, again.stderr
    assert store_contents(target) == cube_contents


def test_a_png_cut_short_is_refused_not_read_half_black(tmp_path):
    from nersemble_cube.source.converters.image import read_png, write_png

    image = np.random.default_rng(0).integers(0, 255, (512, 512, 3)).astype(np.uint8)
    write_png(tmp_path / "rgb.png", image)
    data = (tmp_path / "rgb.png").read_bytes()
    idat = data.find(b"IDAT")
    (tmp_path / "rgb.png").write_bytes(data[: idat + (len(data) - idat) // 2] + data[-12:])  # half, then IEND
    with pytest.raises(SourceError, match="rgb.png: .*damaged"):
        read_png(tmp_path / "rgb.png", (512, 512))


def test_damaged_points_are_repaired_cloud_by_cloud(damaged, cube, sample_dir, cube_contents):
    from nersemble_cube.cube.integrity import check_chunks, mark_for_repair

    group = f"{SEQ}/pointclouds"
    chunk = damaged / group / "positions" / "c" / "0" / "0"
    _flip(chunk, 100)
    report = check_chunks(damaged)
    assert [str(d) for d in report.damage] == [f"{group}/positions: chunk point 0:10000 xyz 0:3: checksum mismatch "
                                               "(the chunk's bytes changed)"]
    assert mark_for_repair(damaged, report.damage) == [group]
    assert zarr.open_array(str(damaged), path=f"{group}/cloud_complete", mode="r")[:].tolist() == [False, False]
    redone = convert(sample_dir, damaged, benchmarks=["nvs"])
    assert redone.written == [group] and redone.items == 2  # the two clouds of that chunk, nothing else
    assert store_contents(damaged) == cube_contents


@pytest.mark.parametrize("which", ["benchmark", "dataset"])
def test_every_stored_chunk_of_every_array_carries_a_matching_crc32c(which, cube, dataset_conversion):
    """schema.md: every chunk of every array (coordinates included) ends with a crc32c, and so does each shard
    index. Checked on the files as the zarr v3 spec lays them out (not through zarr): each array's codec chain
    ends with crc32c, and every chunk file, every shard's index and every chunk an index points to ends with the
    CRC-32C (google_crc32c) of the bytes before it."""
    import json

    import google_crc32c

    root = cube if which == "benchmark" else dataset_conversion[0]

    def checked(data: bytes) -> bool:
        return len(data) >= 4 and google_crc32c.value(data[:-4]) == int.from_bytes(data[-4:], "little")

    arrays = chunks = 0
    for doc in root.rglob("zarr.json"):
        meta = json.loads(doc.read_text())
        if meta.get("node_type") != "array":
            continue
        arrays += 1
        sharding = meta["codecs"][0] if meta["codecs"][0]["name"] == "sharding_indexed" else None
        inner = sharding["configuration"]["codecs"] if sharding else meta["codecs"]
        assert inner[-1]["name"] == "crc32c", doc
        for path in (p for p in (doc.parent / "c").rglob("*") if p.is_file()) if (doc.parent / "c").exists() else \
                [doc.parent / "c"] if (doc.parent / "c").is_file() else []:
            data = path.read_bytes()
            if not sharding:
                assert checked(data), path
                chunks += 1
                continue
            assert sharding["configuration"]["index_codecs"][-1]["name"] == "crc32c"
            per_shard = [s // c for s, c in zip(meta["chunk_grid"]["configuration"]["chunk_shape"],
                                                sharding["configuration"]["chunk_shape"])]
            size = 16 * int(np.prod(per_shard)) + 4
            index = data[-size:]
            assert checked(index), path
            entries = np.frombuffer(index[:-4], "<u8").reshape(-1, 2)
            for offset, length in entries[entries[:, 0] != 2**64 - 1]:
                assert checked(data[int(offset):int(offset + length)]), path
                chunks += 1
    assert arrays > 20 and chunks > arrays, (arrays, chunks)
