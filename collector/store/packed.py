"""Many small arrays in a few npz members.

An npz member costs about 0.4 ms to read whatever its size (a zip entry, a
header, a CRC): the store's caches hold a few dozen arrays per QoS, so at
500 QoS one member each made 25,000 members and seconds of reading per cycle.
`pack` lays the arrays of one dtype end to end in one member and says in an
index where each lies; `unpacked` gives them back by name, as views.
"""

from __future__ import annotations

import io
import json
import math
import mmap
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
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
        size = math.prod(shape)
        return self._flat[dt][start:start + size].reshape(shape)

    def __iter__(self) -> Iterator[str]:
        return iter([*self._members, *self._index])

    def __len__(self) -> int:
        return len(self._members) + len(self._index)


def unpacked(z: Any) -> Unpacked:
    """KeyError for an npz that `pack` did not write (a cache made anew)."""
    return Unpacked(z)


class MappedNpz(Mapping[str, np.ndarray]):
    """An npz written by np.savez (members stored, not compressed), its arrays
    read-only views of the file mapped into memory: opening costs a few
    milliseconds whatever the size, and a member's pages are read when used.
    np.load copies every member and checks its CRC (at 500 QoS the caches are
    a third of a gigabyte, a second of every cycle). ValueError for a member
    that is compressed or holds objects; the caches' own checks (their
    fingerprints and lengths) say whether one belongs to the store."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as fh:
            try:
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file
                raise ValueError(f"{path}: empty") from None
            try:
                members = zipfile.ZipFile(fh).infolist()
            except zipfile.BadZipFile as err:
                raise ValueError(f"{path}: {err}") from None
        self._members = {m.filename.removesuffix(".npy"): m for m in members}
        self.files = list(self._members)

    def __getitem__(self, name: str) -> np.ndarray:
        m = self._members[name]
        if m.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"npz member {name} is compressed")
        # The local header: 30 bytes, then the name and an extra field of its own.
        local = self._map[m.header_offset:m.header_offset + 30]
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"npz member {name}: no local header")
        start = m.header_offset + 30 + int.from_bytes(local[26:28], "little") \
            + int.from_bytes(local[28:30], "little")
        npy = io.BytesIO(self._map[start:start + min(m.file_size, 65536)])
        version = np.lib.format.read_magic(npy)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"npz member {name}: .npy format {version} not read here")
        shape, fortran, dtype = read_header(npy)
        if dtype.hasobject:
            raise ValueError(f"npz member {name} holds objects")
        count = math.prod(shape)
        if npy.tell() + count * dtype.itemsize > m.file_size:
            raise ValueError(f"npz member {name} is shorter than its header says")
        flat = np.frombuffer(self._map, dtype=dtype, count=count, offset=start + npy.tell())
        return flat.reshape(shape, order="F" if fortran else "C")

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __enter__(self) -> MappedNpz:
        return self

    def __exit__(self, *exc: object) -> None:
        """The arrays handed out keep the mapping alive; nothing to close."""
