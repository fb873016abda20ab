"""What each training code base reads from a NeRF-style folder: one row per reader.

Every row was taken from the reader's own source (named in ``reads``); docs/nerf-export.md shows
the same table with the training command for each. :func:`~nersemble_cube.training.nerf.export_nerf`
writes exactly what the chosen row says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Split = Literal["vhap", "train-test", "filenames", "none"]
"""How a folder carries its train / validation / test division:

``vhap``: ``transforms_{train,val,test}.json`` as VHAP's ``split_json`` writes them (the first 70 %
of the timesteps train, camera index 8 the validation view of those, the rest test);
``train-test``: ``transforms_train.json`` and ``transforms_test.json`` only, the test file holding
VHAP's validation and test frames (a reader that never opens a validation file);
``filenames``: ``train_filenames``, ``val_filenames``, ``test_filenames`` inside ``transforms.json``;
``none``: only ``transforms.json`` (a reader that loads every json file of the folder)."""


@dataclass(frozen=True)
class Reader:
    """One training code base's reader of a NeRF-style folder."""

    name: str
    reads: str
    """The functions that read the folder, with the file and commit they were read at."""
    formats: tuple[str, ...]
    """Image formats the reader opens; the first is the default."""
    format_reason: str
    """Why another format cannot be read (the one-line refusal)."""
    cy_from_bottom: bool
    """``cy`` is measured from the bottom row (VHAP's OpenCV -> OpenGL conversion flips it: ``h - cy``)."""
    identity_keys: bool
    """Per-frame ``timestep_index``, ``camera_index`` and the rest of VHAP's bookkeeping keys."""
    mask_key: str | None
    """Per-frame key of the foreground mask png; ``None``: no mask files."""
    rgba: bool
    """Images are RGBA with the matte as alpha (not composited on a background)."""
    ply_key: str | None
    """Top-level key naming ``points3d.ply``; ``""``: the reader finds it by its file name; ``None``: not written."""
    flame_params: bool
    """``flame_param/{i:05d}.npz`` and ``canonical_flame_param.npz`` with VHAP's keys (sequences with tracking)."""
    split: Split
    split_without_flame: Split
    reads_time: bool
    """The reader keeps timesteps apart (else every exported frame is one static scene)."""
    top_level: dict = field(default_factory=dict)
    """Constant top-level keys the reader needs."""


READERS: dict[str, Reader] = {
    r.name: r for r in (
        Reader(
            name="gaussian-avatars",
            reads="GaussianAvatars scene/__init__.py Scene, scene/dataset_readers.py readDynamicNerfInfo (with "
                  "canonical_flame_param.npz) or readNerfSyntheticInfo, readCamerasFromTransforms, "
                  "scene/flame_gaussian_model.py load_meshes (commit 30cc4bd)",
            formats=("png",),
            format_reason="GaussianAvatars appends '.png' to every file_path that does not contain '.png' "
                          "(readCamerasFromTransforms)",
            cy_from_bottom=True, identity_keys=True, mask_key="fg_mask_path", rgba=False, ply_key="",
            flame_params=True, split="vhap", split_without_flame="train-test", reads_time=True,
        ),
        Reader(
            name="nerfstudio",
            reads="nerfstudio 1.1.5 data/dataparsers/nerfstudio_dataparser.py Nerfstudio._generate_dataparser_outputs",
            formats=("png", "jpg"), format_reason="",
            cy_from_bottom=False, identity_keys=False, mask_key="mask_path", rgba=False, ply_key="ply_file_path",
            flame_params=False, split="filenames", split_without_flame="filenames", reads_time=False,
            top_level={"camera_model": "OPENCV"},
        ),
        Reader(
            name="vhap",
            reads="VHAP vhap/data/nerf_dataset.py NeRFDataset; layout of vhap/export_as_nerf_dataset.py "
                  "NeRFDatasetWriter, write_flame_param, split_json (commit 4b64ab7)",
            formats=("png", "jpg"), format_reason="",
            cy_from_bottom=True, identity_keys=True, mask_key="fg_mask_path", rgba=False, ply_key=None,
            flame_params=True, split="vhap", split_without_flame="vhap", reads_time=True,
        ),
        Reader(
            name="instant-ngp",
            reads="instant-ngp src/nerf_loader.cu load_nerf, read_focal_length, read_lens (commit 090aed6)",
            formats=("png",),
            format_reason="instant-ngp takes the matte from the png's alpha channel",
            cy_from_bottom=False, identity_keys=False, mask_key=None, rgba=True, ply_key=None,
            flame_params=False, split="none", split_without_flame="none", reads_time=False,
            top_level={"aabb_scale": 1},
        ),
    )
}
DEFAULT_READER = "gaussian-avatars"
