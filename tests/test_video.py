"""Video chunks (the h264 / hevc presets and the copy preset): bit-equal copies of the source's packets, a PSNR
floor for the re-encoded ones, chunks that decode alone, plain zarr/xarray reads, damage as a checksum error."""

import re
import subprocess
import sys

import numpy as np
import pytest
import zarr

import nersemble_cube
from nersemble_cube import StorageSpec, convert
from nersemble_cube.cube.codecs import video
from nersemble_cube.cube.codecs.video import Decoding, VideoCodec, droppable, encode, pack, unpack
from nersemble_cube.conversion.verify import verify
from nersemble_cube.cube.shards import ChunkReader
from nersemble_cube.source.converters.video import ffmpeg_exe

from conftest import decode_pyav, psnr, run_cli

pytestmark = pytest.mark.xdist_group("video")  # one worker builds the module's fixtures (--dist loadgroup)

SEQ = "nvs/388/sequences/GLASSES"
SERIAL = "222200042"
GOP, N_FRAMES = 3, 8  # groups of 3, 3 and 2 frames: a short last chunk


def reencode(mp4, *args: str) -> None:
    """Re-encode ``mp4`` in place with libx264 and ffmpeg ``args`` (keyframe placement, B-frames)."""
    tmp = mp4.with_suffix(".tmp.mp4")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(mp4), "-c:v", "libx264", "-crf", "18",
                    "-pix_fmt", "yuv420p", *args, str(tmp)], check=True)
    tmp.replace(mp4)


@pytest.fixture(scope="module")
def gop_source(tmp_path_factory):
    """An nvs sample (1 camera, 8 frames) whose image videos have a keyframe every 3 frames and B-frames
    (presentation order differs from decoding order inside each group)."""
    root = nersemble_cube.write_sample(tmp_path_factory.mktemp("gop") / "benchmark", benchmarks=("nvs",),
                                       n_frames=N_FRAMES, n_cameras=1, pointcloud_frames=())
    for mp4 in (root / SEQ / "images").glob("*.mp4"):
        reencode(mp4, "-g", str(GOP), "-keyint_min", str(GOP), "-sc_threshold", "0", "-bf", "2")
    return root


@pytest.fixture(scope="module")
def copied(gop_source, tmp_path_factory):
    """The gop source converted with --codec copy --verify (2 frames of every video decoded from their chunks
    alone and compared with ffmpeg's decode of the whole file)."""
    target = tmp_path_factory.mktemp("copy") / "c.zarr"
    res = run_cli("convert", gop_source, target, "--codec", "copy", "--verify", "--scales", "1,4")
    assert res.returncode == 0, res.stderr
    return target


@pytest.fixture(scope="module")
def encoded(gop_source, tmp_path_factory):
    target = tmp_path_factory.mktemp("h264") / "c.zarr"
    convert(gop_source, target, storage=StorageSpec("h264", frames_per_chunk=4, frames_per_shard=8), scales=(1, 4))
    report = verify(gop_source, target, frames_per_video=3)  # frames of each video within 40 dB of the source
    assert report.ok and report.checked >= 2, report.mismatches  # images and mattes, and more
    return target


