"""zarr v3 codecs of ours, one small typed module each (as zarr-python's ``zarr.codecs``); importing this
package registers them with zarr.

- :mod:`.jpegxl`: :class:`~.jpegxl.JpegXlCodec`, ``nersemble_cube.jpegxl``: JPEG-XL frames
- :mod:`.video`: :class:`~.video.VideoCodec`, ``nersemble_cube.video``: closed-GOP H.264 / HEVC chunks along time
"""

from .jpegxl import JpegXlCodec
from .video import VideoCodec

__all__ = ["JpegXlCodec", "VideoCodec"]
