"""A small but faithful sample benchmark folder, written exactly where the official downloader writes.

Same paths (:mod:`.layout`), file formats and codecs (H.264 yuv420p mp4 via libx264, alpha mattes as
grey-in-RGB mp4, ``camera_params.json``, open3d-dialect ``.pcd`` point clouds, FLAME tracking npz
with the toolkit's keys, 512x512 SVFR ``rgb.png``), resolutions, frame rates and camera serials as a
real download, with synthetic content: a textured, shaded sphere "head" on black, moving a little over
time, seen by a 16-camera rig whose calibration matches the pixels (a 3D point on the head projects
with the stored calibration onto the pixel that shows it).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from ..cluster import Progress
from . import layout
from .converters.flame import FlameTracking, write_flame_tracking
from .converters.image import write_png
from .converters.pcd import PointCloud, write_pcd
from .converters.video import ffmpeg_exe

HEAD_RADIUS = 0.11  # metres
CAMERA_DISTANCE = 1.0  # metres from the head centre
_SAMPLE_CRF = "18"


def rig(benchmark: str, participant_id: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Synthetic calibration: serial -> (world_2_cam 4x4, intrinsics 3x3), OpenCV convention, metres/pixels.

    16 cameras on two rows (pitch +-12 degrees) spread over +-70 degrees of yaw around the origin,
    all looking at it, world up = +y. Small per-participant variations keep participants distinct.
    """
    rng = np.random.default_rng(participant_id)
    height, width = layout.FRAME_SIZE[benchmark]
    focal = 3000.0 if benchmark == "nvs" else 1500.0
    out = {}
    for i, serial in enumerate(layout.SERIALS):
        yaw = np.deg2rad(-70 + 140 * (i % 8) / 7 + rng.uniform(-2, 2))
        pitch = np.deg2rad((12 if i < 8 else -12) + rng.uniform(-2, 2))
        centre = CAMERA_DISTANCE * np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        z = -centre / np.linalg.norm(centre)
        x = np.cross(z, [0.0, 1.0, 0.0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        rot = np.stack([x, y, z])
        w2c = np.eye(4)
        w2c[:3, :3] = rot
        w2c[:3, 3] = -rot @ centre
        k = np.array([[focal * rng.uniform(0.98, 1.02), 0.0, width / 2 + rng.uniform(-8, 8)],
                      [0.0, focal * rng.uniform(0.98, 1.02), height / 2 + rng.uniform(-8, 8)],
                      [0.0, 0.0, 1.0]])
        k[1, 1] = k[0, 0]
        out[serial] = (w2c, k)
    return out


def head_centre(t: int, fps: float) -> np.ndarray:
    """World position (metres) of the sphere head at frame ``t``: a slow nod and sway."""
    s = t / fps
    return np.array([0.01 * np.sin(2 * np.pi * 0.7 * s), 0.008 * np.sin(2 * np.pi * 1.1 * s), 0.0])


def _texture(p: np.ndarray, t: float) -> np.ndarray:
    """RGB albedo in [0, 1] at head-local surface points ``p`` (..., 3): skin, stripes, spots, fine grain."""
    base = np.array([0.85, 0.62, 0.5])
    waves = (np.sin(60 * p[..., 0] + 3 * t) * np.sin(45 * p[..., 1]) * 0.5 + 0.5)[..., None]
    grain = (np.sin(900 * p[..., 0] + 1300 * p[..., 1] * p[..., 2] * 40 + 700 * p[..., 2]) * 0.5 + 0.5)[..., None]
    eyes = np.exp(-((np.abs(p[..., 0]) - 0.04) ** 2 + (p[..., 1] - 0.02) ** 2) / 2e-4)[..., None]
    hair = np.clip((p[..., 1] - 0.05) / 0.03, 0, 1)[..., None]
    color = base * (0.75 + 0.25 * waves) * (0.9 + 0.1 * grain)
    color = color * (1 - 0.8 * eyes)
    return color * (1 - hair) + np.array([0.25, 0.16, 0.1]) * (0.6 + 0.4 * grain) * hair


def render(w2c: np.ndarray, k: np.ndarray, height: int, width: int, t: int, fps: float,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ray-trace the head for one camera and frame: ``(rgb (y, x, 3) uint8, alpha (y, x) uint8)``.

    Pixel ``(u, v)`` looks through its centre ``(u + 0.5, v + 0.5)``.
    """
    centre = head_centre(t, fps)
    rot, trans = w2c[:3, :3], w2c[:3, 3]
    cam_pos = -rot.T @ trans
    # ray-trace only the box around the projected sphere (plus a margin); the rest stays black
    c_cam = rot @ centre + trans
    c_px = (k @ c_cam)[:2] / c_cam[2]
    r_px = 1.3 * k[0, 0] * HEAD_RADIUS / np.sqrt(c_cam[2] ** 2 - HEAD_RADIUS ** 2) + 4
    x0, y0 = (max(int(c - r_px), 0) for c in c_px)
    x1, y1 = min(int(c_px[0] + r_px) + 1, width), min(int(c_px[1] + r_px) + 1, height)
    v, u = np.mgrid[y0:y1, x0:x1]
    pix = np.stack([u + 0.5, v + 0.5, np.ones_like(u, dtype=float)], axis=-1)
    dirs = pix @ np.linalg.inv(k).T @ rot  # camera rays in world coordinates (rows: d_world = R^T d_cam)
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    oc = cam_pos - centre
    b = dirs @ oc
    disc = b * b - (oc @ oc - HEAD_RADIUS ** 2)
    depth = -b - np.sqrt(np.maximum(disc, 0))
    p = cam_pos + dirs * depth[..., None] - centre
    normal = p / HEAD_RADIUS
    shade = np.clip(-(normal * dirs).sum(-1), 0, 1)[..., None]
    color = _texture(p, t / fps) * (0.35 + 0.65 * shade)
    # soft 1-2 px edge from the ray's distance to the sphere surface
    dist = np.sqrt(np.maximum(oc @ oc - b * b, 0)) - HEAD_RADIUS
    px_size = np.maximum(depth, CAMERA_DISTANCE * 0.5) / k[0, 0]
    a = np.clip(0.5 - dist / px_size, 0, 1)
    color = color + rng.normal(0, 0.02, color.shape)
    rgb = np.zeros((height, width, 3), np.uint8)
    alpha = np.zeros((height, width), np.uint8)
    rgb[y0:y1, x0:x1] = (np.clip(color * a[..., None], 0, 1) * 255 + 0.5).astype(np.uint8)
    alpha[y0:y1, x0:x1] = (a * 255 + 0.5).astype(np.uint8)
    return rgb, alpha


def pointcloud(t: int, fps: float, n_points: int, seed: int) -> PointCloud:
    """Points on the sphere head at frame ``t``: positions (m, world), outward normals, texture colours."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n_points, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    local = d * HEAD_RADIUS
    colors = (np.clip(_texture(local, t / fps), 0, 1) * 255 + 0.5).astype(np.uint8)
    return PointCloud((local + head_centre(t, fps)).astype(np.float32), d.astype(np.float32), colors)


def _rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """(T, 3) axis-angle vectors -> (T, 3, 3) rotation matrices."""
    theta = np.linalg.norm(axis_angle, axis=-1, keepdims=True)[..., None]
    k = axis_angle / np.maximum(theta[..., 0], 1e-12)
    kx = np.zeros(axis_angle.shape[:-1] + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2], kx[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    kx = kx - np.swapaxes(kx, -1, -2)
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def flame_tracking(n_frames: int, seed: int) -> FlameTracking:
    """Plausible FLAME 2023 tracking with the toolkit's keys, shapes and float32 values; smooth over time."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, n_frames)[:, None]

    def smooth(dim: int, amplitude: float) -> np.ndarray:
        return (amplitude * np.sin(t * rng.uniform(0.5, 2, dim) + rng.uniform(0, 6, dim))).astype(np.float32)

    rotation = smooth(3, 0.15)
    return FlameTracking(
        shape=rng.normal(0, 0.5, (1, 300)).astype(np.float32),
        expression=smooth(100, 0.8),
        rotation=rotation,
        rotation_matrices=_rodrigues(rotation.astype(np.float64)).astype(np.float32),
        translation=(smooth(3, 0.01) + np.array([0, 0.02, 0], np.float32)),
        jaw=np.abs(smooth(3, 0.1)),
        frames=np.arange(n_frames),
        scale=np.ones((1, 1), np.float32),
        neck=smooth(3, 0.05),
        eyes=smooth(6, 0.1),
    )


def encode_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """Write ``frames`` ((y, x, 3) uint8 RGB) as an H.264 yuv420p mp4 at ``fps``, the way the real videos are coded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    # ffmpeg itself, not imageio-ffmpeg's writer: that one starts ffmpeg with a Python preexec_fn, which can hang
    # the forked child of a process with threads (seen with Python 3.13; the sample writes videos from threads)
    cmd = [ffmpeg_exe(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{width}x{height}", "-pix_fmt", "rgb24",
           "-r", f"{fps:.02f}", "-i", "-", "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-v", "warning",
           "-crf", _SAMPLE_CRF, str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    try:
        for frame in frames:
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
    finally:
        proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg could not write {path}")


def _write_camera(folder: Path, benchmark: str, p_id: int, seq: str, serial: str,
                  w2c: np.ndarray, k: np.ndarray, n_frames: int) -> None:
    height, width = layout.FRAME_SIZE[benchmark]
    fps = layout.FPS[benchmark]
    rng = np.random.default_rng([p_id, int(serial), len(seq)])
    rgb, alpha = zip(*(render(w2c, k, height, width, t, fps, rng) for t in range(n_frames)))
    fmt = {"p_id": p_id, "seq_name": seq, "serial": serial}
    encode_video(folder / layout.IMAGES.format(**fmt), list(rgb), fps)
    encode_video(folder / layout.ALPHA_MAPS.format(**fmt), [np.repeat(a[..., None], 3, axis=-1) for a in alpha], fps)


def _write_svfr_image(folder: Path, p_id: int, seq: str, timestep: int, serial: str) -> None:
    w2c, k = rig("mono_flame_avatar", p_id)[serial]
    rgb, _ = render(w2c, k, 512, 512, timestep, layout.MONO_FPS, np.random.default_rng([p_id, timestep]))
    write_png(folder / layout.SVFR_IMAGE.format(p_id=p_id, seq_name=seq, timestep=timestep, serial=serial), rgb)


DEFAULT_PARTICIPANTS = {"nvs": 388, "mono_flame_avatar": 393, "svfr": 17}


def _members() -> dict[str, Iterable[int]]:
    """The participant ids of each benchmark."""
    return {"nvs": dict(layout.NVS_IDS_AND_SEQUENCES), "mono_flame_avatar": layout.MONO_IDS,
            "svfr": layout.SVFR_IMAGE_KEYS}


def participants_by_benchmark(participants: Iterable[int] = ()) -> dict[str, tuple[int, ...]]:
    """:func:`write_sample`'s ``{nvs,mono,svfr}_participants`` arguments for participant ids of any benchmark:
    each benchmark gets the given ids it has, or its default participant (:data:`DEFAULT_PARTICIPANTS`).
    Raises ``ValueError`` for an id that is in no benchmark."""
    chosen = list(participants)
    members = _members()
    unknown = sorted({p for p in chosen if not any(p in ids for ids in members.values())})
    if unknown:
        raise ValueError(f"not benchmark participants: {unknown}")
    picked = {b: tuple(p for p in chosen if p in ids) or (DEFAULT_PARTICIPANTS[b],) for b, ids in members.items()}
    return {"nvs_participants": picked["nvs"], "mono_participants": picked["mono_flame_avatar"],
            "svfr_participants": picked["svfr"]}


def benchmarks_of(participants: Iterable[int]) -> tuple[str, ...]:
    """The benchmarks that hold any of ``participants`` (all benchmarks when none are given)."""
    chosen = set(participants)
    if not chosen:
        return layout.BENCHMARKS
    return tuple(b for b, ids in _members().items() if chosen & set(ids))


def write_sample(
    folder: str | Path,
    benchmarks: tuple[str, ...] = layout.BENCHMARKS,
    nvs_participants: tuple[int, ...] = (388,),
    mono_participants: tuple[int, ...] = (393,),
    mono_sequences: tuple[str, ...] = ("EXP-1-head", "EXP-2-eyes"),
    svfr_participants: tuple[int, ...] = (17,),
    n_frames: int = 8,
    n_cameras: int | None = None,
    pointcloud_frames: tuple[int, ...] = (0,),
    pointcloud_points: int = 20_000,
    tracking_v1: bool = False,
    svfr_images: int = 3,
    workers: int = 2,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Path:
    """Write a sample benchmark folder into ``folder`` and return it.

    nvs: each participant's benchmark sequence, seen by the 13 train cameras (or the first
    ``n_cameras`` of them), 1100x1604 at 73 fps, and the point clouds of ``pointcloud_frames``
    (``pointcloud_points`` points each; the downloader's default is frame 0 only).
    mono_flame_avatar: ``mono_sequences`` of each participant from camera 222200037, 512x512 at
    24.3 fps, each with ``flame2023_tracking_v2.npz`` (and the outdated v1 if ``tracking_v1``), plus
    the 4 hold-out sequences with tracking only (``n_frames + 3`` frames, no video).
    svfr: the first ``svfr_images`` image keys of each of ``svfr_participants``.
    Every video participant gets ``calibration/camera_params.json`` for all 16 serials.
    ``n_frames`` frames per video. Deterministic: the same arguments write the same bytes.
    ``on_start`` gets the number of files to encode (videos and SVFR images), ``progress`` is called
    as each is written.
    """
    folder = Path(folder).expanduser()
    unknown = [b for b in benchmarks if b not in layout.BENCHMARKS]
    if unknown:
        raise ValueError(f"the sample covers {layout.BENCHMARKS}, not {unknown}")
    nvs_sequences = dict(layout.NVS_IDS_AND_SEQUENCES)
    bad = [p for p in nvs_participants if p not in nvs_sequences] + \
          [p for p in mono_participants if p not in layout.MONO_IDS] + \
          [p for p in svfr_participants if p not in layout.SVFR_IMAGE_KEYS]
    if bad:
        raise ValueError(f"not benchmark participants: {bad} (nvs: {list(nvs_sequences)}, "
                         f"mono: {list(layout.MONO_IDS)}, svfr: {list(layout.SVFR_IMAGE_KEYS)})")
    jobs = []
    for benchmark in (b for b in benchmarks if b in layout.VIDEO_BENCHMARKS):
        bdir = folder / benchmark
        if benchmark == "nvs":
            people = [(p, [nvs_sequences[p]], list(layout.NVS_TRAIN_SERIALS[:n_cameras])) for p in nvs_participants]
        else:
            people = [(p, list(mono_sequences), [layout.MONO_TRAIN_SERIAL]) for p in mono_participants]
        for p_id, seqs, serials in people:
            cams = rig(benchmark, p_id)
            calib = bdir / layout.CALIBRATION.format(p_id=p_id)
            calib.parent.mkdir(parents=True, exist_ok=True)
            calib.write_text(json.dumps({
                "world_2_cam": {s: cams[s][0].tolist() for s in layout.SERIALS},
                "intrinsics": {s: cams[s][1].tolist() for s in layout.SERIALS},
            }))
            jobs += [(_write_camera, bdir, benchmark, p_id, seq, s, *cams[s], n_frames) for seq in seqs for s in serials]
            for seq in seqs:
                if benchmark == "nvs":
                    for t in pointcloud_frames:
                        path = bdir / layout.POINTCLOUDS.format(p_id=p_id, seq_name=seq, timestep=t)
                        write_pcd(path, pointcloud(t, layout.NVS_FPS, pointcloud_points, seed=p_id * 100_000 + t))
                else:
                    _write_tracking(bdir, p_id, seq, n_frames, tracking_v1)
            if benchmark == "mono_flame_avatar":
                for seq in layout.MONO_SEQUENCES_TEST:
                    _write_tracking(bdir, p_id, seq, n_frames + 3, False)
    if "svfr" in benchmarks:
        for p_id in svfr_participants:
            jobs += [(_write_svfr_image, folder / "svfr", p_id, *key) for key in layout.SVFR_IMAGE_KEYS[p_id][:svfr_images]]
    run_jobs(jobs, workers, progress, on_start)
    return folder


def run_jobs(jobs: list[tuple], workers: int, progress: Progress | None, on_start: Callable[[int], None] | None) -> None:
    """Run ``(function, *args)`` jobs in ``workers`` threads: ``on_start`` gets their number, ``progress`` is
    called as each finishes; the first error raises."""
    if on_start:
        on_start(len(jobs))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for f in as_completed([pool.submit(*job) for job in jobs]):
            f.result()
            if progress:
                progress(1)


def _write_tracking(bdir: Path, p_id: int, seq: str, n_frames: int, with_v1: bool) -> None:
    seed = p_id * 1000 + sum(map(ord, seq))
    for version in (2, 1) if with_v1 else (2,):
        path = bdir / layout.FLAME_TRACKING[version].format(p_id=p_id, seq_name=seq)
        write_flame_tracking(path, flame_tracking(n_frames, seed + version))