def test_copy_chunks_are_the_source_packets_bit_equal_to_pyavs_decode(gop_source, copied):
    """Every frame (first, middle and last of each chunk, the short last chunk included) equals PyAV's decode of
    the mp4, through FrameReader (in and out of order), xarray with dask and plain zarr; the images take the
    mp4s' bytes (plus ~100 bytes of chunk header and index per chunk)."""
    mp4 = gop_source / SEQ / "images" / f"cam_{SERIAL}.mp4"
    want = decode_pyav(mp4)
    array = zarr.open_array(str(copied / SEQ / "images"), mode="r")
    assert array.chunks[1] == GOP and array.metadata.codecs[0].codecs[0].codec == "copy"
    cameras = [str(c) for c in zarr.open_array(str(copied / SEQ / "camera"), mode="r")[:]]
    np.testing.assert_array_equal(array[cameras.index(SERIAL)], want)
    ds = nersemble_cube.open(copied)[SEQ].to_dataset()
    np.testing.assert_array_equal(ds.images.sel(camera=SERIAL).values, want)
    reader = nersemble_cube.FrameReader(copied, SEQ)
    for t in (7, 0, 3, 4, 5, 1, 6, 2):
        np.testing.assert_array_equal(reader.read(SERIAL, t), want[t])
    stored = sum(p.stat().st_size for p in (copied / SEQ / "images" / "c").rglob("*") if p.is_file())
    source = sum(p.stat().st_size for p in (gop_source / SEQ / "images").glob("*.mp4"))
    assert source * 0.95 < stored < source * 1.05, (stored, source)  # the mp4s hold ~1 KB of container too
    alpha = decode_pyav(gop_source / SEQ / "alpha_maps" / f"cam_{SERIAL}.mp4")[..., 0]
    np.testing.assert_array_equal(ds.alpha.sel(camera=SERIAL).values, alpha)  # mattes: lossless zstd


def test_each_video_chunk_decodes_alone_with_ffmpeg(encoded, copied, gop_source, tmp_path):
    """Closed GOPs: the packets of one chunk, given to ffmpeg's own decoder as a file of their own, give that
    chunk's frames (the h264 preset's chunks carry their parameter sets in band; the copy preset's are the
    mp4's, its avcC prepended as the decoder's extradata)."""
    reader = ChunkReader(zarr.open_array(str(encoded / SEQ / "images"), mode="r"))
    chunk = unpack(bytes(reader._stored((0, 1, 0, 0, 0))[:-4]))  # the second chunk, crc32c cut off
    (tmp_path / "chunk.h264").write_bytes(b"".join(chunk.packets))
    res = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "h264", "-i", str(tmp_path / "chunk.h264"),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True)
    frames = np.frombuffer(res.stdout, np.uint8).reshape(-1, 1604, 1100, 3)
    assert len(frames) == 4
    np.testing.assert_array_equal(frames, zarr.open_array(str(encoded / SEQ / "images"), mode="r")[0, 4:8])


def test_the_h264_preset_picks_the_highest_crf_that_keeps_its_psnr(realistic_video):
    """On realistic footage (benchmarks/realistic.py) the default h264 preset's CRF keeps every frame at 43.5 dB
    or better against the decoded mp4 (PSNR computed by the tests' own function), one CRF more does not; its
    bytes are a fraction of the frames' zstd bytes."""
    _, frames = realistic_video
    spec = StorageSpec("h264", frames_per_chunk=len(frames)).with_crf(frames)
    assert 6 <= spec.crf <= 20 and spec.psnr == 43.5

    def stored(crf: int) -> tuple[list[float], int]:
        arr = zarr.create_array({}, shape=(1, *frames.shape), chunks=(1, *frames.shape), dtype="u1",
                                serializer=VideoCodec(crf=crf), compressors=None)
        arr[0] = frames
        return [psnr(arr[0, t], frames[t]) for t in range(len(frames))], arr.nbytes_stored()

    quality, size = stored(spec.crf)
    assert min(quality) >= 43.5 and min(stored(spec.crf + 1)[0]) < 43.5, quality
    assert size < frames.nbytes / 20


def moving(n: int, height: int, width: int) -> np.ndarray:
    """``n`` frames of a texture sliding by a pixel a frame under noise: content an encoder predicts with B-frames."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width + n]
    texture = 128 + 60 * np.sin(x / 5)[..., None] * np.cos(y[..., None] / 7 + np.arange(3))
    frames = np.stack([texture[:, t:t + width] for t in range(n)]) + rng.normal(0, 2, (n, height, width, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def decode_whole(chunk) -> tuple[np.ndarray, list[int], list[bool]]:
    """PyAV's decode of all of ``chunk``'s packets (each stamped with its place in decoding order), not our
    Decoding: the frames, the frame each packet shows, and whether FFmpeg's decoder calls it a B picture."""
    import av

    decoder = av.CodecContext.create(chunk.decoder, "r")
    decoder.extradata = chunk.extradata or None
    pictures = []
    for i, data in enumerate(chunk.packets):
        pictures += decoder.decode(video.packet(data, i))
    pictures += decoder.decode(None)
    order = [p.pts for p in pictures]
    shown = [order.index(i) for i in range(len(chunk.packets))]
    is_b = [int(pictures[shown[i]].pict_type) == 3 for i in range(len(chunk.packets))]  # AV_PICTURE_TYPE_B
    return np.stack([p.to_ndarray(format="rgb24") for p in pictures]), shown, is_b


