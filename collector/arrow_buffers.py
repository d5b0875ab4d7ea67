"""numpy <-> Arrow through raw buffers, never through Python values.

pyarrow imports pandas (a fifth to a quarter of a second) the first time it
converts a Python value or a nullable array to or from numpy. The collect
path must not pay that every cycle, so the parser and the job store move
columns between numpy and Arrow with these, reading and building buffers
directly (and Arrow kernels take their constants as options, never values).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

_NUMPY_TYPES = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32,
                pa.int64(): np.int64, pa.uint8(): np.uint8, pa.float64(): np.float64}


def to_numpy(values: pa.Array | pa.ChunkedArray, fill: float = 0) -> np.ndarray:
    """An Arrow array as numpy, nulls replaced by `fill`."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_boolean(values.type):
        return to_numpy(values.cast(pa.uint8()), fill).astype(bool)
    dtype = np.dtype(_NUMPY_TYPES[values.type])
    out = np.frombuffer(values.buffers()[1], dtype=dtype, count=len(values),
                        offset=values.offset * dtype.itemsize)
    if values.null_count:
        out = out.copy()
        out[to_numpy(values.is_null())] = fill
    return out


def to_floats(values: pa.Array | pa.ChunkedArray, fill: float = np.nan) -> np.ndarray:
    """An int64 or timestamp column as float64, nulls as `fill`: one array
    written chunk by chunk, with no intermediate copies (a million rows of
    times are converted this way four times per collection)."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    if not all(pa.types.is_int64(c.type) or pa.types.is_timestamp(c.type) for c in chunks):
        return to_numpy(values.cast(pa.float64()), fill)
    out = np.empty(len(values), dtype=np.float64)
    pos = 0
    for chunk in chunks:
        n = len(chunk)
        part = out[pos:pos + n]
        part[:] = np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=n,
                                offset=chunk.offset * 8)
        if chunk.null_count:
            valid = np.unpackbits(np.frombuffer(chunk.buffers()[0], dtype=np.uint8),
                                  count=chunk.offset + n, bitorder="little")[chunk.offset:]
            part[valid == 0] = fill
        pos += n
    return out


def empty_strings(n: int) -> pa.Array:
    """`n` empty strings, built from buffers (a Python "" would be converted
    by pa.scalar, which imports pandas)."""
    return pa.StringArray.from_buffers(n, pa.py_buffer(np.zeros(n + 1, dtype=np.int32)),
                                       pa.py_buffer(b""))


# A "" to fill nulls with (fill_null converts anything but a Scalar with pa.scalar).
EMPTY_STRING = empty_strings(1)[0]


def string_bytes(values: pa.Array, pad: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A string array (no nulls) as its UTF-8 bytes (followed by `pad` zero
    bytes, so a fixed-width read past a short string stays in bounds) and
    each string's start and length in them."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise TypeError(f"string_bytes needs a string array, not {values.type}")
    width = 8 if pa.types.is_large_string(values.type) else 4
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64 if width == 8 else np.int32,
                            count=len(values) + 1, offset=values.offset * width).astype(np.int64)
    raw = values.buffers()[2]
    data = np.zeros((raw.size if raw is not None else 0) + pad, dtype=np.uint8)
    if raw is not None and raw.size:
        data[:raw.size] = np.frombuffer(raw, dtype=np.uint8)
    return data, offsets[:-1], np.diff(offsets)


def from_numpy(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """A numpy array (of `arrow_type`'s width) as an Arrow array without nulls."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def from_bools(values: np.ndarray) -> pa.Array:
    """A numpy bool array as an Arrow boolean array (bits packed by numpy)."""
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def strings(names: Sequence[str]) -> pa.Array:
    """Python strings as an Arrow string array (offsets and bytes built by hand)."""
    encoded = [n.encode("utf-8") for n in names]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def dictionary(codes: np.ndarray, names: Sequence[str]) -> pa.DictionaryArray:
    """Int codes into `names` as an Arrow dictionary array."""
    return pa.DictionaryArray.from_arrays(
        from_numpy(codes.astype(np.int32, copy=False), pa.int32()), strings(names))


def names_and_codes(col: pa.Array) -> tuple[tuple[str, ...], np.ndarray]:
    """The inverse of `dictionary`."""
    return tuple(col.dictionary.to_pylist()), to_numpy(col.indices).astype(np.int64)
