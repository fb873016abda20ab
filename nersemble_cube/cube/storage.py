"""Named, typed storage settings: codec presets and the chunk/shard layout of frame arrays.

A store records the :class:`StorageSpec` it was written with (``attrs["storage"]`` of each
sequence), so it says how it was made. ``zstd`` (the default), ``lz4`` and ``none`` are lossless:
frames read back bit-equal. ``jpegxl`` is a lossy image codec for stores near the mp4s' size
(:class:`~.codecs.jpegxl.JpegXlCodec`); ``h264`` and ``hevc`` store chunks of frames along ``time`` as closed-GOP
video, and ``copy`` the source's own packets, bit-equal to decoding the mp4 (:class:`~.codecs.video.VideoCodec`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from .codecs.jpegxl import JpegXlCodec
from .codecs.video import ENCODERS, VideoCodec, crf_for_psnr, encode, pack

DEFAULT_CRF = 12
"""The CRF of a spec used before its own is chosen (:meth:`StorageSpec.with_crf`): >= 43 dB on camera-like footage."""
from .presets import CODECS, LOSSLESS, VIDEO, VIDEO_FRAMES_PER_CHUNK, CodecName  # noqa: F401 - re-exported


@dataclass(frozen=True)
class StorageSpec:
    """How frame arrays are stored.

    ``codec``: ``"zstd"`` (zstd at ``level``, the default), ``"lz4"`` (blosc-lz4 at ``level``,
    fastest to decode), ``"none"``, or ``"jpegxl"`` (lossy JPEG-XL at Butteraugli ``distance`` and encoder
    ``effort``; the defaults 0.6 and 5 keep ~45 dB PSNR against the decoded mp4 on camera-like footage at
    ~2.8x its bytes with libjxl 0.12, ~3.2x with 0.11: docs/performance.md), ``"h264"`` / ``"hevc"`` (lossy
    closed-GOP video of ``frames_per_chunk`` frames per chunk, libx264 / libx265 at ``crf`` with encoder
    ``preset``; by default the highest CRF that keeps ``psnr`` dB on a sample of the sequence's frames;
    ``fast_decode``: for random reads, B-frames no picture references and the encoder's ``fastdecode`` tune, a
    random frame ~2x faster for ~16 % more bytes), or ``"copy"`` (each chunk one GOP of the source mp4's own packets: bit-equal, the mp4's bytes;
    its keyframes must fall every ``frames_per_chunk`` frames, which by default is read from the source).
    Alpha mattes are stored lossless whatever the codec (:meth:`for_mattes`).
    ``frames_per_chunk``: frames of one camera per chunk along ``time`` (1 = one frame per chunk,
    the fastest random access; image codecs need 1; default 1, or :data:`VIDEO_FRAMES_PER_CHUNK` for
    h264 / hevc, 0 for copy: the source's GOP). ``frames_per_shard``: chunks are grouped into
    zarr v3 shards of this many frames (one file per camera and shard; 0 = no sharding, one file per
    chunk). A single-frame read still fetches only that frame's bytes (plus the shard index). ``row_blocks``:
    the lossless presets store each frame as this many chunks of consecutive rows (the last one padded), which
    a GPU decompresses in parallel (nvCOMP decodes each zstd chunk on its own: in 8 blocks, random 1100 x 1604
    frames reach an H200's memory ~2.4x faster than in one, for ~2 % more bytes; docs/performance.md); 1: a frame
    per chunk.
    """

    codec: CodecName = "zstd"
    level: int = 3
    frames_per_chunk: int | None = None
    frames_per_shard: int = 32
    distance: float = 0.6
    effort: int = 5
    crf: int | None = None
    preset: str = "medium"
    psnr: float = 43.5
    fast_decode: bool = False
    row_blocks: int = 1

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}; choose from {', '.join(CODECS)}")
        if self.frames_per_chunk is None:
            default = {"h264": VIDEO_FRAMES_PER_CHUNK, "hevc": VIDEO_FRAMES_PER_CHUNK, "copy": 0}.get(self.codec, 1)
            object.__setattr__(self, "frames_per_chunk", default)
        if self.codec == "copy" and self.frames_per_chunk == 0:
            return  # the GOP is read from the source: with_gop() gives the spec the conversion uses
        if self.row_blocks < 1:
            raise ValueError(f"row_blocks must be >= 1, got {self.row_blocks}")
        if self.row_blocks > 1 and (self.codec not in LOSSLESS or self.frames_per_chunk != 1):
            raise ValueError("row_blocks splits the frames of a lossless preset (zstd, lz4, none) stored one frame "
                             f"per chunk, not {self.codec} with {self.frames_per_chunk} frames per chunk")
        if self.fast_decode and self.codec not in ENCODERS:
            raise ValueError(f"fast_decode is an h264 / hevc setting, not one of {self.codec}")
        if self.crf is not None and not 0 <= self.crf <= 51:
            raise ValueError(f"crf {self.crf} is not a libx264 / libx265 CRF; choose 0 to 51 (lower: better)")
        levels = {"zstd": range(-7, 23), "lz4": range(0, 10)}.get(self.codec)
        if levels is not None and self.level not in levels:
            raise ValueError(f"level {self.level} is not a {self.codec} level; choose {levels.start} to {levels.stop - 1}")
        if not 1 <= self.effort <= 9:
            raise ValueError(f"effort {self.effort} is not a JPEG-XL effort; choose 1 to 9")
        if self.frames_per_chunk < 1 and self.codec != "copy":
            raise ValueError(f"frames_per_chunk must be >= 1, got {self.frames_per_chunk}")
        if self.codec == "jpegxl" and self.frames_per_chunk != 1:
            raise ValueError("the jpegxl codec stores one frame per chunk (frames_per_chunk=1)")
        if self.frames_per_shard < 0:
            raise ValueError(f"frames_per_shard must be >= 0 (0: no sharding), got {self.frames_per_shard}")
        if self.frames_per_shard and self.frames_per_shard % self.frames_per_chunk:
            if self.codec not in VIDEO:
                raise ValueError(f"frames_per_shard ({self.frames_per_shard}) must be a multiple of "
                                 f"frames_per_chunk ({self.frames_per_chunk})")
            # video: whole GOPs per shard, about as many frames as asked
            shard = max(1, round(self.frames_per_shard / self.frames_per_chunk)) * self.frames_per_chunk
            object.__setattr__(self, "frames_per_shard", shard)

    @property
    def lossless(self) -> bool:
        return self.codec in LOSSLESS

    @property
    def quality(self) -> str:
        """What the preset keeps, in words (empty for the lossless ones): for jpegxl the figure docs/performance.md
        measures on camera-like footage."""
        if self.codec in ENCODERS:
            return f"lossy: crf {self.crf}" if self.crf is not None else f"lossy: >= {self.psnr:g} dB"
        return {"jpegxl": "lossy: ~45 dB", "copy": "the mp4s' own packets: exact"}.get(self.codec, "")

    @property
    def video(self) -> bool:
        """Chunks are closed-GOP video (h264, hevc, copy)."""
        return self.codec in VIDEO

    def with_crf(self, sample: np.ndarray) -> StorageSpec:
        """The h264 / hevc spec with its CRF: as given, else the highest whose encode of ``sample`` (frames
        ``(n, y, x, 3)`` of the sequence, one GOP) keeps every frame at ``psnr`` dB
        (:func:`~.codecs.video.crf_for_psnr`)."""
        if self.crf is not None or self.codec not in ENCODERS:
            return self
        return replace(self, crf=crf_for_psnr(sample, self.psnr, self.codec, self.preset, self.fast_decode))

    def with_gop(self, gop: int) -> StorageSpec:
        """The ``copy`` spec for a source whose keyframes fall every ``gop`` frames (one chunk per GOP)."""
        shard = self.frames_per_shard and max(1, round(self.frames_per_shard / gop)) * gop
        return replace(self, frames_per_chunk=gop, frames_per_shard=shard)
    def compressors(self) -> tuple:
        """The zarr v3 bytes-to-bytes codecs of this spec: the compressor (none for ``none`` and ``jpegxl``),
        then a crc32c checksum of every chunk, so a damaged chunk fails to read instead of reading wrong."""
        if self.codec == "zstd":
            return (ZstdCodec(level=self.level), Crc32cCodec())
        if self.codec == "lz4":
            return (BloscCodec(cname="lz4", clevel=self.level, shuffle="noshuffle"), Crc32cCodec())
        return (Crc32cCodec(),)

    def serializer(self) -> JpegXlCodec | VideoCodec | None:
        """The array-to-bytes codec (None: zarr's default ``bytes``)."""
        if self.video:
            return VideoCodec(codec=self.codec, crf=DEFAULT_CRF if self.crf is None else self.crf, preset=self.preset,
                              fast_decode=self.fast_decode)
        return JpegXlCodec(distance=self.distance, effort=self.effort) if self.codec == "jpegxl" else None

    def frame_encoding(self, n_frames: int, frame_shape: tuple[int, ...]) -> dict:
        """zarr encoding (for xarray's ``to_zarr``) of a ``(camera, time, *frame_shape)`` array of ``n_frames``."""
        chunk = min(self.frames_per_chunk, n_frames)
        rows = -(-frame_shape[0] // min(self.row_blocks, frame_shape[0]))
        enc: dict = {"chunks": (1, chunk, rows, *frame_shape[1:]), "compressors": self.compressors()}
        if self.serializer() is not None:
            enc["serializer"] = self.serializer()
        shard = self.shard_frames(n_frames)
        if shard > chunk:
            enc["shards"] = (1, shard, -(-frame_shape[0] // rows) * rows, *frame_shape[1:])  # whole row blocks
        return enc

    def shard_frames(self, n_frames: int) -> int:
        """Frames per shard for a video of ``n_frames`` (a multiple of the chunk, at most the video)."""
        if not self.frames_per_shard:
            return min(self.frames_per_chunk, n_frames)
        chunk = min(self.frames_per_chunk, n_frames)
        return max(chunk, min(self.frames_per_shard, -(-n_frames // chunk) * chunk))

    def for_mattes(self) -> StorageSpec:
        """The spec of alpha mattes: this one, or for a lossy spec zstd with its chunks and shards (mattes
        stay lossless: they are small next to the frames, and their edges are what a lossy codec blurs)."""
        if self.lossless:
            return self
        return StorageSpec("zstd", frames_per_chunk=1 if self.video else self.frames_per_chunk,
                           frames_per_shard=self.frames_per_shard)

    def to_attrs(self) -> dict:
        """JSON-able record stored in each sequence's attrs."""
        return asdict(self)

    @classmethod
    def from_attrs(cls, attrs: dict) -> StorageSpec:
        """The spec a sequence's ``storage`` attrs record (fields an older cube lacks take their defaults; its
        JPEG-XL ``effort`` was 3)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in attrs.items() if k in known}
        if values.get("codec") == "jpegxl":
            values.setdefault("effort", 3)
        return cls(**values)


def encoded_size(frame: np.ndarray, spec: StorageSpec, following: np.ndarray | None = None) -> int:
    """Bytes one frame ``(y, x[, 3])`` uint8 takes when stored with ``spec`` (for size estimates). The h264 and
    hevc presets encode ``frame`` and the ``following`` frames ``(n, y, x, 3)`` as a GOP and extrapolate its
    keyframe and predicted frames to a chunk of ``frames_per_chunk``; ``copy`` is sized by the source's file."""
    if spec.codec in ENCODERS:
        frames = np.concatenate([frame[None], following]) if following is not None and len(following) else frame[None]
        spec = spec.with_crf(frames)
        chunk = encode(frames, spec.codec, spec.crf, spec.preset, fast_decode=spec.fast_decode)
        key = len(pack(chunk)) - sum(map(len, chunk.packets[1:]))
        predicted = np.mean([len(p) for p in chunk.packets[1:]]) if len(chunk.packets) > 1 else key
        n = spec.frames_per_chunk
        return int((key + (n - 1) * predicted) / n)
    if spec.codec == "copy":
        raise ValueError("the copy preset stores the source's packets: size it by the source files")
    if spec.codec == "jpegxl":
        return len(spec.serializer()._encode(frame))
    if spec.row_blocks > 1:  # each block compressed on its own
        rows = -(-frame.shape[0] // spec.row_blocks)
        one = replace(spec, row_blocks=1)
        return sum(encoded_size(frame[i:i + rows], one) for i in range(0, frame.shape[0], rows))
    if spec.codec == "zstd":
        import imagecodecs

        return len(imagecodecs.zstd_encode(np.ascontiguousarray(frame), level=spec.level))
    if spec.codec == "lz4":
        import numcodecs

        return len(numcodecs.Blosc("lz4", spec.level, numcodecs.Blosc.NOSHUFFLE).encode(np.ascontiguousarray(frame)))
    return frame.nbytes