@pytest.mark.parametrize("codec, fast", [("h264", False), ("hevc", False), ("h264", True), ("hevc", True)])
def test_a_random_frame_decodes_only_the_pictures_it_depends_on(codec, fast, monkeypatch):
    """A random read leaves out the pictures before its frame that no picture references: each frame read alone
    (a fresh decoder) equals PyAV's decode of the whole chunk while feeding the decoder fewer packets. The
    packets read as droppable are B pictures (FFmpeg's decoder says which are); with ``fast_decode`` (no
    B-pyramid) they are exactly the B pictures, and a frame costs about a third of the packets. The chunk's
    presentation order is the decoder's. Reads in any order through one decoder, and a version 1 chunk (no
    presentation order: every packet up to the frame decoded), give the same frames."""
    chunk = encode(moving(16, 96, 128), codec, crf=24, fast_decode=fast)
    want, shown, is_b = decode_whole(chunk)
    drop = droppable(chunk)
    assert list(chunk.shown) == shown and sum(drop) >= 4 and all(b for b, d in zip(is_b, drop) if d), (shown, is_b, drop)
    if fast:
        assert drop == is_b
    fed = []
    monkeypatch.setattr(video, "packet", lambda data, pts=None, real=video.packet: fed.append(pts) or real(data, pts))
    counts = []
    for k in range(16):
        fed.clear()
        np.testing.assert_array_equal(Decoding(chunk, (96, 128), threads=1, thread_type="SLICE").frame(k), want[k])
        counts.append(len(fed))
    kept = 16 - sum(drop)  # packets a frame may need: every one kept, and its own
    assert max(counts) <= kept + 1 and np.mean(counts) < (16 / 3 + 1 if fast else 8), counts
    v1 = bytearray(pack(chunk)[:-4 * len(chunk.packets)])  # version 1: the same without the presentation order
    v1[4] = 1
    for data in (pack(chunk), bytes(v1)):
        decoding = Decoding(unpack(data), (96, 128))
        for k in (5, 6, 7, 2, 15, 0, 1, 9, 9, 3, 4, 12, 13):
            np.testing.assert_array_equal(decoding.frame(k), want[k])
        assert decoding.frame(16) is None


def test_fast_decode_encodes_cavlc_and_is_recorded_in_the_codec_and_the_attrs():
    """``fast_decode`` is x264's fastdecode tune: its picture parameter set says CAVLC (entropy_coding_mode_flag
    0, the bit after two one-bit ue(v) ids of 0), the default's CABAC; the spec carries it to the zarr codec's
    configuration and the sequence's attrs, and refuses it for codecs without an encoder."""
    frames = moving(4, 64, 64)

    def cabac(chunk) -> int:
        pps = next(p[m.end() + 1] for p in chunk.packets[:1] for m in re.finditer(b"\x00\x00\x01", p)
                   if p[m.end()] & 31 == 8)
        assert pps >> 6 == 0b11, bin(pps)  # pic_parameter_set_id 0, seq_parameter_set_id 0
        return pps >> 5 & 1

    assert cabac(encode(frames, crf=20)) == 1 and cabac(encode(frames, crf=20, fast_decode=True)) == 0
    spec = StorageSpec("h264", fast_decode=True)
    assert spec.serializer().to_dict()["configuration"]["fast_decode"] is True
    assert "fast_decode" not in StorageSpec("h264").serializer().to_dict()["configuration"]
    assert StorageSpec.from_attrs(spec.to_attrs()) == spec and StorageSpec.from_attrs({"codec": "h264"}).fast_decode is False
    with pytest.raises(ValueError, match="h264 / hevc"):
        StorageSpec("zstd", fast_decode=True)


