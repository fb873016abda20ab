"""CRC-32C of many buffers in GPU memory at once: nvCOMP's batched CRC32 (``nvcompBatchedCRC32Async``, nvCOMP 6,
with its CRC32-C preset), called through ctypes because nvCOMP's Python API has no checksum call. The values are
those of the ``crc32c`` package (and zarr's ``crc32c`` codec) for the same bytes.

Needs the ``gpu`` extra (``nvidia-libnvcomp-cu13``, whose ``load_library`` opens the shared library) and torch
(the pointers, sizes and results are CUDA tensors).
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


class _Spec(ctypes.Structure):
    """``nvcompCRC32Spec_t`` (nvcomp/crc32.h)."""

    _fields_ = [("poly", ctypes.c_uint32), ("init", ctypes.c_uint32), ("ref_in", ctypes.c_bool),
                ("ref_out", ctypes.c_bool), ("xorout", ctypes.c_uint32), ("reserved", ctypes.c_char * 16)]


class _KernelConf(ctypes.Structure):
    """``nvcompCRC32KernelConf_t``."""

    _fields_ = [("kernel_kind", ctypes.c_int), ("bytes_per_read", ctypes.c_int32),
                ("blocks_per_msg", ctypes.c_int32), ("reserved", ctypes.c_char * 20)]


class _Opts(ctypes.Structure):
    """``nvcompBatchedCRC32Opts_t``."""

    _fields_ = [("spec", _Spec), ("kernel_conf", _KernelConf), ("reserved", ctypes.c_char * 64)]


CRC32C = _Spec(0x1EDC6F41, 0xFFFFFFFF, True, True, 0xFFFFFFFF)
"""nvCOMP's ``nvcompCRC32_C`` preset: CRC-32/ISCSI, what zarr's ``crc32c`` codec appends to a chunk."""
_ONLY_SEGMENT = 0  # nvcompCRC32OnlySegment: each buffer is a whole message


def _library() -> ctypes.CDLL:
    try:
        from nvidia import libnvcomp
    except ImportError:  # nvCOMP's Python API then finds the library on LD_LIBRARY_PATH, and so does this
        lib = ctypes.CDLL("libnvcomp.so.6")
    else:
        lib = libnvcomp.load_library()
    if lib is None or not hasattr(lib, "nvcompBatchedCRC32Async"):
        raise ImportError("nvCOMP 6's libnvcomp (nvidia-libnvcomp-cu13 >= 6) has no nvcompBatchedCRC32Async here")
    lib.nvcompBatchedCRC32Async.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                                            _Opts, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    lib.nvcompBatchedCRC32GetHeuristicConf.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                                       ctypes.POINTER(_KernelConf), ctypes.c_size_t, ctypes.c_void_p]
    return lib


class BatchedCrc32c:
    """Computes the CRC-32C of each of many byte ranges of one CUDA uint8 tensor, on ``stream``'s device."""

    def __init__(self, stream: torch.cuda.Stream):
        self._lib = _library()
        self._stream = stream

    def __call__(self, data: torch.Tensor, offsets: np.ndarray, sizes: np.ndarray) -> torch.Tensor:
        """CRC-32C of ``data[offsets[i]:offsets[i] + sizes[i]]`` for each ``i`` (``data``: contiguous uint8 CUDA
        tensor; ``offsets``, ``sizes``: int64 host arrays, bytes), as an int64 tensor on ``data``'s device of
        values 0 to 2**32 - 1, computed on the stream given (ready when the stream has run it)."""
        import torch

        n = len(sizes)
        if n == 0:
            return torch.empty(0, dtype=torch.int64, device=data.device)
        with torch.cuda.stream(self._stream):
            table = torch.from_numpy(np.stack([offsets, sizes]).astype(np.int64)).to(data.device)
            pointers, lengths = table[0] + data.data_ptr(), table[1]
            out = torch.empty(n, dtype=torch.int32, device=data.device)
            opts = _Opts(spec=CRC32C)
            status = self._lib.nvcompBatchedCRC32GetHeuristicConf(None, n, ctypes.byref(opts.kernel_conf),
                                                                  int(sizes.max()), None)
            if status == 0:
                status = self._lib.nvcompBatchedCRC32Async(pointers.data_ptr(), lengths.data_ptr(), n, out.data_ptr(),
                                                           opts, _ONLY_SEGMENT, None, self._stream.cuda_stream)
            if status != 0:
                raise RuntimeError(f"nvCOMP's batched CRC32 failed (nvcompStatus {status})")
            return out.long() & 0xFFFFFFFF
