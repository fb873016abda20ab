"""H.264 mp4 videos (images and alpha mattes) -> uint8 RGB frames, decoded by the ffmpeg binary of imageio-ffmpeg.

Frames come out exactly as ``ffmpeg -pix_fmt rgb24`` decodes them: on the machines we checked this
is bit-equal to the toolkit's OpenCV ``load_image`` and to PyAV.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from ...errors import SourceError
from ..files import as_path, local_copy


@dataclass(frozen=True)
class VideoInfo:
    """What the mp4 container says about its first video stream.

    ``n_frames`` is the number of video packets (one per frame for H.264 in mp4), counted
    without decoding; ``height`` and ``width`` are in pixels; ``fps`` in frames per second.
    """

    path: Path
    n_frames: int
    height: int
    width: int
    fps: float
    codec: str
    pix_fmt: str


_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\w+)(?:\([^)]*\))*, (\d+)x(\d+)")
_FPS = re.compile(r"([\d.]+) fps")
_FRAME = re.compile(r"frame=\s*(\d+)")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg failed without a message"


def probe(path: str | Path) -> VideoInfo:
    """Read the size, frame rate and frame count of ``path`` without decoding it (stream copy).

    Raises :class:`SourceError` naming the file when it is not a readable video.
    """
    path = as_path(path)
    with local_copy(path) as local:
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(local), "-map", "0:v:0", "-c", "copy", "-f", "null",
               "-"]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise SourceError(f"{path}: not a readable video ({_last_error_line(proc.stderr)}); download it again")
    stream = _STREAM.search(proc.stderr)
    frames = _FRAME.findall(proc.stderr)
    if stream is None or not frames:
        raise SourceError(f"{path}: no video stream found; download it again")
    fps = _FPS.search(proc.stderr[stream.start():])
    return VideoInfo(
        path=path,
        n_frames=int(frames[-1]),
        height=int(stream.group(4)),
        width=int(stream.group(3)),
        fps=float(fps.group(1)) if fps else float("nan"),
        codec=stream.group(1),
        pix_fmt=stream.group(2),
    )


def iter_frames(info: VideoInfo, batch: int = 1, reuse: bool = False) -> Iterator[np.ndarray]:
    """Decode the video of ``info`` and yield consecutive batches of frames.

    Each batch is ``(n, y, x, channel)`` uint8 RGB with ``n <= batch`` (only the last one is
    shorter). Raises :class:`SourceError` when the decoder fails, reports an error (damaged data it
    concealed) or delivers another number of frames than :func:`probe` counted (a truncated or damaged
    file); the error comes once the frames are read, so a writer must not mark them complete before. A remote video is decoded
    from a temporary local copy. With ``reuse`` every batch is written into the same buffer (no page
    faults for fresh memory): each batch is valid only until the next one is requested.
    """
    with local_copy(info.path) as local:
        yield from _iter_frames(info, local, batch, reuse)


def _iter_frames(info: VideoInfo, local: Path, batch: int, reuse: bool) -> Iterator[np.ndarray]:
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(local),
        "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    ]
    errors = tempfile.TemporaryFile()  # not a pipe: a damaged file can print more errors than a pipe holds
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
    frame_bytes = info.height * info.width * 3
    done, buf = 0, None
    try:
        while done < info.n_frames:
            n = min(batch, info.n_frames - done)
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
    if rc != 0 or done != info.n_frames or extra:
        detail = _last_error_line(stderr) if rc != 0 else "frame count differs from the container's index"
        raise SourceError(
            f"{info.path}: decoding stopped after {done} of {info.n_frames} frames ({detail}); "
            "the file is truncated or damaged, download it again"
        )
    if stderr.strip():  # ffmpeg at -v error prints nothing for a sound file
        raise SourceError(f"{info.path}: the decoder reported errors ({_last_error_line(stderr)}); the file is "
                          "damaged, download it again")


def read_frames(info: VideoInfo, indices: list[int]) -> np.ndarray:
    """Only the frames ``indices`` (sorted, distinct) of the video: ``(len(indices), y, x, channel)``
    uint8 RGB, decoded like :func:`iter_frames` (bit-equal) but without piping the other frames out."""
    chosen = "+".join(f"eq(n\\,{i})" for i in indices)
    with local_copy(info.path) as local:
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(local), "-map", "0:v:0",
            "-vf", f"select={chosen}", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ]
        proc = subprocess.run(cmd, capture_output=True)
    want = len(indices) * info.height * info.width * 3
    if proc.returncode != 0 or len(proc.stdout) != want:
        raise SourceError(f"{info.path}: could not decode frames {indices} "
                          f"({_last_error_line(proc.stderr.decode(errors='replace'))}); download it again")
    return np.frombuffer(proc.stdout, np.uint8).reshape(len(indices), info.height, info.width, 3)