def test_copied_mp4_packets_without_pyramid_drop_their_b_frames(tmp_path):
    """The copy preset keeps an mp4's packets (length-prefixed, avcC): those read as droppable are FFmpeg's B
    pictures in a stream without B-pyramid, and frames read alone equal PyAV's decode of the file."""
    mp4 = tmp_path / "v.mp4"
    frames = moving(16, 96, 128)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x96", "-i", "-",
                    "-c:v", "libx264", "-crf", "24", "-bf", "3", "-x264-params", "b-pyramid=none", "-g", "16",
                    "-pix_fmt", "yuv420p", str(mp4)], input=frames.tobytes(), check=True)
    from nersemble_cube.conversion.tasks import gop_chunks
    from nersemble_cube.source.converters.video import probe, read_packets

    chunk = unpack(gop_chunks(read_packets(probe(mp4)))[0])
    want, shown, is_b = decode_whole(chunk)
    assert chunk.extradata[0] == 1 and list(chunk.shown) == shown
    assert droppable(chunk) == is_b and sum(is_b) >= 6, is_b
    np.testing.assert_array_equal(want, decode_pyav(mp4))
    for k in (9, 3, 15, 0):
        np.testing.assert_array_equal(Decoding(chunk, (96, 128)).frame(k), want[k])


