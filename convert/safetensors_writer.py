"""
A safetensors file written one tensor at a time. `safetensors.torch.save_file` needs every tensor in memory at
once; here the header is written from the names, dtypes and shapes alone, then each tensor's bytes as it comes, so
a converter holds one tensor at a time. The file follows the safetensors format (8-byte little-endian header size,
JSON header padded with spaces to a multiple of 8 bytes, then the tensors' bytes back to back) and is read back by
`safetensors.safe_open` like any other.
"""

import json
import struct
from pathlib import Path

import torch


_DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


class SafetensorsWriter:
    """Writes `layout` (name -> (dtype, shape), in file order) to `path`; feed every tensor with `write`, in order.

    Raises (from `write`): ValueError for a tensor that is not the next one of the layout; (from `close`) ValueError
    when tensors are missing.
    """

    def __init__(self, path: str | Path, layout: dict[str, tuple[torch.dtype, torch.Size]], metadata: dict[str, str]):
        header: dict = {"__metadata__": metadata}
        offset = 0
        for name, (dtype, shape) in layout.items():
            size = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
            header[name] = {"dtype": _DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        self._pending = list(layout.items())
        self._file = open(path, "wb")
        self._file.write(struct.pack("<Q", len(encoded)) + encoded)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        expected_name, (dtype, shape) = self._pending.pop(0)
        if name != expected_name or tensor.dtype != dtype or tensor.shape != torch.Size(shape):
            raise ValueError(
                f"Got {name} {tensor.dtype} {tuple(tensor.shape)}, the layout's next tensor is "
                f"{expected_name} {dtype} {tuple(shape)}."
            )
        data = tensor.detach().contiguous().cpu()
        if data.numel():
            # Any dtype as raw bytes (numpy has no bfloat16): one view, no copy of a contiguous tensor.
            self._file.write(memoryview(data.view(-1).view(torch.uint8).numpy()))

    def close(self) -> None:
        self._file.close()
        if self._pending:
            raise ValueError(f"{len(self._pending)} tensors of the layout were not written: {self._pending[0][0]}, ...")

    def __enter__(self) -> "SafetensorsWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        if exc_info[0] is None:
            self.close()
        else:
            self._file.close()
