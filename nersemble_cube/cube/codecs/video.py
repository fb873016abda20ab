"""The video codec for uint8 frame chunks along ``time``, registered with zarr as ``nersemble_cube.video``: each
chunk ``(1, n, y, x, 3)`` is ONE closed group of pictures, a stream of H.264 or HEVC packets a fresh decoder
decodes alone (PyAV: libx264 / libx265 to write, FFmpeg's decoders to read). A static backdrop seen by fixed
cameras is what inter-frame prediction compresses and no per-frame codec can.

Two ways a chunk is made:

- encoded from frames (:class:`VideoCodec` with ``codec`` ``"h264"`` or ``"hevc"``): lossy at the encoder's
  ``crf``; frames enter as RGB, are converted to ``pix_fmt`` (yuv420p: BT.601, limited range, as the source
  mp4s) and come back through the same RGB24 conversion as the source's decode;
- copied from the source (``codec="copy"``, :func:`pack` of a source GOP's packets, written by the converter):
  bit-equal to decoding the mp4, since the decoder sees the very packets it would see there.

A chunk's bytes (:func:`pack` / :func:`unpack`): ``NCVC``, a version byte, then little-endian fields: the
decoder's name, the coded width and height (even: odd frame sizes are encoded padded by their last row and
column, cropped on decode), the number of frames the packets hold, the decoder's extradata (an mp4's avcC /
hvcC; empty for Annex B streams that carry their parameter sets in band), the packets in decoding order and
(version 2) the presentation index of each packet's picture. Frames come out of the decoder in presentation
order; chunk frame ``k`` is the ``k``-th out. zarr pads a chunk cut by the array's end with the fill value; a
chunk holding fewer frames reads the rest as the fill value too.

A single frame decodes only the pictures it depends on: the packets before its own in decoding order, less
those whose picture no later picture predicts from (H.264 ``nal_ref_idc`` 0, HEVC sub-layer non-reference
pictures: :func:`droppable`) and that show earlier frames: a random frame of a 16-frame chunk of the encoded
presets costs about 6 pictures, not 9 (about 4 with ``fast_decode``, whose B-frames are never references).

Reading a store written with it needs ``import nersemble_cube`` or the package installed (zarr finds the codec
through its ``zarr.codecs`` entry point) and PyAV; reading cubes of the other codecs does not import PyAV.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

if TYPE_CHECKING:
    from typing import Self

    import av

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

VideoCodecName = Literal["h264", "hevc", "copy"]
ENCODERS = {"h264": "libx264", "hevc": "libx265"}
"""The encoder (an FFmpeg name, as PyAV's wheels carry it) of each codec a chunk is encoded with."""
DECODERS = ("h264", "hevc", "av1")
"""The decoders a chunk may name (FFmpeg's software decoders; a source mp4's packets keep their own)."""
MAGIC, VERSION = b"NCVC", 2
"""Chunk byte layout version: 2 adds each packet's presentation index (schema 1.5); version 1 chunks (1.4
cubes) still read, decoding every packet up to the frame."""
DECODE_THREADS = min(os.cpu_count() or 1, 16)
"""Threads one chunk decodes with (FFmpeg's frame and slice threads)."""

SLICES = 8
"""Slices each frame of the h264 preset is cut into (x264's sliced threads, one slice a thread; fewer on frames
under 8 x 4 macroblock rows; libx265 keeps its own threading): a frame then decodes on as many threads without
frame threading's delay, which a random read pays for. Fixed, so that a chunk's bytes do not depend on the
converting machine's cores (x264's automatic thread count sets the slices)."""

DECODE_THREAD_TYPE: str | None = None
"""FFmpeg's threading of a chunk's decoder, ``AUTO`` (frame and slice threads), ``SLICE`` or ``FRAME``; None:
``SLICE`` for single frames of the chunks this module encodes (frame threads hold back each picture until more
are queued: a random frame took 147 ms with 16 AUTO threads, 59 ms with SLICE ones, docs/performance.md),
``AUTO`` for whole chunks and for the copy preset's chunks (the source's packets: one slice a frame, usually)."""


@dataclass(frozen=True)
class VideoChunk:
    """One chunk's content: ``packets`` (decoding order) for the FFmpeg decoder ``decoder`` with its
    ``extradata``, pictures of ``width`` x ``height`` (coded size), ``frames`` of them; ``shown``: the
    presentation index (0-based, within the chunk) of each packet's picture, None in version 1 chunks."""

    decoder: str
    width: int
    height: int
    frames: int
    extradata: bytes
    packets: list[bytes]
    shown: tuple[int, ...] | None


def pack(chunk: VideoChunk) -> bytes:
    """The stored bytes of ``chunk`` (module docstring; the current :data:`VERSION`)."""
    if chunk.shown is None or len(chunk.shown) != len(chunk.packets):
        raise ValueError("a video chunk needs the presentation index of each packet")
    name = chunk.decoder.encode()
    n = len(chunk.packets)
    head = MAGIC + struct.pack("<BB", VERSION, len(name)) + name + struct.pack(
        "<IIIII", chunk.width, chunk.height, chunk.frames, len(chunk.extradata), n)
    sizes = struct.pack(f"<{n}I", *map(len, chunk.packets))
    return b"".join([head, chunk.extradata, sizes, *chunk.packets, struct.pack(f"<{n}I", *chunk.shown)])


def unpack(data: bytes | memoryview) -> VideoChunk:
    """The :class:`VideoChunk` of stored bytes; ``ValueError`` for bytes that are not one (the crc32c before it
    catches damage, so this only meets bytes of another writer)."""
    data = memoryview(data)
    try:
        if bytes(data[:4]) != MAGIC or data[4] not in (1, VERSION):
            raise ValueError("not a nersemble_cube.video chunk (or of a newer version)")
        version = data[4]
        at = 6 + data[5]
        decoder = bytes(data[6:at]).decode()
        width, height, frames, n_extra, n_packets = struct.unpack_from("<IIIII", data, at)
        at += 20
        extradata = bytes(data[at:at + n_extra])
        at += n_extra
        sizes = struct.unpack_from(f"<{n_packets}I", data, at)
        at += 4 * n_packets
    except (struct.error, UnicodeDecodeError, IndexError) as e:
        raise ValueError(f"a damaged nersemble_cube.video chunk ({e})") from None
    end = at + sum(sizes)
    shown = None
    if version > 1 and end + 4 * n_packets == len(data):
        shown = struct.unpack_from(f"<{n_packets}I", data, end)
        end += 4 * n_packets
    if decoder not in DECODERS or end != len(data) or (shown is not None and sorted(shown) != list(range(n_packets))):
        raise ValueError(f"a damaged nersemble_cube.video chunk ({decoder!r}, {len(data)} bytes)")
    packets, offsets = [], np.cumsum((at, *sizes)).tolist()
    for start, stop in zip(offsets, offsets[1:]):
        packets.append(bytes(data[start:stop]))
    return VideoChunk(decoder, width, height, frames, extradata, packets, shown)


def _nal_headers(data: bytes, decoder: str, extradata: bytes) -> Iterator[bytes]:
    """The first two bytes of each NAL unit in packet ``data``: Annex B (start codes) unless ``extradata`` is an
    avcC / hvcC record (first byte 1), whose packets prefix each unit with its length (the record says how
    many bytes: its byte 4 for avcC, 21 for hvcC)."""
    if extradata[:1] == b"\x01":
        size = (extradata[4 if decoder == "h264" else 21] & 3) + 1
        at = 0
        while at + size + 2 <= len(data):
            yield data[at + size:at + size + 2]
            at += size + int.from_bytes(data[at:at + size], "big")
        return
    at = data.find(b"\x00\x00\x01")
    while 0 <= at <= len(data) - 5:
        yield data[at + 3:at + 5]
        at = data.find(b"\x00\x00\x01", at + 3)


def droppable(chunk: VideoChunk) -> list[bool]:
    """For each packet of ``chunk``: whether no other picture predicts from its picture, so that a decoder
    heading for a later frame may leave it out. Read from the bitstream: H.264 slices with ``nal_ref_idc``
    0; HEVC sub-layer non-reference slices (even NAL types up to 14) in a chunk of one temporal layer (a
    higher layer could still predict from them). All False for other decoders and for packets without slices."""
    if chunk.decoder not in ("h264", "hevc"):
        return [False] * len(chunk.packets)
    out = []
    for data in chunk.packets:
        for head in _nal_headers(data, chunk.decoder, chunk.extradata):
            if chunk.decoder == "h264" and 1 <= head[0] & 31 <= 5:  # a coded slice
                out.append(head[0] & 0x60 == 0)
                break
            if chunk.decoder == "hevc" and head[0] >> 1 & 63 < 32:  # a coded slice segment
                if head[1] & 7 != 1:  # TemporalId above 0: keep every picture
                    return [False] * len(chunk.packets)
                out.append(head[0] >> 1 & 63 <= 14 and head[0] >> 1 & 1 == 0)
                break
        else:
            out.append(False)
    return out


def encode(frames: np.ndarray, codec: str = "h264", crf: int = 16, preset: str = "medium",
           pix_fmt: str = "yuv420p", threads: int = SLICES, fast_decode: bool = False) -> VideoChunk:
    """``frames`` ``(n, y, x, 3)`` uint8 RGB as one closed GOP (a keyframe, then predicted frames) of ``codec``
    at ``crf`` and encoder ``preset``; odd sizes padded by their last row and column. ``threads``: the encoder's
    sliced threads, i.e. slices per frame (:data:`SLICES`). ``fast_decode``: for random reads: B-frames no
    picture references (:data:`FAST_DECODE_PARAMS`) and the encoder's ``fastdecode`` tune (x264: CAVLC instead
    of CABAC, no deblocking or weighted prediction): a random frame decodes ~2x faster for ~16 % more bytes
    at the same CRF (docs/performance.md)."""
    import av  # here, not at import (like the decoders below): reading other codecs' cubes does not need PyAV

    n, height, width = frames.shape[:3]
    pad = ((0, 0), (0, height % 2), (0, width % 2), (0, 0))
    if any(p for _, p in pad):
        frames = np.pad(frames, pad, mode="edge")
    encoder = av.CodecContext.create(ENCODERS[codec], "w")
    encoder.width, encoder.height = frames.shape[2], frames.shape[1]
    encoder.pix_fmt = pix_fmt
    encoder.time_base = Fraction(1, 25)
    encoder.framerate = Fraction(25)
    encoder.gop_size = n
    encoder.thread_type, encoder.thread_count = "SLICE", threads
    encoder.options = {"crf": str(crf), "preset": preset,
                       f"{ENCODERS[codec][3:]}-params": f"keyint={n}:min-keyint={n}:scenecut=0" + (
                           ":log-level=error" if codec == "hevc" else "") + (FAST_DECODE_PARAMS[codec] if fast_decode else ""),
                       **({"tune": "fastdecode"} if fast_decode else {})}
    packets = []
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format=pix_fmt)
        frame.pts = i
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    return VideoChunk(codec, encoder.width, encoder.height, n, bytes(encoder.extradata or b""),
                      [bytes(p) for p in packets], tuple(p.pts for p in packets))


