"""The store's caches keep many small arrays in a few npz members."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from collector.atomic import write_atomic
from collector.store.packed import MappedNpz, pack, unpacked


def test_arrays_come_back_by_name_with_their_dtype_shape_and_values() -> None:
    arrays = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.zeros(0),
              "c": np.array([1.5, -2.0]), "d": np.array([3], dtype=np.int32),
              "e": np.arange(24.0).reshape(2, 3, 4), "meta": np.array('{"x": 1}'),
              "flag": np.array([True, False])}
    buf = io.BytesIO()
    np.savez(buf, **pack(arrays))
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        assert len(npz.files) < len(arrays)            # packed by dtype
        z = unpacked(npz)
        assert set(z) == set(arrays)
        for name, a in arrays.items():
            np.testing.assert_array_equal(z[name], a)
            assert z[name].dtype == a.dtype, name
            assert z[name].shape == a.shape, name


def test_an_npz_written_without_pack_is_refused_as_a_key_error() -> None:
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(3))
    buf.seek(0)
    with np.load(buf) as npz, pytest.raises(KeyError):
        unpacked(npz)


ARRAYS = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.zeros(0),
          "f": np.asfortranarray(np.arange(12.0).reshape(3, 4)), "meta": np.array('{"x": 1}'),
          "u": np.array(["ab", "c"]), "big": np.linspace(0.0, 1.0, 100_001)}


def test_a_mapped_npz_gives_what_np_load_gives_without_copying(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    write_atomic(path, lambda fh: np.savez(fh, **ARRAYS))
    with np.load(path, allow_pickle=False) as want, MappedNpz(path) as got:
        assert sorted(got.files) == sorted(want.files)
        for name in want.files:
            np.testing.assert_array_equal(got[name], want[name])
            assert (got[name].dtype, got[name].shape) == (want[name].dtype, want[name].shape)
        assert got["f"].flags.f_contiguous
        big = got["big"]
    assert not big.flags.writeable                             # a view of the mapping
    assert not big.flags.owndata
    assert big[-1] == 1.0                                      # alive after the with block
    # The packed caches read through it, as through np.load.
    write_atomic(path, lambda fh: np.savez(fh, **pack(ARRAYS)))
    z = unpacked(MappedNpz(path))
    for name, a in ARRAYS.items():
        np.testing.assert_array_equal(z[name], a)


def _first_member(path: Path) -> np.ndarray:
    z = MappedNpz(path)
    return z[z.files[0]]


@pytest.mark.parametrize(("damage", "says"), [
    ("empty", "empty"), ("not a zip", "not a zip file"), ("compressed", "is compressed"),
    ("cut short", "shorter than its header says"), ("objects", "holds objects")])
def test_a_mapped_npz_that_cannot_be_read_is_a_value_error(tmp_path: Path, damage: str,
                                                           says: str) -> None:
    """The caches' loaders take a ValueError (or OSError) as 'make it anew'."""
    path = tmp_path / "c.npz"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "not a zip":
        path.write_bytes(b"x" * 1000)
    elif damage == "compressed":
        np.savez_compressed(path, a=np.arange(100))
    elif damage == "objects":
        np.savez(path, a=np.array([{"x": 1}], dtype=object))
    else:   # the member's header says more than its bytes hold
        np.savez(path, a=np.arange(10_000))
        body = path.read_bytes()
        at = body.index(b"(10000,)")
        path.write_bytes(body[:at] + b"(90000,)" + body[at + 8:])
    with pytest.raises(ValueError, match=says):
        _first_member(path)
