"""Reads of video cubes already written (issue 28), for machines that hold no source folder: a random frame at
several decoder thread counts, frames per second in order, and NVDEC (PyAV's ``h264_cuvid``) where a GPU is.

    python benchmarks/bench_video_reads.py CUBE SEQUENCE MP4 [CUBE SEQUENCE MP4 ...] [--threads 1,4,16] [--thread-types library,AUTO,SLICE] [--nvdec]

Per cube: the median of 31 random frames (random camera and time, no decoder left where the last read stopped)
through :class:`~nersemble_cube.FrameReader` with ``video.DECODE_THREADS`` at each count and
``video.DECODE_THREAD_TYPE`` of each type (FFmpeg's frame and slice threads, or slice threads alone); one camera read in order
by FrameReader and by xarray/dask (``ds.images.sel(camera=c).values``), against the toolkit's ``load_all_images``
decoding ``MP4`` (that camera's source video; imageio's pyav plugin, verbatim in common.py). ``--nvdec``: one persistent
``h264_cuvid`` decoder fed chunk after chunk (flushed between chunks), the same random frames and one camera in
order; its luma and chroma planes compared with the CPU decoder's (H.264 decoding is exact, so they must be
equal) and its RGB through the same FFmpeg conversion as the CPU path.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import av
import numpy as np

import nersemble_cube
from nersemble_cube.cube.codecs import jpegxl, video
from nersemble_cube.cube.shards import _checked

from common import toolkit_load_all_images


def random_reads(cube: Path, seq: str, threads: int, thread_type: str | None = None, n: int = 31) -> float:
    """Median ms of ``n`` random frames through one FrameReader decoding with ``threads`` threads (video and JPEG-XL
    chunks) of FFmpeg's ``thread_type`` (None: the library's choice)."""
    video.DECODE_THREADS = jpegxl.DECODE_THREADS = threads
    video.DECODE_THREAD_TYPE = thread_type
    reader = nersemble_cube.FrameReader(cube, seq)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(n):
        serial, t = reader.cameras[rng.integers(len(reader.cameras))], int(rng.integers(reader.n_frames))
        reader._chunks._decoding = None  # a random read: no decoder left where the last one stopped
        t0 = time.perf_counter()
        reader.read(serial, t)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def in_order(cube: Path, seq: str) -> tuple[float, float]:
    """Frames per second reading the first camera in order: FrameReader, then xarray/dask."""
    reader = nersemble_cube.FrameReader(cube, seq)
    serial = reader.cameras[0]
    t0 = time.perf_counter()
    for t in range(reader.n_frames):
        reader.read(serial, t)
    ours = reader.n_frames / (time.perf_counter() - t0)
    ds = nersemble_cube.open(cube)[seq].to_dataset()
    t0 = time.perf_counter()
    ds.images.sel(camera=serial).values
    return ours, reader.n_frames / (time.perf_counter() - t0)


class Nvdec:
    """One ``h264_cuvid`` decoder session, fed the chunks of one cube's images."""

    def __init__(self, cube: Path, seq: str):
        self.reader = nersemble_cube.FrameReader(cube, seq)
        self.chunks = self.reader._chunks
        self.decoder: av.CodecContext | None = None

    def chunk(self, serial: str, t: int) -> tuple[video.VideoChunk, int]:
        n = self.chunks.chunk_shape[1]
        coords = (self.reader.cameras.index(serial), t // n, 0, 0, 0)
        return video.unpack(_checked(self.chunks._stored(coords)).tobytes()), t % n

    def frame(self, serial: str, t: int) -> av.VideoFrame:
        """Frame ``t`` of camera ``serial`` (NV12, system memory), decoding its chunk from the keyframe."""
        chunk, k = self.chunk(serial, t)
        if self.decoder is None:
            self.decoder = av.CodecContext.create("h264_cuvid", "r")
            self.decoder.extradata = chunk.extradata
        else:
            self.decoder.flush_buffers()
        out: list[av.VideoFrame] = []
        for data in chunk.packets:
            out += self.decoder.decode(video.packet(data))
            if len(out) > k:
                return out[k]
        out += self.decoder.decode(None)
        self.decoder.flush_buffers()
        return out[k]


def planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Y, U, V) of a yuv420p or nv12 frame, as arrays."""
    h, w = frame.height, frame.width
    if frame.format.name == "nv12":
        a = frame.to_ndarray()  # (h * 3 / 2, w)
        uv = a[h:].reshape(h // 2, w // 2, 2)
        return a[:h], uv[..., 0], uv[..., 1]
    a = frame.to_ndarray()  # yuv420p: (h * 3 / 2, w)
    return a[:h], a[h:h + h // 4].reshape(h // 2, w // 2), a[h + h // 4:].reshape(h // 2, w // 2)


def cpu_frame(chunk: video.VideoChunk, k: int) -> av.VideoFrame:
    return video.Decoding(chunk, (chunk.height, chunk.width), threads=1)._picture(k)


def as_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, like: av.VideoFrame) -> np.ndarray:
    """RGB through the CPU path's FFmpeg conversion, from planes: an nv12 picture re-laid as yuv420p."""
    h, w = y.shape
    frame = av.VideoFrame.from_ndarray(np.concatenate([y, u.reshape(-1, w), v.reshape(-1, w)]), format="yuv420p")
    frame.colorspace, frame.color_range = like.colorspace, like.color_range
    return frame.to_ndarray(format="rgb24")