def test_odd_frame_sizes_and_short_chunks_round_trip():
    """yuv420p wants even sizes: odd frames are encoded padded and read back at their size; a chunk the array's
    end cuts short reads back too."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:33, 0:35]
    frames = np.clip(128 + 50 * np.sin(x / 4 + y / 5)[None, ..., None] + rng.normal(0, 2, (5, 33, 35, 3)), 0, 255)
    arr = zarr.create_array({}, shape=(1, 5, 33, 35, 3), chunks=(1, 4, 33, 35, 3), dtype="u1",
                            serializer=VideoCodec(crf=10), compressors=None)
    arr[0] = frames.astype(np.uint8)
    back = arr[0]
    assert back.shape == (5, 33, 35, 3) and min(psnr(back[t], frames[t]) for t in range(5)) > 35


def test_a_damaged_video_chunk_is_a_checksum_error_never_wrong_frames(encoded, tmp_path):
    import shutil

    damaged = tmp_path / "c.zarr"
    shutil.copytree(encoded, damaged)
    shard = damaged / SEQ / "images" / "c" / "0" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x10
    shard.write_bytes(bytes(data))
    serial = str(nersemble_cube.open(encoded)[SEQ].camera.values[0])
    with pytest.raises(ValueError, match="Stored and computed checksum do not match"):
        nersemble_cube.FrameReader(damaged, SEQ).read(serial, 1)
    with pytest.raises(ValueError, match="Stored and computed checksum do not match"):
        zarr.open_array(str(damaged / SEQ / "images"), mode="r")[0, 1]
    res = run_cli("verify", damaged, "--full", "--no-mark")
    assert res.returncode == 4 and f"damaged: {SEQ}/images: camera {serial} frames 0-3: checksum mismatch" in res.stderr


def test_a_video_cube_opens_with_plain_xarray_in_a_fresh_process(encoded):
    """zarr finds the codec through the package's entry point: no import of ours in the reading process."""
    code = ("import sys, xarray as xr; t = xr.open_datatree(sys.argv[1], engine='zarr', chunks=None); "
            "f = t['nvs/388/sequences/GLASSES'].images.isel(camera=0, time=6).values; print(f.shape, int(f.sum()))")
    res = subprocess.run([sys.executable, "-c", code, str(encoded)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    ours = nersemble_cube.FrameReader(encoded, SEQ)
    frame = ours.read(ours.cameras[0], 6)
    assert res.stdout.split() == ["(1604,", "1100,", "3)", str(int(frame.sum()))]


def test_the_crf_chosen_for_a_sequence_is_recorded_and_kept(encoded, gop_source):
    """The CRF chosen on the sequence's first frames is in its storage attrs and its codec's configuration, and
    the frames the choice was made on keep the PSNR asked for."""
    ds = nersemble_cube.open(encoded)[SEQ].to_dataset()
    crf = ds.attrs["storage"]["crf"]
    codec = zarr.open_array(str(encoded / SEQ / "images"), mode="r").metadata.codecs[0].codecs[0]
    assert isinstance(crf, int) and codec.crf == crf
    want = decode_pyav(gop_source / SEQ / "images" / f"cam_{ds.camera.values[0]}.mp4")
    got = ds.images.isel(camera=0).values
    assert min(psnr(got[t], want[t]) for t in range(4)) >= 43.5


def test_preprocess_and_the_compat_manager_read_video_cubes_unchanged(encoded):
    from nersemble_cube.compat import NVSDataManager

    ds = nersemble_cube.open(encoded)[SEQ].to_dataset()
    frames = ds.images.sel(camera=SERIAL).values
    half = ds.nersemble.downscale(2).images.sel(camera=SERIAL, time=5).values
    want = frames[5].reshape(802, 2, 550, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(half.astype(np.float64) - want).max() <= 1  # area average of the decoded frame, rounded
    image = NVSDataManager(encoded, 388).load_image("GLASSES", SERIAL, 5)
    np.testing.assert_array_equal(image, frames[5] / 255.0)


def test_copy_refuses_keyframes_at_irregular_intervals_in_one_line(gop_source, tmp_path):
    import shutil

    source = tmp_path / "benchmark"
    shutil.copytree(gop_source, source)
    reencode(source / SEQ / "images" / f"cam_{SERIAL}.mp4", "-force_key_frames", "expr:eq(n,0)+eq(n,2)+eq(n,5)",
             "-g", "100", "-sc_threshold", "0")
    res = run_cli("convert", source, tmp_path / "c.zarr", "--codec", "copy")
    assert res.returncode == 3 and res.stderr.count("error:") == 1 and "converting" not in res.stderr, res.stderr
    assert "keyframes at irregular intervals (groups of 2, 3, 3 frames)" in res.stderr
    assert "use --codec h264 (re-encoded, lossy) or zstd" in res.stderr
    assert not (tmp_path / "c.zarr").exists()  # refused before anything is written


def test_copy_cannot_keep_every_nth_frame(dataset_dir, tmp_path):
    res = run_cli("convert", dataset_dir, tmp_path / "c.zarr", "--codec", "copy", "--every-nth", "2")
    assert res.returncode == 2 and "--codec copy stores the mp4s' packets, so it keeps every frame" in res.stderr


def test_size_estimates_price_the_video_presets(gop_source):
    """What --dry-run and the disk check print: copy costs at least the mp4s' bytes (and less than the lossless
    presets); h264 less than zstd."""
    from nersemble_cube.conversion.estimate import estimate_bytes
    from nersemble_cube.conversion.plan import plan

    presets = [StorageSpec("zstd"), StorageSpec("h264"), StorageSpec("copy")]
    sizes = {spec.codec: n for spec, n in estimate_bytes(plan(gop_source, ["nvs"]), presets).items()}
    images = sum(p.stat().st_size for p in (gop_source / SEQ / "images").glob("*.mp4"))
    assert images <= sizes["copy"] < sizes["zstd"] and sizes["h264"] < sizes["zstd"], (images, sizes)


def test_chunk_bytes_are_checked_before_they_reach_the_decoder():
    chunk = encode(np.zeros((2, 16, 16, 3), np.uint8))
    assert unpack(pack(chunk)) == chunk
    with pytest.raises(ValueError, match="not a nersemble_cube.video chunk"):
        unpack(b"JUNK" + pack(chunk)[4:])
    with pytest.raises(ValueError, match="damaged nersemble_cube.video chunk"):
        unpack(pack(chunk)[:-3])
    assert Decoding(chunk, (16, 16)).frame(2) is None  # past the frames the packets hold


@pytest.mark.parametrize("preset", ["copy", "h264"])
def test_scaled_levels_of_video_cubes_read_at_their_odd_size(preset, copied, encoded):
    """--scales 4 of 1604x1100 frames is 401x275 (odd: h264 pads and crops it); copy has no packets of scaled
    frames, so its levels are zstd. Each level equals the area average of the frames read at full size."""
    cube = copied if preset == "copy" else encoded
    full = nersemble_cube.open(cube)[SEQ].to_dataset().images.sel(camera=SERIAL).values
    small = nersemble_cube.open(cube, scale=4)[SEQ].to_dataset()
    assert small.attrs["storage"]["codec"] == ("zstd" if preset == "copy" else "h264")
    got = small.images.sel(camera=SERIAL).values
    want = full.reshape(N_FRAMES, 401, 4, 275, 4, 3).astype(np.float64).mean(axis=(2, 4))
    if preset == "copy":
        assert np.abs(got - want).max() <= 1  # lossless store of the rounded average
    else:
        assert got.shape == (N_FRAMES, 401, 275, 3) and min(psnr(got[t], want[t]) for t in range(N_FRAMES)) > 40


def test_a_frame_reader_of_a_video_cube_pickles_and_shares_between_threads(copied, gop_source):
    """DataLoader workers get a pickled reader (its decoder stays behind); threads sharing one reader take turns
    with its decoder and each gets its own frame."""
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    want = decode_pyav(gop_source / SEQ / "images" / f"cam_{SERIAL}.mp4")
    reader = nersemble_cube.FrameReader(copied, SEQ)
    reader.read(SERIAL, 4)  # a decoder is open now
    again = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(again.read(SERIAL, 5), want[5])
    order = [7, 0, 3, 4, 5, 1, 6, 2] * 4
    with ThreadPoolExecutor(4) as pool:
        frames = list(pool.map(lambda t: reader.read(SERIAL, t), order))
    for t, frame in zip(order, frames):
        np.testing.assert_array_equal(frame, want[t])


def test_decoders_left_half_way_through_a_chunk_never_hang_the_process():
    """Random reads leave chunks half-decoded, and their frame-threaded decoders are freed with pictures in flight
    (when the reader moves on, by the garbage collector, at exit). Packets whose buffers Python lent FFmpeg made
    that deadlock at exit (3 runs of 3 before the fix); the process must end."""
    script = (
        "import numpy as np\n"
        "from nersemble_cube.cube.codecs import video\n"
        "rng = np.random.default_rng(0)\n"
        "chunk = video.encode(rng.integers(0, 255, (16, 480, 640, 3), dtype=np.uint8), crf=20)\n"
        "for _ in range(40):\n"
        "    decoding = video.Decoding(chunk, (480, 640), threads=4)\n"
        "    for k in range(int(rng.integers(15))):\n"  # in order: pictures stay in flight
        "        decoding.frame(k)\n"
        "print('done')\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (res.returncode, res.stdout.strip()) == (0, "done"), res.stderr


def test_every_h264_frame_is_cut_into_8_slices_whatever_the_cores():
    """Slices let one frame decode on several threads; their count is fixed (x264's automatic threads would set
    it by the converting machine's cores): 8 slice NAL units in the keyframe and in each predicted frame."""
    frames = np.random.default_rng(0).integers(0, 255, (3, 512, 512, 3), dtype=np.uint8)
    chunk = encode(frames, crf=30)
    kinds = [[p[m.end()] & 31 for m in re.finditer(b"\x00\x00\x01", p) if m.end() < len(p)] for p in chunk.packets]
    assert kinds[0].count(5) == 8 and all(k.count(1) == 8 for k in kinds[1:]), kinds  # IDR slices, then non-IDR