FAST_DECODE_PARAMS = {"h264": ":b-pyramid=none", "hevc": ":b-pyramid=0"}
"""``fast_decode``'s encoder parameters beyond the tune: no B-pyramid, so no picture predicts from a B-frame and
a random frame decodes its chunk's I- and P-frames before it and itself (about 4 pictures of 16, against ~6
with the encoders' default pyramid, whose middle B-frames are references; +0.4 % bytes on full-dataset-like
footage, +8 % on benchmark-like at the same CRF: docs/performance.md)."""


CRF_RANGE = (4, 36)
"""The CRFs :func:`crf_for_psnr` searches (lower: better, larger)."""


def crf_for_psnr(frames: np.ndarray, target: float, codec: str = "h264", preset: str = "medium",
                 fast_decode: bool = False) -> int:
    """The highest CRF whose encode of ``frames`` ``(n, y, x, 3)`` (one GOP; :func:`encode`'s ``codec``,
    ``preset``, ``fast_decode``) keeps every frame at ``target`` dB PSNR or better against them (bisection over
    :data:`CRF_RANGE`; its lowest if none does)."""
    def worst(crf: int) -> float:
        chunk = encode(frames, codec, crf, preset, fast_decode=fast_decode)
        back = Decoding(chunk, frames.shape[1:3]).all(len(frames))
        mse = ((back.astype(np.float64) - frames) ** 2).reshape(len(frames), -1).mean(axis=1).max()
        return float("inf") if mse == 0 else float(10 * np.log10(255 ** 2 / mse))

    lo, hi = CRF_RANGE  # invariant: lo keeps the target (or is the range's start), hi does not (or its end + 1)
    hi += 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if worst(mid) >= target else (lo, mid)
    return lo