def nvdec(cube: Path, seq: str, n: int = 15) -> str:
    dec = Nvdec(cube, seq)
    cameras, frames = dec.reader.cameras, dec.reader.n_frames
    dec.frame(cameras[0], 0)  # the session's start, once
    rng = np.random.default_rng(0)
    times, exact, rgb_equal = [], True, True
    for _ in range(n):
        serial, t = cameras[rng.integers(len(cameras))], int(rng.integers(frames))
        t0 = time.perf_counter()
        gpu = dec.frame(serial, t)
        gpu_planes = planes(gpu)
        times.append(time.perf_counter() - t0)
        chunk, k = dec.chunk(serial, t)
        cpu = cpu_frame(chunk, k)
        exact &= all(np.array_equal(a, b) for a, b in zip(gpu_planes, planes(cpu)))
        rgb_equal &= np.array_equal(as_rgb(*gpu_planes, like=cpu), cpu.to_ndarray(format="rgb24"))
    t0 = time.perf_counter()
    for t in range(frames):  # in order: one chunk's frames per session feed
        chunk, k = dec.chunk(cameras[0], t)
        if k == 0:
            dec.decoder.flush_buffers()
            pictures = [f for p in chunk.packets for f in dec.decoder.decode(video.packet(p))] + dec.decoder.decode(None)
            dec.decoder.flush_buffers()
        planes(pictures[k])
    rate = frames / (time.perf_counter() - t0)
    return (f"NVDEC: random frame {1e3 * statistics.median(times):.0f} ms (planes in host memory), in order "
            f"{rate:.0f} frames/s; planes equal to the CPU decoder's: {exact}; RGB through the CPU path's conversion "
            f"equal: {rgb_equal}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cubes", nargs="+", help="CUBE SEQUENCE MP4 triples")
    ap.add_argument("--threads", default="1,4,16")
    ap.add_argument("--thread-types", default="library", help="AUTO, SLICE, FRAME or library (the library's choice)")
    ap.add_argument("--nvdec", action="store_true")
    args = ap.parse_args()
    counts = [int(c) for c in args.threads.split(",")]
    for cube, seq, mp4 in zip(args.cubes[::3], args.cubes[1::3], args.cubes[2::3]):
        reader = nersemble_cube.FrameReader(cube, seq)
        print(f"{cube}: {len(reader.cameras)} cameras x {reader.n_frames} frames, chunks {reader._chunks.chunk_shape}")
        t0 = time.perf_counter()
        toolkit = len(toolkit_load_all_images(mp4)) / (time.perf_counter() - t0)
        print(f"  toolkit load_all_images of its mp4: {toolkit:.0f} frames/s")
        for kind in args.thread_types.split(","):
            thread_type = None if kind == "library" else kind
            print(f"  {kind}: random frame " + ", ".join(
                f"{random_reads(Path(cube), seq, c, thread_type):.0f} ms with {c} threads" for c in counts), flush=True)
            video.DECODE_THREADS = max(counts)
            ours, dask = in_order(Path(cube), seq)
            print(f"  {kind}: in order, {max(counts)} threads: FrameReader {ours:.0f} frames/s, xarray/dask {dask:.0f} "
                  "frames/s", flush=True)
        if args.nvdec:
            try:
                print("  " + nvdec(Path(cube), seq), flush=True)
            except Exception as e:  # noqa: BLE001 - a measurement: report why NVDEC did not run, then go on
                print(f"  NVDEC did not run: {type(e).__name__}: {e}", flush=True)


if __name__ == "__main__":
    main()
