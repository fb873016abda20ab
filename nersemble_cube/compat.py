"""Drop-in data managers: the official toolkit's ``NVSDataManager``, ``MonoFlameAvatarDataManager`` and
``SVFRDataManager`` API, and the full dataset toolkit's ``NeRSembleParticipantDataManager``, backed by a
cube instead of the mp4/pcd/npz/png/json files.

Switch by changing an import::

    # from nersemble_benchmark.data.benchmark_data import NVSDataManager
    from nersemble_cube.compat import NVSDataManager
    manager = NVSDataManager("cube.zarr", 388)          # a cube path where the toolkit takes the folder
    image = manager.load_image("GLASSES", "222200042", 10)   # float64 in [0, 1], as the toolkit

Method names, arguments and return conventions are the toolkit's (0.2.0): ``load_image`` returns
``(H, W, 3)`` float64 ``/ 255`` (uint8 with ``as_uint8=True``), ``load_alpha_map`` ``(H, W, 1)``
uint8, ``load_camera_calibration`` 4x4 / 3x3 arrays per serial (plain numpy: the toolkit's dreifus
``Pose`` / ``Intrinsics`` are ndarray subclasses with the same values), ``load_pointcloud`` float32
``(points, colors, normals)``, ``load_flame_tracking`` a ``FlameTracking``. Reads go straight to
zarr (no dask), one chunk per frame, which also suits PyTorch DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .cube import schema
from .cube.access import as_tree, find_node, flame_tracking, load_pointcloud
from .cube.frames import FrameReader
from .errors import SelectionError
from .source.converters.flame import FlameTracking


@dataclass
class CameraParams:
    """``world_2_cam`` (OpenCV world-to-camera 4x4) and ``intrinsics`` (3x3) per serial, as the toolkit's."""

    world_2_cam: dict[str, np.ndarray]
    intrinsics: dict[str, np.ndarray]


@dataclass
class ImageKey:
    """An SVFR image, as the toolkit's ``ImageKey``."""

    sequence_name: str
    timestep: int
    serial: str

    def to_key(self) -> str:
        return f"{self.sequence_name}_{self.timestep:03d}_{self.serial}"


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    """The toolkit's ``resize_img(image, scale)``: Pillow bilinear to ``int(size * scale + 0.5)``."""
    from PIL import Image

    size = (int(image.shape[1] * scale + 0.5), int(image.shape[0] * scale + 0.5))
    return np.array(Image.fromarray(image).resize(size, resample=Image.Resampling.BILINEAR))


class BaseDataManager:
    """The video part of the toolkit's ``BaseDataManager`` for one participant of one benchmark."""

    def __init__(self, cube: str | Path | xr.DataTree, benchmark_type: str, participant_id: int):
        self._store = None if isinstance(cube, xr.DataTree) else Path(cube).expanduser()
        self._readers: dict[tuple[str, str], FrameReader] = {}
        self._tree = as_tree(cube, dask=False)
        self._benchmark_type = benchmark_type
        self._participant_id = participant_id

    def _sequence(self, sequence_name: str) -> xr.DataTree:
        return find_node(self._tree, schema.sequence_path(self._benchmark_type, self._participant_id, sequence_name))

    def load_camera_calibration(self) -> CameraParams:
        calib = find_node(self._tree, schema.calibration_path(self._benchmark_type, self._participant_id)).to_dataset()
        serials = [str(s) for s in calib.camera.values]
        return CameraParams({s: calib.world_2_cam.values[i] for i, s in enumerate(serials)},
                            {s: calib.intrinsics.values[i] for i, s in enumerate(serials)})

    def list_sequences(self) -> list[str]:
        node = find_node(self._tree, f"{schema.participant_path(self._benchmark_type, self._participant_id)}/sequences")
        return sorted(node.children)

    def list_serials(self, sequence_name: str) -> list[str]:
        seq = self._sequence(sequence_name)
        return [str(s) for s in seq.camera.values] if "camera" in seq.coords else []

    def get_n_timesteps(self, sequence_name: str) -> int:
        return int(self._sequence(sequence_name).attrs["n_frames"])

    def list_timesteps(self, sequence_name: str) -> list[int]:
        return list(range(self.get_n_timesteps(sequence_name)))

    def has_sequence(self, sequence_name: str) -> bool:
        try:
            return bool(self._sequence(sequence_name).attrs.get("has_video"))
        except SelectionError:
            return False

    def has_video(self, sequence_name: str, serial: str) -> bool:
        return self.has_sequence(sequence_name) and serial in self.list_serials(sequence_name)

    def _frame(self, sequence_name: str, serial: str, timestep: int, variable: str) -> np.ndarray:
        """The frame, a new array (a :class:`FrameReader` kept per sequence and variable, so repeated loads read
        each shard index once)."""
        path = schema.sequence_path(self._benchmark_type, self._participant_id, sequence_name)
        if self._store is not None:
            if (path, variable) not in self._readers:
                self._readers[path, variable] = FrameReader(self._store, path, variable)
            return self._readers[path, variable].read(serial, timestep)
        return find_node(self._tree, path)[variable].sel(camera=serial, time=timestep).values

    def load_image(self, sequence_name: str, serial: str, timestep: int, as_uint8: bool = False) -> np.ndarray:
        image = self._frame(sequence_name, serial, timestep, "images")
        return image if as_uint8 else image / 255.

    def load_alpha_map(self, sequence_name: str, serial: str, timestep: int) -> np.ndarray:
        return self._frame(sequence_name, serial, timestep, "alpha")[..., None]

    def load_all_images(self, sequence_name: str, serial: str, as_uint8: bool = False,
                        every_nth_frame: int | None = None, scale: float | None = None) -> list[np.ndarray]:
        seq = self._sequence(sequence_name)
        frames = seq["images"].sel(camera=serial).isel(time=slice(None, None, every_nth_frame)).values
        images = list(frames)
        if scale is not None:
            images = [_resize(image, scale) for image in images]
        return images if as_uint8 else [image / 255. for image in images]


