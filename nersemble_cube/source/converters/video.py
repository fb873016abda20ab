"""H.264 mp4 videos (images and alpha mattes) -> uint8 RGB frames, probed with PyAV and decoded by the ffmpeg
binary of imageio-ffmpeg.

Frames come out exactly as ``ffmpeg -pix_fmt rgb24`` decodes them: on the machines we checked this
is bit-equal to the toolkit's OpenCV ``load_image`` and to PyAV.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np

from ...errors import SourceError
from ..files import as_path, local_copy


@dataclass(frozen=True)
class VideoInfo:
    """What the mp4 container says about its first video stream.

    ``n_frames`` is the number of frames a decoder delivers (see :func:`probe`), counted without
    decoding; ``height`` and ``width`` are in pixels; ``fps`` in frames per second.
    """

    path: Path
    n_frames: int
    height: int
    width: int
    fps: float
    codec: str
    pix_fmt: str


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg."""
    return imageio_ffmpeg.get_ffmpeg_exe()


LOG = ["-loglevel", "level+warning"]
"""ffmpeg's log for decoding: warnings and worse, each line tagged with its level (``[warning]``, ``[error]``),
because the decoder reports the damage it concealed (``corrupt decoded frame``) as a warning only."""
_DAMAGE_WARNINGS = ("corrupt decoded frame", "concealing")


def _damage(stderr: str) -> list[str]:
    """The lines of an ffmpeg log (:data:`LOG`) that report damage: every error, and the decoder's warnings
    about frames it concealed; other warnings (colour-conversion notes and the like) are not damage."""
    return [ln.strip() for ln in stderr.splitlines()
            if any(tag in ln for tag in ("[error]", "[fatal]", "[panic]")) or any(w in ln for w in _DAMAGE_WARNINGS)]


