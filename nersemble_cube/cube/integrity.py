"""Checking a cube's chunks without its source: every chunk (or a random sample) is read back through its
crc32c checksum and the strict store, so a flipped byte, a truncated or deleted shard or a damaged shard
index is found and named by node, camera and frames. Damaged units are then marked for re-conversion
(their completion flags cleared, their node incomplete), so ``convert`` run again redoes exactly them.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import zarr

from ..cluster import Progress
from ..errors import StoreError
from . import store
from .location import Location, located, remote_failure
from .shards import is_checksum_mismatch
from .lock import writer_lock
from .schema import FLAG_SUFFIX, POINTCLOUDS, WRITING

UNIT_ARRAYS = ("images", "alpha")
"""Frame arrays whose damage is repaired per camera (their ``{name}_complete`` flags)."""
POINT_ARRAYS = ("positions", "normals", "colors")
REWRITE = "rewrite"
"""Node attr set by :func:`mark_for_repair` when a node must be written afresh by the next conversion."""


@dataclass(frozen=True)
class Damage:
    """One unreadable region of an array: ``array`` path, its ``region`` (a slice per dim), ``where`` in
    words (``camera 222200042 frames 32-63``) and the ``reason`` (checksum mismatch, missing, unreadable)."""

    array: str
    region: tuple[slice, ...]
    where: str
    reason: str

    @property
    def node(self) -> str:
        return self.array.rpartition("/")[0]

    def __str__(self) -> str:
        return f"{self.array}: {self.where}: {self.reason}"


@dataclass(frozen=True)
class MetadataDamage:
    """A metadata document (``zarr.json``) that cannot be trusted: its ``key`` in the store and the ``reason``."""

    key: str
    reason: str

    @property
    def path(self) -> str:
        """The node or array it describes (``""``: the root)."""
        return self.key.removesuffix("zarr.json").rstrip("/")

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


@dataclass
class IntegrityReport:
    """What :func:`check_chunks` read (``chunks``: regions read, ``arrays``) and found (``damage``), and the
    nodes it marked for re-conversion."""

    chunks: int = 0
    arrays: int = 0
    damage: list[Damage] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)
    metadata: list[MetadataDamage] = field(default_factory=list)
    """Damaged metadata documents (:func:`check_metadata`); where there are any, no chunk is read."""

    @property
    def ok(self) -> bool:
        return not self.damage


def _regions(arr: zarr.Array) -> list[tuple[slice, ...]]:
    """The write units of ``arr``: its shards if sharded, else its chunks (clipped to the shape)."""
    block = arr.shards or arr.chunks
    counts = [-(-n // b) if n else 0 for n, b in zip(arr.shape, block)]
    return [tuple(slice(i * b, min((i + 1) * b, n)) for i, b, n in zip(index, block, arr.shape))
            for index in itertools.product(*(range(c) for c in counts))]


def _inner(arr: zarr.Array, region: tuple[slice, ...]) -> Iterator[tuple[slice, ...]]:
    """The chunks of ``arr`` inside the shard ``region``."""
    steps = [range(s.start, s.stop, c) for s, c in zip(region, arr.chunks)]
    for start in itertools.product(*steps):
        yield tuple(slice(a, min(a + c, s.stop)) for a, c, s in zip(start, arr.chunks, region))


DAMAGE_ERRORS = (ValueError, RuntimeError, StoreError)
"""What reading a damaged chunk raises: zarr's crc32c codec and shard index refusing their bytes
(``ValueError``), a decompressor or image decoder refusing its input (imagecodecs, numcodecs:
``RuntimeError``), the strict store's missing or empty chunk or shard (:class:`StoreError`). Anything else (a
permission, the network) is not damage: :func:`_read` makes it the error it is."""


def _reason(error: Exception) -> str:
    if is_checksum_mismatch(error):
        return "checksum mismatch (the chunk's bytes changed)"
    if isinstance(error, StoreError):
        return "missing (a lost or deleted file)"
    return f"unreadable ({type(error).__name__}: {str(error)[:120]})"


def _read(arr: zarr.Array, url: str, region: tuple[slice, ...]) -> Exception | None:
    """Read ``region`` of ``arr`` (at ``url``): None, or the damage error it raised. An
    error that is not damage (permissions, the network) is raised as the one-line StoreError it is, since
    no chunk can be judged while the cube cannot be read."""
    try:
        arr[region]
    except DAMAGE_ERRORS as error:
        return error
    except OSError as error:
        remote = remote_failure(url, error) if "://" in url else None  # credentials, timeouts: their own words
        raise remote or StoreError(
            f"{url}: cannot be read ({error.strerror or type(error).__name__}); not damage: fix access, then "
            "verify again") from error
    return None


def _describe(arr: zarr.Array, region: tuple[slice, ...], cameras: list[str] | None) -> str:
    dims = arr.metadata.dimension_names or ()
    if cameras is not None and dims[:2] == ("camera", "time"):
        serials = ", ".join(cameras[region[0].start:region[0].stop])
        last = region[1].stop - 1
        frames = f"frame {last}" if region[1].start == last else f"frames {region[1].start}-{last}"
        return f"camera {serials} {frames}"
    return "chunk " + " ".join(f"{d or 'dim'} {s.start}:{s.stop}" for d, s in zip(dims or [""] * len(region), region))


def _check_array(arr: zarr.Array, url: str, path: str, regions: list[tuple[slice, ...]], cameras: list[str] | None,
                 report: IntegrityReport, progress: Progress) -> None:
    for region in regions:
        report.chunks += 1
        error = _read(arr, url, region)
        if error is not None:
            chunks = list(_inner(arr, region)) if arr.shards else []
            found = [Damage(path, c, _describe(arr, c, cameras), _reason(inner)) for c in chunks
                     if (inner := _read(arr, url, c)) is not None]
            if not found or len(found) == len(chunks):  # the whole shard (missing, or its index damaged)
                found = [Damage(path, region, _describe(arr, region, cameras), _reason(error))]
            report.damage += found
        progress(1)


def _complete_nodes(group: zarr.Group, path: str = "") -> Iterator[tuple[str, zarr.Group]]:
    if group.attrs.get("complete") is True:
        yield path, group
    for name, member in group.members():
        if isinstance(member, zarr.Group):
            yield from _complete_nodes(member, f"{path}/{name}".lstrip("/"))


def _comparable(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "consolidated_metadata"}


@located
def check_metadata(loc: Location) -> list[MetadataDamage]:
    """Check every metadata document of the cube at ``loc``. Each is stored twice: in its own ``zarr.json`` and,
    for the whole cube, in the root's consolidated metadata, so a document that is not a JSON object zarr can
    read, or (in a cube no conversion is writing) differs from its consolidated copy, is damaged: the node it
    belongs to must be written again. A root document that cannot be read is damage of its own (the first and
    only one returned). Reads every ``zarr.json``; writes nothing."""
    root = store.root_document(loc)
    if root is None:
        return []
    if store.root_damage(root):
        return [MetadataDamage("zarr.json", store.root_damage(root))]
    base = loc.key("").rstrip("/")
    keys = sorted(k for k in loc.fs.find(base) if k.rsplit("/", 1)[-1] == "zarr.json" and k != f"{base}/zarr.json")
    copies = root.get("consolidated_metadata", {}).get("metadata", {}) if WRITING not in root.get("attributes", {}) \
        else None  # while writing, the consolidated copy lags the documents
    found = []
    zarr_store = loc.zarr_store(read_only=True)
    for key, raw in (loc.fs.cat(keys, on_error="return") if keys else {}).items():
        rel = key[len(base) + 1:]
        damage = _document_damage(raw, rel.removesuffix("/zarr.json"), copies, zarr_store)
        if damage:
            found.append(MetadataDamage(rel, damage))
    return found


def _document_damage(raw: bytes | Exception, path: str, copies: dict | None, zarr_store) -> str | None:
    """Why the document ``raw`` of ``path`` is damaged, or None."""
    import json

    if isinstance(raw, Exception):
        return f"unreadable ({type(raw).__name__})"
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "not valid JSON"
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3 or doc.get("node_type") not in ("group", "array"):
        return "not a zarr v3 document"
    if copies is not None and path in copies:  # equal to the copy zarr consolidated from a sound document: sound
        if _comparable(copies[path]) == _comparable(doc):
            return None
        reason = "differs from its copy in the consolidated metadata"
    else:
        reason = None
    if doc["node_type"] == "array":
        try:  # zarr's own reading of the document (its public API: the array opened, nothing read)
            zarr.open_array(zarr_store, path=path, mode="r", zarr_format=3)
        except (ValueError, TypeError, KeyError) as e:  # how zarr refuses a document's keys, types and values
            return f"not valid zarr array metadata ({type(e).__name__})"
    return reason


@located
def check_chunks(loc: Location, *, full: bool = True, sample: int = 2, seed: int = 0,
                 progress: Progress | None = None, on_start: Callable[[int], None] | None = None) -> IntegrityReport:
    """Read the chunks of every complete node of the cube at ``loc`` through their checksums: all of them
    (``full``), or ``sample`` random shards (chunks) per array. ``on_start`` gets the number of reads,
    ``progress`` is called as they are done. Reads only; see :func:`mark_for_repair`. The metadata documents are
    checked first (:func:`check_metadata`): where any is damaged, the report names them and reads no chunk (a
    conversion rebuilds those nodes; verify again afterwards)."""
    store.check_cube(loc)
    metadata = check_metadata(loc)
    if metadata:
        return IntegrityReport(metadata=metadata)
    root = zarr.open_group(loc.zarr_store(read_only=True, strict=True), mode="r", zarr_format=3,
                           use_consolidated=False)
    rng = np.random.default_rng(seed)
    plan = []
    for node_path, node in _complete_nodes(root):
        camera = node["camera"] if "camera" in node else None  # its serials name the damaged frames
        cameras = None if camera is None or _read(camera, f"{loc}/{node_path}/camera", (slice(None),)) else \
            [str(c) for c in camera[:]]  # a damaged camera coordinate is reported as an array below
        for name, arr in node.arrays():
            regions = _regions(arr)
            if not full and len(regions) > sample:
                picks = sorted(rng.choice(len(regions), sample, replace=False).tolist())
                regions = [regions[i] for i in picks]
            plan.append((arr, f"{node_path}/{name}".lstrip("/"), regions, cameras))
    if on_start:
        on_start(sum(len(p[2]) for p in plan))
    report = IntegrityReport(arrays=len(plan))
    for arr, path, regions, cameras in plan:
        _check_array(arr, f"{loc}/{path}", path, regions, cameras, report, progress or (lambda n: None))
    return report


def _clear_clouds(loc: Location, node: zarr.Group, damage: Damage) -> bool:
    """Clear the ``cloud_complete`` flags of the timesteps whose points overlap the damaged chunk, and delete
    that chunk (clouds are written into it piece by piece, which must not start from damaged bytes); False
    if the node's own bookkeeping (offsets, counts, flags) cannot be read, so the whole node must go."""
    try:
        offset, count = node["offset"][:], node["count"][:]
        flags = store.open_for_writing(loc, f"{damage.node}/cloud{FLAG_SUFFIX}")
        points = damage.region[0]
        for i in np.flatnonzero((offset < points.stop) & (offset + count > points.start)):
            flags[int(i)] = False
    except (*DAMAGE_ERRORS, KeyError):  # damaged or missing bookkeeping: rewrite the node
        return False
    chunks = node[damage.array.rpartition("/")[2]].chunks
    index = "/".join(str(s.start // c) for s, c in zip(damage.region, chunks))
    with contextlib.suppress(FileNotFoundError):
        loc.fs.rm(loc.key(f"{damage.array}/c/{index}"))
    return True


@located
def mark_for_repair(loc: Location, damage: list[Damage]) -> list[str]:
    """Mark what ``damage`` hit for the next ``convert``: the cameras of damaged frames (their
    ``images_complete`` / ``alpha_complete`` flags), the timesteps of damaged points (``cloud_complete``),
    and, for any other array, the whole node (attr ``rewrite``). Each node hit is set incomplete; returns
    their paths. Holds the writer's lock while it writes."""
    by_node: dict[str, list[Damage]] = {}
    for d in damage:
        by_node.setdefault(d.node, []).append(d)
    with writer_lock(loc):
        for node_path, hits in by_node.items():
            node = store.open_group(loc, node_path, "r+")
            for d in hits:
                name = d.array.rpartition("/")[2]
                unit_marked = False
                if name in UNIT_ARRAYS and f"{name}{FLAG_SUFFIX}" in node:
                    store.open_for_writing(loc, f"{node_path}/{name}{FLAG_SUFFIX}")[d.region[0]] = False
                    unit_marked = True
                elif name in POINT_ARRAYS and node_path.endswith(POINTCLOUDS):
                    unit_marked = _clear_clouds(loc, node, d)
                if not unit_marked:
                    node.attrs[REWRITE] = True
            node.attrs["complete"] = False
        store.consolidate(loc)
    return sorted(by_node)