def packet(data: bytes, pts: int | None = None) -> av.Packet:
    """``data`` copied into a packet whose buffer FFmpeg owns, stamped ``pts`` (the decoder hands it on to the
    picture). ``av.Packet(data)`` would lend FFmpeg the Python object instead, and releasing it takes the GIL:
    a frame-threaded decoder freed (or torn down at exit) while its threads still hold such packets deadlocks
    against the thread holding the GIL (seen with PyAV 18, FFmpeg 8, whenever a chunk is left half-decoded;
    tests/test_video.py)."""
    import av

    owned = av.Packet(len(data))
    memoryview(owned)[:] = data
    owned.pts = pts
    return owned


class Decoding:
    """A chunk being decoded: :meth:`frame` ``k`` feeds the decoder the packets frame ``k`` depends on (version
    2 chunks leave out the non-reference pictures of earlier frames: module docstring) until it comes out. A
    later frame continues from there (a reader reading in order pays one frame each); an earlier one starts the
    decoder again. Frames are ``(y, x, 3)`` uint8 RGB of ``shape`` (the array's frame size), FFmpeg's rgb24
    conversion as for the source."""

    def __init__(self, chunk: VideoChunk, shape: tuple[int, int], threads: int | None = None,
                 thread_type: str = "AUTO"):
        self.chunk, self.shape, self.threads = chunk, shape, threads or DECODE_THREADS
        self.thread_type = DECODE_THREAD_TYPE or thread_type
        self._droppable = droppable(chunk) if chunk.shown is not None else [False] * len(chunk.packets)
        self._start()

    def _start(self) -> None:
        import av

        self._decoder = av.CodecContext.create(self.chunk.decoder, "r")
        if self.chunk.extradata:
            self._decoder.extradata = self.chunk.extradata
        self._decoder.thread_type = self.thread_type
        self._decoder.thread_count = self.threads
        self._fed = 0  # packets fed or left out, in decoding order (one more: the decoder drained)
        self._out: dict[int, av.VideoFrame] = {}  # pictures out and not yet read, by frame
        self._counted = 0  # pictures out so far (version 1 chunks number them so)
        self._last = -1  # the frame last read

    def _receive(self, pictures: list[av.VideoFrame], k: int) -> None:
        for picture in pictures:
            index = self._counted if self.chunk.shown is None else picture.pts
            self._counted += 1
            if index >= k:
                self._out[index] = picture

    def _picture(self, k: int) -> av.VideoFrame | None:
        if k <= self._last:
            self._start()
        shown = self.chunk.shown
        while k not in self._out:
            if self._fed > len(self.chunk.packets):
                return None
            if self._fed == len(self.chunk.packets):
                self._receive(self._decoder.decode(None), k)
            elif not (self._droppable[self._fed] and shown[self._fed] < k):
                pts = None if shown is None else shown[self._fed]
                self._receive(self._decoder.decode(packet(self.chunk.packets[self._fed], pts)), k)
            self._fed += 1
        self._last = k
        return self._out.pop(k)  # the others came out after it: later frames

    def frame(self, k: int) -> np.ndarray | None:
        """Frame ``k`` of the chunk (a new array), or None if its packets hold fewer frames."""
        if self.chunk.shown is not None and not 0 <= k < len(self.chunk.shown):  # shown: a permutation of 0..n-1
            return None
        picture = self._picture(k)
        if picture is None:
            return None
        rgb = picture.to_ndarray(format="rgb24")
        return rgb if rgb.shape[:2] == self.shape else np.ascontiguousarray(rgb[:self.shape[0], :self.shape[1]])

    def all(self, n: int, fill_value: int = 0) -> np.ndarray:
        """The chunk's first ``n`` frames ``(n, y, x, 3)``, the fill value past those its packets hold."""
        out = np.empty((n, *self.shape, 3), np.uint8)  # written once: a frame, or the fill value past the last
        for k in range(n):
            frame = self.frame(k)
            if frame is None:
                out[k:] = fill_value
                break
            out[k] = frame
        return out