def _last_error_line(stderr: str) -> str:
    lines = _damage(stderr) or [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg failed without a message"


_OPEN_OPTIONS = {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}
"""Tags that are not UTF-8 must not stop a probe: PyAV before 19 raises on them unless told to ignore them;
PyAV 19 (the release for Python >= 3.12) dropped the option."""


def probe(path: str | Path) -> VideoInfo:
    """Read the size, frame rate and frame count of ``path`` from its container with PyAV, without decoding.

    ``n_frames`` counts the packets a decoder shows, as the toolkit's readers (OpenCV, imageio's pyav
    plugin) see them: packets an edit list discards (the lead-in of a stream-copied cut) are not
    frames. Raises :class:`SourceError` naming the file when it is not a readable video.
    """
    path = as_path(path)
    with local_copy(path) as local:
        try:
            with av.open(str(local), **_OPEN_OPTIONS) as container:
                if not container.streams.video:
                    raise SourceError(f"{path}: no video stream found; download it again")
                if len(container.streams.video) > 1:  # ffmpeg would pick the "best", the probe the first: refused
                    raise SourceError(f"{path}: {len(container.streams.video)} video streams, where a NeRSemble "
                                      "video has one; download it again")
                stream = container.streams.video[0]
                ctx = stream.codec_context
                n_frames = sum(1 for packet in container.demux(stream) if packet.size and not packet.is_discard)
                rate = stream.average_rate or stream.guessed_rate
                return VideoInfo(path=path, n_frames=n_frames, height=ctx.height, width=ctx.width,
                                 fps=float(rate) if rate else float("nan"), codec=ctx.name,
                                 pix_fmt=ctx.pix_fmt or "unknown")
        except av.error.FFmpegError as e:
            raise SourceError(f"{path}: not a readable video ({e.strerror or e}); download it again") from None


@dataclass(frozen=True)
class Packets:
    """A video's compressed stream cut at its keyframes, as the ``copy`` preset stores it: for FFmpeg's decoder
    ``decoder`` with the stream's ``extradata`` (the mp4's avcC / hvcC), pictures of ``width`` x ``height``;
    ``gops`` holds each group of pictures' packets in decoding order (each starts with a keyframe), ``shown``
    the frame each packet shows (its presentation index within its group), ``frames`` the number of frames each
    group shows. Only when :func:`read_packets` found every group closed."""

    decoder: str
    width: int
    height: int
    extradata: bytes
    gops: list[list[bytes]]
    shown: list[list[int]]
    frames: list[int]


def read_packets(info: VideoInfo, with_data: bool = True) -> Packets:
    """The packets of ``info``'s video grouped at its keyframes, without decoding (``with_data=False``: the
    structure only, no bytes kept). Raises :class:`SourceError` when a group is not closed (a frame it shows
    comes before its keyframe or after the next: open GOPs decode only with their neighbours) or when the
    container drops frames (an edit list: the decoder would show more frames than the video has)."""
    with local_copy(info.path) as local:
        try:
            with av.open(str(local), **_OPEN_OPTIONS) as container:
                stream = container.streams.video[0]
                ctx = stream.codec_context
                gops: list[list[bytes]] = []
                shown: list[list[int]] = []
                for packet in container.demux(stream):
                    if not packet.size:
                        continue
                    if packet.is_discard:
                        raise SourceError(f"{info.path}: its container drops frames (an edit list), so its packets "
                                          "show more frames than the video; use --codec h264")
                    if packet.is_keyframe or not gops:
                        gops.append([])
                        shown.append([])
                    gops[-1].append(bytes(packet) if with_data else b"")
                    shown[-1].append(packet.pts if packet.pts is not None else packet.dts)
                extradata = bytes(ctx.extradata or b"")
                decoder, width, height = ctx.name, ctx.width, ctx.height
        except av.error.FFmpegError as e:
            raise SourceError(f"{info.path}: not a readable video ({e.strerror or e}); download it again") from None
    order = {pts: i for i, pts in enumerate(sorted(p for group in shown for p in group))}
    start, within = 0, []
    for k, group in enumerate(shown):
        frames = [order[p] for p in group]
        if sorted(frames) != list(range(start, start + len(group))):
            raise SourceError(f"{info.path}: group of pictures {k} (from frame {start}) is open: its frames need "
                              "the groups beside it, so it cannot be a chunk of its own; use --codec h264")
        within.append([f - start for f in frames])
        start += len(group)
    return Packets(decoder, width, height, extradata, gops, within, [len(g) for g in shown])


def gop_length(info: VideoInfo) -> int:
    """The frames between the keyframes of ``info``'s video when they fall at a fixed interval (the last group
    may be shorter): the chunk length of the ``copy`` preset. Raises :class:`SourceError` naming the groups
    otherwise."""
    frames = read_packets(info, with_data=False).frames
    if len(frames) > 1 and (len(set(frames[:-1])) > 1 or frames[-1] > frames[0]):
        shown = ", ".join(map(str, frames[:8])) + (", ..." if len(frames) > 8 else "")
        raise SourceError(f"{info.path}: keyframes at irregular intervals (groups of {shown} frames), so its "
                          "packets do not fit chunks of one length; use --codec h264 (re-encoded, lossy) or zstd")
    return frames[0]


def iter_frames(info: VideoInfo, batch: int = 1, reuse: bool = False, threads: int | None = None,
                frames: Sequence[int] | None = None) -> Iterator[np.ndarray]:
    """Decode the video of ``info`` and yield consecutive batches of frames.

    Each batch is ``(n, y, x, channel)`` uint8 RGB with ``n <= batch`` (only the last one is
    shorter). Raises :class:`SourceError` when the decoder fails, reports an error (damaged data it
    concealed) or delivers another number of frames than :func:`probe` counted (a truncated or damaged
    file); the error comes once the frames are read, so a writer must not mark them complete before. A remote video is decoded
    from a temporary local copy. With ``reuse`` every batch is written into the same buffer (no page
    faults for fresh memory): each batch is valid only until the next one is requested. ``threads``: the
    decoder's threads (None: ffmpeg's default, one per core, which oversubscribes the machine when many
    videos decode at once). ``frames``: only these source frames (sorted; ffmpeg's select filter: the others
    are decoded but never converted to RGB nor piped), bit-equal to the same frames of a full decode; a
    ``range(0, stop, step)`` selects every step-th frame to the end of the video, past ``stop`` too.
    """
    with local_copy(info.path) as local:
        yield from _iter_frames(info, local, batch, reuse, threads, frames)


def _selection(frames: Sequence[int] | None, n_frames: int) -> tuple[list[str], int]:
    """ffmpeg's arguments selecting ``frames`` (see :func:`iter_frames`) and how many frames they yield."""
    if frames is None or (isinstance(frames, range) and frames.start == 0 and frames.step == 1):
        return [], n_frames
    if isinstance(frames, range) and frames.start == 0:
        return ["-vf", f"select=not(mod(n\\,{frames.step}))"], -(-n_frames // frames.step)
    chosen = [int(i) for i in frames if i < n_frames]
    return ["-vf", "select=" + "+".join(f"eq(n\\,{i})" for i in chosen)], len(chosen)


def fps_filter_frames(n_frames: int, fps: float, target_fps: float) -> np.ndarray:
    """The source frames ffmpeg's ``fps`` filter outputs (as VHAP extracts frames) when it resamples a video of
    ``n_frames`` frames at ``fps``, timestamps ``i / fps`` from 0, to ``target_fps`` with its default rounding
    (``near``): output ``k`` is the last frame whose timestamp rounds to at most ``k`` on the output's
    ``1 / target_fps`` grid, ``ceil((k + 1/2) * fps / target_fps) - 1``, for ``round(n_frames * target_fps /
    fps)`` outputs (a frame repeats when ``target_fps`` exceeds ``fps``). Exact rational arithmetic; checked
    against ffmpeg in the tests."""
    src = Fraction(fps).limit_denominator(10_000)
    dst = Fraction(target_fps).limit_denominator(10_000)
    total = (2 * n_frames * dst + src) // (2 * src)  # round half up of n * dst / src
    k = np.arange(int(total), dtype=np.int64)
    num, den = (2 * k + 1) * src.numerator * dst.denominator, 2 * src.denominator * dst.numerator
    return np.minimum(-(-num // den) - 1, n_frames - 1)


def _iter_frames(info: VideoInfo, local: Path, batch: int, reuse: bool, threads: int | None,
                 frames: Sequence[int] | None) -> Iterator[np.ndarray]:
    select, expected = _selection(frames, info.n_frames)
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", *LOG, *(["-threads", str(threads)] if threads else []),
        "-i", str(local),
        "-map", "0:v:0", *select, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    ]  # passthrough: every decoded frame once, none duplicated to fill timestamp gaps (as the toolkit reads)
    errors = tempfile.TemporaryFile()  # not a pipe: a damaged file can print more errors than a pipe holds
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
    frame_bytes = info.height * info.width * 3
    done, buf = 0, None
    try:
        while done < expected:
            n = min(batch, expected - done)
            if not reuse or buf is None or len(buf) != n:
                buf = np.empty((n, info.height, info.width, 3), dtype=np.uint8)
            got = proc.stdout.readinto(memoryview(buf).cast("B"))
            if got != n * frame_bytes:
                break
            done += n
            yield buf
        extra = proc.stdout.read(1)
    finally:
        proc.stdout.close()
        rc = proc.wait()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
        errors.close()
    if rc != 0 or done != expected or extra:
        detail = _last_error_line(stderr) if rc != 0 else "frame count differs from the container's index"
        raise SourceError(
            f"{info.path}: decoding stopped after {done} of {expected} frames ({detail}); "
            "the file is truncated or damaged, download it again"
        )
    damage = _damage(stderr)
    if damage:  # a sound file makes ffmpeg report neither errors nor concealed frames
        raise SourceError(f"{info.path}: the decoder reported damage in {len(damage)} places ({damage[-1]}) "
                          f"while decoding its {done} frames; the file is damaged, download it again")


def read_frames(info: VideoInfo, indices: list[int]) -> np.ndarray:
    """Only the frames ``indices`` (sorted, distinct) of the video: ``(len(indices), y, x, channel)``
    uint8 RGB, decoded like :func:`iter_frames` (bit-equal) but without piping the other frames out."""
    chosen = "+".join(f"eq(n\\,{i})" for i in indices)
    with local_copy(info.path) as local:
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", *LOG, "-i", str(local), "-map", "0:v:0",
            "-vf", f"select={chosen}", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ]
        proc = subprocess.run(cmd, capture_output=True)
    want = len(indices) * info.height * info.width * 3
    if proc.returncode != 0 or len(proc.stdout) != want or _damage(proc.stderr.decode(errors="replace")):
        raise SourceError(f"{info.path}: could not decode frames {indices} "
                          f"({_last_error_line(proc.stderr.decode(errors='replace'))}); download it again")
    return np.frombuffer(proc.stdout, np.uint8).reshape(len(indices), info.height, info.width, 3)
