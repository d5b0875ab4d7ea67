"""The store's caches keep many small arrays in a few npz members."""

from __future__ import annotations

import io

import numpy as np
import pytest

from collector.store.packed import pack, unpacked


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
