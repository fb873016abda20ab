"""zarr v3 codecs of ours, one small typed module each (as zarr-python's ``zarr.codecs``); importing this
package registers them with zarr.

- :mod:`.jpegxl`: :class:`~.jpegxl.JpegXlCodec`, ``nersemble_cube.jpegxl``: JPEG-XL frames
"""

from .jpegxl import JpegXlCodec

__all__ = ["JpegXlCodec"]
