"""Many small arrays in a few npz members.

An npz member costs about 0.4 ms to read whatever its size (a zip entry, a
header, a CRC): the store's caches hold a few dozen arrays per QoS, so at
500 QoS one member each made 25,000 members and seconds of reading per cycle.
`pack` lays the arrays of one dtype end to end in one member and says in an
index where each lies; `unpacked` gives them back by name, as views.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

INDEX = "packed_index"


def pack(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The npz members holding `arrays` (numbers packed by dtype; strings,
    such as a JSON meta, stay members of their own)."""
    index: dict[str, tuple[str, int, list[int]]] = {}
    parts: dict[str, list[np.ndarray]] = {}
    sizes: dict[str, int] = {}
    out: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        a = np.asarray(value)
        if a.dtype.kind not in "biuf":
            out[name] = a
            continue
        dt = a.dtype.str
        index[name] = (dt, sizes.get(dt, 0), list(a.shape))
        parts.setdefault(dt, []).append(a.reshape(-1))
        sizes[dt] = sizes.get(dt, 0) + a.size
    for i, dt in enumerate(parts):
        out[f"packed_{i}"] = np.concatenate(parts[dt])
    out[INDEX] = np.array(json.dumps({"dtypes": list(parts), "arrays": index}))
    return out


class Unpacked(Mapping[str, np.ndarray]):
    """The arrays of an npz written from `pack`, by name (read at once)."""

    def __init__(self, z: Any) -> None:
        meta = json.loads(str(z[INDEX][()]))
        self._flat = {dt: z[f"packed_{i}"] for i, dt in enumerate(meta["dtypes"])}
        self._index = meta["arrays"]
        self._members = {n: z[n] for n in z.files if n != INDEX and not n.startswith("packed_")}

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._members:
            return self._members[name]
        dt, start, shape = self._index[name]
        size = int(np.prod(shape, dtype=np.int64))
        return self._flat[dt][start:start + size].reshape(shape)

    def __iter__(self) -> Iterator[str]:
        return iter([*self._members, *self._index])

    def __len__(self) -> int:
        return len(self._members) + len(self._index)


def unpacked(z: Any) -> Unpacked:
    """KeyError for an npz that `pack` did not write (a cache made anew)."""
    return Unpacked(z)
