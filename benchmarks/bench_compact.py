"""Lossy candidates for a compact frame store on camera-like frames (issue 16, item 2), side by side.

    python benchmarks/bench_compact.py [--frames 24] [--threads 1,2] [--workdir DIR]

Reference: the frames of one realistic camera (benchmarks/realistic.py) as every reader decodes the mp4.
Per candidate, on those frames: bytes per frame and against the mp4's bytes per frame, PSNR against the
decoded mp4 (mean and worst frame), the median time to decode one random frame with each thread count of
``--threads`` (libjxl, libavif/dav1d and libavcodec decode with threads; JPEG has none), and the encode
time per frame. All-intra codecs store a frame per chunk; the H.264/HEVC "GOP g" rows store g frames
per chunk (one keyframe, then P-frames), so a random frame decodes the chunk up to it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import imagecodecs
import numpy as np

from common import nvs_sample, workdir

SEQ = "nvs/388/sequences/GLASSES"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


def h26x_encode(frames: np.ndarray, encoder: str, crf: int, pix_fmt: str) -> bytes:
    """``frames`` as one Annex-B stream: a keyframe, then P-frames (no B-frames), single-threaded."""
    cc = av.CodecContext.create(encoder, "w")
    cc.width, cc.height, cc.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
    cc.time_base, cc.framerate = Fraction(1, 25), 25
    gop = str(len(frames))
    cc.options = {"crf": str(crf), "preset": "medium", **(
        {"keyint": gop, "bframes": "0", "threads": "1"} if encoder == "libx264" else
        {"x265-params": f"keyint={gop}:bframes=0:log-level=none:pools=1:frame-threads=1"})}
    out = bytearray()
    for i, frame in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=pix_fmt)
        vf.pts = i
        out += b"".join(bytes(p) for p in cc.encode(vf))
    out += b"".join(bytes(p) for p in cc.encode(None))
    return bytes(out)


def h26x_decode(data: bytes, encoder: str, index: int, threads: int) -> np.ndarray:
    """Frame ``index`` of a stream from :func:`h26x_encode`, decoding from its keyframe."""
    cc = av.CodecContext.create({"libx264": "h264", "libx265": "hevc"}[encoder], "r")
    cc.thread_count, cc.thread_type = threads, ("SLICE" if threads > 1 else "NONE")
    seen = 0
    for packet in cc.parse(data) + cc.parse(None) + [None]:
        for frame in cc.decode(packet):
            if seen == index:
                return frame.to_ndarray(format="rgb24")
            seen += 1
    raise IndexError(index)


def intra(encode: Callable[[np.ndarray], bytes], decode: Callable[[bytes, int], np.ndarray]):
    def run(ref: np.ndarray, threads: list[int]) -> tuple[list[int], list[float], dict[int, float], float]:
        t0 = time.perf_counter()
        blobs = [encode(f) for f in ref]
        enc = (time.perf_counter() - t0) / len(ref)
        quality = [psnr(decode(b, 1), f) for b, f in zip(blobs, ref)]
        dec = {n: statistics.median(_timed(lambda b=b: decode(b, n)) for b in blobs) for n in threads}
        return [len(b) for b in blobs], quality, dec, enc
    return run


def grouped(encoder: str, crf: int, pix_fmt: str, gop: int):
    def run(ref: np.ndarray, threads: list[int]) -> tuple[list[int], list[float], dict[int, float], float]:
        t0 = time.perf_counter()
        chunks = [h26x_encode(ref[i:i + gop], encoder, crf, pix_fmt) for i in range(0, len(ref), gop)]
        enc = (time.perf_counter() - t0) / len(ref)
        quality = [psnr(h26x_decode(chunks[i // gop], encoder, i % gop, 1), f) for i, f in enumerate(ref)]
        dec = {n: statistics.median(_timed(lambda i=i: h26x_decode(chunks[i // gop], encoder, i % gop, n))
                                    for i in range(len(ref))) for n in threads}
        return [len(c) / gop for c in chunks], quality, dec, enc
    return run


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


CANDIDATES = {
    **{f"JPEG-XL d{d} e{e}": intra(lambda f, d=d, e=e: imagecodecs.jpegxl_encode(f, distance=d, effort=e),
                                   lambda b, n: imagecodecs.jpegxl_decode(b, numthreads=n))
       for d, e in ((0.3, 3), (0.45, 3), (0.5, 3), (0.55, 3), (0.55, 5), (0.6, 5), (0.7, 5), (1.0, 3))},
    **{f"JPEG 4:4:4 q{q}": intra(lambda f, q=q: imagecodecs.jpeg8_encode(f, level=q, subsampling=(1, 1)),
                                 lambda b, n: imagecodecs.jpeg8_decode(b)) for q in (95, 98)},
    **{f"AVIF q{q} 4:4:4": intra(lambda f, q=q: imagecodecs.avif_encode(f, level=q, speed=8, pixelformat="yuv444"),
                                 lambda b, n: imagecodecs.avif_decode(b, numthreads=n)) for q in (90, 95)},
    **{f"H.264 4:4:4 crf {c} all-intra": grouped("libx264", c, "yuv444p", 1) for c in (8,)},
    **{f"H.264 4:4:4 crf {c} GOP {g}": grouped("libx264", c, "yuv444p", g) for c, g in ((8, 4), (8, 8), (9, 8))},
    **{f"HEVC 4:4:4 crf {c} GOP {g}": grouped("libx265", c, "yuv444p", g) for c, g in ((8, 1), (8, 8))},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--threads", default="1,2", help="decode thread counts, comma-separated")
    ap.add_argument("--only", default="", help="run the candidates whose name contains this")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    threads = [int(n) for n in args.threads.split(",")]
    src = nvs_sample(workdir(args, "compact") / f"sample-realistic-1x{args.frames}", args.frames, 1, content="realistic")
    mp4 = next((src / SEQ / "images").glob("*.mp4"))
    with av.open(str(mp4)) as c:
        ref = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(mp4)) as c:
        mp4_frame = sum(p.size for p in c.demux(video=0)) / len(ref)
    print(f"\nworkload: one realistic camera, {len(ref)} frames of 1100x1604, mp4 {mp4_frame / 1e3:.1f} KB per frame\n")
    print("| candidate | bytes/frame | x mp4 | PSNR mean / worst | decode ms (" + " / ".join(f"{n} thr" for n in threads)
          + ") | encode ms |\n|---|---|---|---|---|---|")
    for name, run in CANDIDATES.items():
        if args.only not in name:
            continue
        sizes, quality, dec, enc = run(ref, threads)
        per = float(np.mean(sizes))
        print(f"| {name} | {per / 1e3:.0f} KB | {per / mp4_frame:.2f}x | {np.mean(quality):.1f} / {min(quality):.1f} dB | "
              + " / ".join(f"{dec[n] * 1e3:.1f}" for n in threads) + f" | {enc * 1e3:.0f} |", flush=True)


if __name__ == "__main__":
    main()
