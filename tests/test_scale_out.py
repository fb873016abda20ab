"""Scaling out: conversion on a dask.distributed cluster, stores behind HTTP and S3, crash safety,
the writer lock, and a second zarr v3 implementation reading the cube."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import nersemble_cube
from nersemble_cube import convert
from nersemble_cube.errors import StoreError
from nersemble_cube.testing import serve_folder
from nersemble_cube.cube.lock import writer_lock

from conftest import CLI, store_contents

SEQ = "nvs/388/sequences/GLASSES"


def test_distributed_conversion_equals_the_threaded_one(sample_dir, cube, tmp_path, cube_contents):
    import distributed  # noqa: F401 - a runtime dependency
    target = tmp_path / "c.zarr"
    report = convert(sample_dir, target, scheduler="processes", workers=2)
    assert report.written and not report.skipped
    assert store_contents(target) == cube_contents


def test_tasks_on_a_running_cluster_share_their_machines_cores():
    from distributed import LocalCluster

    from nersemble_cube.cluster import runner

    cores = os.cpu_count()
    for workers, threads, share in ((1, 1, cores), (2, 2, max(1, cores // 4))):
        with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=False, dashboard_address=None) as c, \
                runner(c.scheduler_address) as run:
            assert (run.workers, run.threads_per_task) == (workers * threads, share)


def test_a_process_limited_to_one_core_sizes_its_workers_and_decoders_by_it():
    # taskset, SLURM and container cpusets limit a process to some cores; os.cpu_count() still says all of them
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from nersemble_cube.cluster import Runner, runner, usable_cores\n"
            "with runner() as run: print(usable_cores(), run.workers, run.threads_per_task, Runner(1).threads_per_task)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "1", "1", "1"]


def test_dask_work_on_a_cluster_reports_every_task(cluster_address):
    # preprocess and export-nerf run their dask graphs through computing(): the bar counts what the scheduler ran
    import dask
    import dask.array as da

    from nersemble_cube.cluster import computing

    x = da.arange(64, chunks=8) * 2 + 1
    (optimised,) = dask.optimize(dask.delayed(sum)(list(x.to_delayed())))  # a Delayed, as preprocess computes
    writes = [dask.delayed(int, pure=True)(i, dask_key_name=f"write-{i}") for i in range(5)]
    for scheduler in ("threads", cluster_address):
        ticks, files = [], []
        with computing(scheduler, 2, ticks.append) as compute:
            assert int(compute(optimised)[0].sum()) == 64 * 64
        with computing(scheduler, 2, files.append, "write-") as compute:
            assert compute(*writes) == (0, 1, 2, 3, 4)
        assert sum(files) == 5 and sum(ticks) == len(optimised.__dask_graph__()), scheduler  # the bar ends full


# ---- http ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def http_cube(cube):
    """The cube behind a Range-capable static server on loopback (:func:`nersemble_cube.testing.serve_folder`)."""
    with serve_folder(cube.parent) as served:
        yield f"{served.url}/{cube.name}", served


def test_open_over_http_reads_one_frame_with_a_few_requests(cube, http_cube):
    url, served = http_cube
    tree = nersemble_cube.open(url)
    log = [r.path for r in served.gets]
    opened = len(log)
    # the root zarr.json (consolidated metadata: no listing, no per-node metadata) and one request per
    # dimension coordinate (serials, frame indices...) of each node, which xarray loads into indexes
    meta = json.loads((cube / "zarr.json").read_text())["consolidated_metadata"]["metadata"]
    index_coords = [k for k, m in meta.items() if m["node_type"] == "array" and m.get("dimension_names") == [
        k.rsplit("/", 1)[-1]]]
    # (the root zarr.json is read three times: the schema check, a 1-byte Range probe, xarray)
    assert log[:3] == ["/cube.zarr/zarr.json"] * 3 and not any(r.endswith("zarr.json") for r in log[3:])
    assert opened == 3 + len(index_coords), log
    serial = str(tree[SEQ].camera.values[1])
    frame = tree[SEQ].images.sel(camera=serial, time=2).values
    requests = [r.path for r in served.gets][opened:]
    assert len(requests) <= 2, requests  # the shard index and the frame's bytes
    assert all("/images/" in r for r in requests)
    np.testing.assert_array_equal(frame, nersemble_cube.open(cube)[SEQ].images.sel(camera=serial, time=2).values)
    np.testing.assert_array_equal(nersemble_cube.read_frame(url, SEQ, serial, 2), frame)


def test_a_frame_reader_reads_each_shard_index_once(cube, http_cube):
    url, served = http_cube
    before = len(served.gets)
    reader = nersemble_cube.FrameReader(url, SEQ)
    # the node's completion attr, its camera and time coordinates, the frame array's metadata: six small reads
    opened = sorted(r.path.removeprefix(f"/cube.zarr/{SEQ}/") for r in served.gets[before:])
    assert opened == ["camera/c/0", "camera/zarr.json", "images/zarr.json", "time/c/0", "time/zarr.json", "zarr.json"]
    serial = reader.cameras[1]
    before = len(served.gets)
    frames = [reader.read(serial, t) for t in (2, 4, 2)]
    requests = [r.path for r in served.gets][before:]
    # one shard index (the sample's frames are one shard) and then one ranged read per frame
    assert len(requests) == 4 and all(r.endswith("/images/c/1/0/0/0/0") for r in requests), requests
    expected = nersemble_cube.open(cube, dask=False)[SEQ].images
    for t, frame in zip((2, 4, 2), frames):
        np.testing.assert_array_equal(frame, expected.sel(camera=serial, time=t).values)
    assert frames[0].flags.writeable and not np.shares_memory(frames[0], frames[2])  # a new array per read
    # so does a cube opened without dask: its frame arrays keep the shard indexes they read
    images = nersemble_cube.open(url, dask=False)[SEQ].images
    before = len(served.gets)
    again = [images.sel(camera=serial, time=t).values for t in (2, 4, 2)]
    requests = [r.path for r in served.gets][before:]
    assert len(requests) == 4 and all(r.endswith("/images/c/1/0/0/0/0") for r in requests), requests
    for frame, expected_frame in zip(again, frames):
        np.testing.assert_array_equal(frame, expected_frame)
    assert again[0].flags.writeable


def test_http_store_is_read_only(sample_dir, http_cube):
    url, _ = http_cube
    with pytest.raises(StoreError, match="read-only"):
        convert(sample_dir, url + "2")


# ---- s3 -----------------------------------------------------------------------------------------------------------

@pytest.fixture
def s3(monkeypatch):
    import moto.server as moto_server
    import s3fs
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # credentials and endpoint the usual way (environment), never passed to nersemble-cube
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-0123456789")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir("cubes")
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def _counted_requests(monkeypatch) -> collections.Counter:
    """The S3 calls s3fs makes from here on (by operation: ``head_object``, ``list_objects_v2``...)."""
    import s3fs

    calls, call = collections.Counter(), s3fs.S3FileSystem._call_s3

    async def counted(self, method, *args, **kwargs):
        calls[getattr(method, "__name__", method)] += 1
        return await call(self, method, *args, **kwargs)
    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", counted)
    return calls


def test_convert_into_and_read_from_s3(sample_dir, cube, s3, monkeypatch):
    import upath  # noqa: F401 - the test extra
    s3.put(str(sample_dir / "nvs"), "cubes/benchmark/nvs", recursive=True)
    s3.put(str(sample_dir / "mono_flame_avatar/393/calibration"), "cubes/benchmark/mono_flame_avatar/393/calibration",
           recursive=True)
    s3.put(str(sample_dir / "mono_flame_avatar/393/sequences/EXP-1-head"),
           "cubes/benchmark/mono_flame_avatar/393/sequences/EXP-1-head", recursive=True)
    url = "s3://cubes/sample.zarr"
    requests = _counted_requests(monkeypatch)
    report = convert("s3://cubes/benchmark", url)
    assert f"{SEQ}" in report.written
    # zarr asks an object store again and again while it creates a node's arrays: ~16 requests an object written
    # before NodeWriteStore (2,049 for 129), ~7 with it
    assert sum(requests.values()) < 10 * len(s3.find("cubes/sample.zarr")), requests
    tree = nersemble_cube.open(url)
    local = nersemble_cube.open(cube)
    np.testing.assert_array_equal(tree[SEQ].images.isel(camera=2, time=4).values,
                                  local[SEQ].images.isel(camera=2, time=4).values)
    np.testing.assert_array_equal(tree["nvs/388/calibration"].world_2_cam.values,
                                  local["nvs/388/calibration"].world_2_cam.values)
    # a second run skips everything, no lock is left behind
    assert tree["mono_flame_avatar/393/sequences/EXP-1-head/flame2023_tracking_v2"].expression.equals(
        local["mono_flame_avatar/393/sequences/EXP-1-head/flame2023_tracking_v2"].expression)
    again = convert(sample_dir, url, benchmarks=["nvs"], participants=[388], sequences=["GLASSES"])
    assert again.written == [] and SEQ in again.skipped
    assert not s3.exists("cubes/sample.zarr.lock")
    # the writer lock works on the object store too
    with writer_lock(url):
        assert s3.exists("cubes/sample.zarr.lock")
        with pytest.raises(StoreError, match="another nersemble-cube convert"):
            convert(sample_dir, url, benchmarks=["svfr"])
    # no credential in any object of the cube
    for key in s3.find("cubes/sample.zarr"):
        data = s3.cat_file(key)
        assert b"testing-secret" not in data and b"testing-key-id" not in data, key


# ---- crash safety -------------------------------------------------------------------------------------------------

def _convert_cmd(source, target) -> list[str]:
    return [*CLI, "convert", str(source), str(target), "--workers", "2"]


@pytest.mark.parametrize("seed", [1, 2])  # two kill points; the killed --overwrite test adds a third
def test_sigkill_at_a_random_point_then_rerun_equals_an_uninterrupted_conversion(sample_dir, cube, tmp_path, seed, cube_contents):
    target = tmp_path / "c.zarr"
    # kill once a random share of the cube's files exists (progress, not time, so any machine speed works)
    total = sum(1 for p in cube.rglob("*") if p.is_file())
    kill_at = int(np.random.default_rng(seed).integers(1, int(0.9 * total)))
    proc = subprocess.Popen(_convert_cmd(sample_dir, target), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and (not target.exists() or sum(1 for p in target.rglob("*") if p.is_file()) < kill_at):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the conversion finished before it could be killed"
    assert store_contents(target) != cube_contents
    rerun = subprocess.run(_convert_cmd(sample_dir, target), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert store_contents(target) == cube_contents
    assert not list(target.rglob("*.partial"))
    assert not (tmp_path / "c.zarr.lock").exists()


# ---- the writer lock ----------------------------------------------------------------------------------------------

def test_a_second_writer_is_refused(sample_dir, tmp_path):
    target = tmp_path / "c.zarr"
    with writer_lock(target):
        with pytest.raises(StoreError, match="another nersemble-cube convert"):
            convert(sample_dir, target, benchmarks=["svfr"])
        cli = subprocess.run(_convert_cmd(sample_dir, target), capture_output=True, text=True)
        assert cli.returncode == 4 and "another nersemble-cube convert" in cli.stderr
    assert convert(sample_dir, target, benchmarks=["svfr"]).written == ["svfr"]


def test_a_lock_left_by_a_killed_process_is_taken_over(sample_dir, tmp_path):
    target = tmp_path / "c.zarr"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "c.zarr.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout)}))
    assert convert(sample_dir, target, benchmarks=["svfr"]).written == ["svfr"]


# ---- a second zarr v3 implementation ------------------------------------------------------------------------------

def test_tensorstore_reads_a_frame_the_calibration_and_a_string_coordinate(cube):
    import tensorstore as ts
    import numcodecs

    def array(path):
        return ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{cube}/{path}/"}}).result()

    local = nersemble_cube.open(cube)
    images = array(f"{SEQ}/images")
    assert images.domain.labels == ("camera", "time", "y", "x", "channel")
    np.testing.assert_array_equal(images[1, 3].read().result(), local[SEQ].images.isel(camera=1, time=3).values)
    np.testing.assert_array_equal(array("nvs/388/calibration/world_2_cam").read().result(),
                                  local["nvs/388/calibration"].world_2_cam.values)
    # (tensorstore checked the crc32c of every chunk it read: it implements that codec)
    # tensorstore 0.1.x has no "string" data type (zarr-extensions' vlen-utf8); its key-value layer reads the
    # chunk, decoded as the specs say: the crc32c codec's trailing 4 bytes (little-endian checksum of the rest),
    # the zstd codec, then the vlen-utf8 layout (numcodecs implements it)
    import google_crc32c

    meta = json.loads(ts.KvStore.open(f"file://{cube}/nvs/388/calibration/camera/").result().read("zarr.json")
                      .result().value)
    assert meta["data_type"] == "string" and [c["name"] for c in meta["codecs"]] == ["vlen-utf8", "zstd", "crc32c"]
    raw = ts.KvStore.open(f"file://{cube}/nvs/388/calibration/camera/").result().read("c/0").result().value
    assert google_crc32c.value(raw[:-4]) == int.from_bytes(raw[-4:], "little")
    serials = numcodecs.VLenUTF8().decode(numcodecs.Zstd().decode(raw[:-4])).tolist()
    assert serials == local["nvs/388/calibration"].camera.values.tolist()


def test_verify_reports_a_corrupted_frame(sample_dir, cube, tmp_path):
    import zarr

    from nersemble_cube.conversion.verify import verify

    whole = verify(sample_dir, cube)  # every kind of node: videos, mattes, calibrations, clouds, tracking, svfr
    assert whole.ok and whole.checked >= 3 * 2 + 2 * 2 + 2 + 6 * 2 + 2, whole.checked
    target = tmp_path / "c.zarr"
    nvs = ["-b", "nvs", "--verify"]
    ok = subprocess.run(_convert_cmd(sample_dir, target) + nvs, capture_output=True, text=True)
    assert ok.returncode == 0 and "0 mismatches" in ok.stdout, ok.stderr
    checked = int(ok.stdout.split("verified ")[1].split()[0])
    assert checked >= 2 * 3 + 2  # the nvs videos and mattes, the calibration, a point cloud
    images = zarr.open_array(str(target), path=f"{SEQ}/images", mode="r+")
    images[1, :] = 7  # every frame of camera 1, so the random sample cannot miss it
    bad = subprocess.run(_convert_cmd(sample_dir, target) + nvs, capture_output=True, text=True)
    assert bad.returncode == 4
    serial = str(zarr.open_array(str(target), path=f"{SEQ}/camera", mode="r")[1])
    assert f"mismatch: {SEQ}/images camera {serial} frames" in bad.stderr


def test_convert_from_a_source_folder_behind_fsspec(sample_dir, cube, tmp_path, cube_contents):
    import upath  # noqa: F401 - the test extra
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.put(str(sample_dir), "/remote/benchmark", recursive=True)
    try:
        target = tmp_path / "c.zarr"
        convert("memory://remote/benchmark", target)
        assert store_contents(target) == cube_contents
    finally:
        memory.rm("/remote", recursive=True)