@dataclass(frozen=True)
class VideoCodec(ArrayBytesCodec):
    """Closed-GOP video chunks (module docstring) of uint8 RGB frames ``(1, n, y, x, 3)``.

    ``codec``: ``"h264"`` (libx264) or ``"hevc"`` (libx265) to encode at ``crf`` with the encoder's ``preset``
    into ``pix_fmt`` (``fast_decode``: its ``fastdecode`` tune, :func:`encode`); ``"copy"``: the chunks hold a source's own packets, written by the converter (writing
    frames through zarr is refused: there is no encoder to match them). Any chunk decodes whatever its codec.
    """

    is_fixed_size = False
    codec: VideoCodecName = "h264"
    crf: int = 16
    preset: str = "medium"
    pix_fmt: str = "yuv420p"
    fast_decode: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> Self:
        _, config = parse_named_configuration(data, "nersemble_cube.video", require_configuration=False)
        return cls(**(config or {}))

    def to_dict(self) -> dict:
        fast = {"fast_decode": True} if self.fast_decode else {}  # absent: as the cubes written before it
        return {"name": "nersemble_cube.video", "configuration": {
            "codec": self.codec, "crf": self.crf, "preset": self.preset, "pix_fmt": self.pix_fmt, **fast}}

    def validate(self, *, shape, dtype, chunk_grid) -> None:  # noqa: ANN001 - zarr's signature
        if np.dtype(dtype.to_native_dtype()) != np.uint8:
            raise ValueError("VideoCodec stores uint8 frames only")
        if len(shape) != 5 or shape[-1] != 3:
            raise ValueError(f"VideoCodec stores (camera, time, y, x, 3) RGB frames, not an array of shape {shape}")

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError("video sizes depend on the content")

    def encode_chunk(self, array: np.ndarray) -> bytes:
        """A chunk ``(1, n, y, x, 3)`` as its stored bytes (before the checksum)."""
        if self.codec == "copy":
            raise ValueError("this array holds the source's own video packets (exact mode): convert writes it; "
                             "frames cannot be written into it")
        return pack(encode(array.reshape(array.shape[1:]), self.codec, self.crf, self.preset, self.pix_fmt,
                           fast_decode=self.fast_decode))

    def decoding(self, data: bytes | memoryview, shape: tuple[int, ...], whole: bool = False) -> Decoding:
        """A :class:`Decoding` of the stored bytes of a chunk of ``shape`` ``(1, n, y, x, 3)``, to read single
        frames (slice threads, for the encoded presets: :data:`DECODE_THREAD_TYPE`) or the ``whole`` chunk."""
        threads = "AUTO" if whole or self.codec == "copy" else "SLICE"
        return Decoding(unpack(data), tuple(shape[2:4]), thread_type=threads)

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer:
        return chunk_spec.prototype.buffer.from_bytes(self.encode_chunk(chunk_array.as_numpy_array()))

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        shape = chunk_spec.shape
        decoding = self.decoding(chunk_bytes.as_numpy_array(), shape, whole=True)
        frames = decoding.all(shape[1], int(chunk_spec.fill_value))
        return chunk_spec.prototype.nd_buffer.from_numpy_array(frames.reshape(shape))

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)


register_codec("nersemble_cube.video", VideoCodec)
