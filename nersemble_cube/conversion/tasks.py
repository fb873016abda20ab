"""The units of work of a conversion: each fills its own shard-aligned region of one node's arrays and
then sets its own completion flags. Module-level functions with picklable arguments, so a
:class:`~nersemble_cube.cluster.Task` built from them runs in a thread or on any dask worker that
reaches the source and the store."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from ..cluster import Progress
from ..cube import schema, store
from ..cube.location import Location
from ..cube.shards import ShardWriter
from ..errors import SourceError
from ..source import layout
from ..source.converters.image import read_jpeg, read_png
from ..source.converters.pcd import PcdInfo, read_pcd
from ..source.converters.video import Packets, VideoInfo, iter_frames, read_packets

CLOUD_BATCH_POINTS = 4 * schema.POINT_CHUNK
"""Points of consecutive clouds read by one task; each batch starts on a chunk boundary."""


def fill_video(target: Location, group: str, variable: str, camera: int, info: VideoInfo,
               frames_per_write: int, decoder_threads: int | None, keep: Sequence[int] | None,
               progress: Progress) -> None:
    """Decode one video into ``variable`` (``images``, or ``alpha``: the matte's first channel) of camera
    index ``camera``, a whole shard at a time (the decoder runs ahead in its own process; this thread
    encodes and writes the shard: :class:`~nersemble_cube.cube.shards.ShardWriter`), then flag the
    camera complete. ``decoder_threads``: ffmpeg's threads for this video (None: its default). ``keep``:
    the source frames to write, sorted (None: all); the frames after them are still decoded, so a damaged end
    of the file is found."""
    writer = ShardWriter(store.open_for_writing(target, f"{group}/{variable}"))
    n_keep = len(keep) if keep is not None else info.n_frames
    t = 0
    for batch in iter_frames(info, batch=frames_per_write, reuse=True, threads=decoder_threads, frames=keep):
        if t < n_keep:
            block = batch[None, :n_keep - t, ..., 0] if variable == "alpha" else batch[None, :n_keep - t]
            writer.write((camera, t) + (0,) * (block.ndim - 2), block)
            progress(block.shape[1])
        t += len(batch)
    store.set_flags(target, group, variable, camera)


def gop_chunks(packets: Packets) -> list[bytes]:
    """The stored bytes (before the checksum) of one chunk per group of pictures of ``packets``."""
    from ..cube.codecs.video import VideoChunk, pack

    return [pack(VideoChunk(packets.decoder, packets.width, packets.height, n, packets.extradata, gop, tuple(shown)))
            for gop, shown, n in zip(packets.gops, packets.shown, packets.frames)]


def copy_video(target: Location, group: str, camera: int, info: VideoInfo, progress: Progress) -> None:
    """Store the packets of one image video as chunks of its groups of pictures (the ``copy`` preset: nothing
    decoded or encoded), then flag the camera complete."""
    packets = read_packets(info)
    chunks = gop_chunks(packets)
    writer = ShardWriter(store.open_for_writing(target, f"{group}/images"))
    if sum(packets.frames) != info.n_frames or packets.frames[0] != writer.chunk_shape[1]:
        raise SourceError(f"{info.path}: groups of {packets.frames[:4]} frames changed since the conversion was "
                          f"planned (chunks of {writer.chunk_shape[1]}); download it again")
    per_write = writer.outer[1] // writer.chunk_shape[1]
    for i in range(0, len(chunks), per_write):
        writer.write_encoded((camera, i * writer.chunk_shape[1], 0, 0, 0), chunks[i:i + per_write])
        progress(sum(packets.frames[i:i + per_write]))
    store.set_flags(target, group, "images", camera)


def fill_background(target: Location, group: str, paths: list, size: tuple[int, int], progress: Progress) -> None:
    """Decode the background stills ``paths`` (one per camera, in the node's camera order) and write them."""
    arr = store.open_for_writing(target, f"{group}/{schema.BACKGROUND}")
    for i, path in enumerate(paths):
        arr[i] = read_jpeg(path, size)
        progress(1)


def fill_clouds(target: Location, group: str, infos: list[PcdInfo], offsets: list[int], first: int,
                progress: Progress) -> None:
    """Read consecutive clouds (timestep indices ``first``...) and write them at point ``offsets``, then flag them."""
    names = ["positions"] + ["normals"] * infos[0].has_normals + ["colors"] * infos[0].has_colors
    arrays = {name: store.open_for_writing(target, f"{group}/{name}") for name in names}
    for info, offset in zip(infos, offsets):
        cloud = read_pcd(info.path)
        if len(cloud) != info.n_points:
            raise SourceError(f"{info.path}: {len(cloud)} points but the header said {info.n_points}")
        values = {"positions": cloud.positions, "normals": cloud.normals, "colors": cloud.colors}
        for name, arr in arrays.items():
            arr[offset:offset + len(cloud)] = values[name]
        progress(1)
    store.set_flags(target, group, "cloud", slice(first, first + len(infos)))


def write_small_node(target: Location, group: str, ds: xr.Dataset, progress: Progress) -> None:
    """Write a small node (a FLAME tracking file) whole and mark it complete."""
    store.write_node(target, group, ds)
    store.mark_complete(target, group)
    progress(1)


def fill_svfr(target: Location, images: list[layout.SvfrImageSource], progress: Progress) -> None:
    """Decode and write the SVFR images, in the order of the node's ``image`` coordinate."""
    arr = store.open_for_writing(target, f"{schema.SVFR}/images")
    for i, image in enumerate(images):
        arr[i] = read_png(image.path, layout.SVFR_SIZE)
        progress(1)


def cloud_layout(counts: list[int], start: int, chunk: int) -> tuple[list[int], list[range]]:
    """Offsets of clouds of ``counts`` points packed from point ``start``, and their batches (index ranges):
    a batch holds about :data:`CLOUD_BATCH_POINTS` points and starts on a multiple of ``chunk``, so no two
    batches (tasks) share a chunk."""
    offsets, batches, pos, begin, filled = [], [], start, 0, 0
    for i, n in enumerate(counts):
        if i > begin and filled >= CLOUD_BATCH_POINTS:
            batches.append(range(begin, i))
            begin, filled, pos = i, 0, -(-pos // chunk) * chunk
        offsets.append(pos)
        pos += n
        filled += n
    if counts:
        batches.append(range(begin, len(counts)))
    return offsets, batches