class NVSDataManager(BaseDataManager):
    def __init__(self, cube: str | Path | xr.DataTree, participant_id: int):
        super().__init__(cube, "nvs", participant_id)

    def load_pointcloud(self, sequence_name: str, timestep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return load_pointcloud(self._sequence(sequence_name), timestep)


class MonoFlameAvatarDataManager(BaseDataManager):
    def __init__(self, cube: str | Path | xr.DataTree, participant_id: int):
        super().__init__(cube, "mono_flame_avatar", participant_id)

    def load_flame_tracking(self, sequence_name: str, version: int = 2) -> FlameTracking:
        return flame_tracking(self._sequence(sequence_name), version)


@dataclass
class DatasetCameraParams:
    """The full dataset's camera parameters, as ``nersemble_data``'s ``CameraParams``: ``world_2_cam`` (4x4)
    per serial and ONE shared ``intrinsics`` (3x3)."""

    world_2_cam: dict[str, np.ndarray]
    intrinsics: np.ndarray


class NeRSembleParticipantDataManager(BaseDataManager):
    """``nersemble_data.data.nersemble_data.NeRSembleParticipantDataManager`` (0.0.6) over the cube's
    ``dataset/{participant_id:03d}`` nodes: same methods, arguments and return values (plain numpy where
    it returns dreifus ``Pose`` / ``Intrinsics``). Timesteps are source frame indices: a cube converted with
    ``--every-nth`` holds (and lists) only those it kept."""

    def __init__(self, cube: str | Path | xr.DataTree, participant_id: int):
        super().__init__(cube, "dataset", participant_id)
        self._color: dict[str, np.ndarray] | None = None

    def _calibration(self) -> xr.Dataset:
        return find_node(self._tree, schema.calibration_path("dataset", self._participant_id)).to_dataset()

    def load_camera_calibration(self) -> DatasetCameraParams:
        calib = self._calibration()
        serials = [str(s) for s in calib.camera.values]
        return DatasetCameraParams({s: calib.world_2_cam.values[i] for i, s in enumerate(serials)},
                                   calib.intrinsics.values[0])

    def _matrices(self) -> dict[str, np.ndarray]:
        """serial -> colour-correction matrix, read once."""
        if self._color is None:
            calib = self._calibration()
            if "color_correction" not in calib:
                raise SelectionError(f"participant {self._participant_id:03d} has no colour calibration in this cube")
            self._color = {str(s): calib.color_correction.values[i] for i, s in enumerate(calib.camera.values)}
        return self._color

    def load_color_calibration(self) -> dict[str, np.ndarray]:
        """serial -> ``(3, terms)`` colour-correction matrix."""
        return {s: m.copy() for s, m in self._matrices().items()}

    def list_cameras(self, sequence_name: str) -> list[str]:
        return self.list_serials(sequence_name)

    def list_timesteps(self, sequence_name: str) -> list[int]:
        return [int(t) for t in self._sequence(sequence_name).time.values]

    def load_image(self, sequence_name: str, serial: str, timestep: int, as_uint8: bool = False,  # type: ignore[override]
                   apply_color_correction: bool = False, downscale_factor: float | None = None) -> np.ndarray:
        """As the toolkit: the frame (uint8), resized by ``1 / downscale_factor`` (Pillow bilinear), ``/ 255``
        unless ``as_uint8``, then colour-corrected (:func:`~nersemble_cube.source.converters.color.correct_color`)."""
        image = self._frame(sequence_name, serial, timestep, "images")
        if downscale_factor is not None:
            image = _resize(np.ascontiguousarray(image), 1 / downscale_factor)
        image = image if as_uint8 else image / 255.
        if apply_color_correction:
            from .source.converters.color import correct_color

            if "color_corrected" in self._sequence(sequence_name)["images"].attrs:
                raise SelectionError(f"{sequence_name}: the frames of this cube are colour-corrected already "
                                     "(preprocess --color-correct); load them without apply_color_correction")
            image = correct_color(image, self._matrices()[serial])
        return image


class SVFRDataManager:
    """The toolkit's ``SVFRDataManager`` over the cube's ``svfr`` node."""

    def __init__(self, cube: str | Path | xr.DataTree, participant_id: int):
        tree = as_tree(cube, dask=False)
        self._ds = tree[schema.SVFR].to_dataset()
        self._participant_id = participant_id

    def list_image_keys(self) -> list[ImageKey]:
        ds = self._ds
        mine = ds.participant_id.values == self._participant_id
        keys = [ImageKey(str(s), int(t), str(c)) for s, t, c in
                zip(ds.sequence.values[mine], ds.timestep.values[mine], ds.serial.values[mine], strict=True)]
        # the toolkit lists folders sorted by name: "{seq}_{timestep}_{serial}" with an unpadded timestep
        return sorted(keys, key=lambda k: f"{k.sequence_name}_{k.timestep}_{k.serial}")

    def load_image(self, image_key: ImageKey) -> np.ndarray:
        return self._ds.images.sel(image=f"{self._participant_id:03d}/{image_key.to_key()}").values
