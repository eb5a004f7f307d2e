"""The Python contract of ndarray_mmap: maps as numpy arrays, and evaluate against numpy."""

import itertools
import os
import signal
import threading

import numpy as np
import pytest

import ndarray_mmap as nm

RNG = np.random.default_rng(7)


def data(dtype, shape):
    dt = np.dtype(dtype)
    if dt == bool:
        return RNG.random(shape) > 0.5
    if dt.kind == "f":
        return (RNG.standard_normal(shape) * 100).astype(dt)
    info = np.iinfo(dt)
    lo, hi = max(info.min, -1000), min(info.max, 1000)
    return RNG.integers(lo, hi, size=shape, endpoint=True).astype(dt)


def same(got, want):
    """Bit for bit where numpy is exact; NaN where numpy has NaN."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind == "f":
        np.testing.assert_array_equal(got, want)
    else:
        assert np.array_equal(got, want)


def test_open_is_the_file_without_a_copy(tmp_path):
    a = data("float32", (300, 40))
    np.save(tmp_path / "a.npy", a)
    m = nm.open(tmp_path / "a.npy")
    assert isinstance(m, np.ndarray) and not m.flags.writeable
    same(m, a)
    assert isinstance(m.base, nm.Map)
    w = nm.open(tmp_path / "a.npy", mode="r+")
    w[0, 0] = 42.0
    nm.flush(w)
    del w
    assert np.load(tmp_path / "a.npy")[0, 0] == 42.0
    assert m[0, 0] == 42.0  # the same pages


def test_open_raw_with_a_minus_one_axis(tmp_path):
    a = data("int16", (50, 8))
    a.tofile(tmp_path / "a.i16")
    m = nm.open(tmp_path / "a.i16", dtype="int16", shape=(-1, 8))
    same(m, a)
    with pytest.raises(ValueError, match="a.i16"):
        nm.open(tmp_path / "a.i16", dtype="int16", shape=(-1, 7))
    with pytest.raises(OSError, match="missing"):
        nm.open(tmp_path / "missing.npy")
    with pytest.raises(TypeError):
        nm.open(tmp_path / "a.i16")  # a raw file needs its dtype
    np.save(tmp_path / "n.npy", a)
    with pytest.raises(ValueError, match="header"):
        nm.open(tmp_path / "n.npy", offset=128)  # offset and shape are for raw files


def test_npy_memmaps_from_np_load_stream_through_the_crate(tmp_path):
    a = data("float32", (64, 32))
    np.save(tmp_path / "a.npy", a)
    m = np.load(tmp_path / "a.npy", mmap_mode="r")
    op = nm._operand(m, "a")
    assert op.desc[0] == "map", op.desc  # mapped again by the crate, not read as memory
    same(nm.evaluate("m * 2", m=m), a * 2)


def test_create_then_numpy_reads_it(tmp_path):
    c = nm.create(tmp_path / "c.npy", dtype="float64", shape=(10, 3))
    assert c.flags.writeable and (c == 0).all()
    c[:] = np.arange(30).reshape(10, 3)
    nm.flush(c)
    same(np.load(tmp_path / "c.npy"), np.arange(30.0).reshape(10, 3))


@pytest.mark.parametrize("dtype", ["float16", "complex64", "complex128"])
def test_float16_and_complex_files_map_both_ways_and_evaluate_names_them(tmp_path, dtype):
    a = (np.arange(24).reshape(4, 6) * 1.25 - 7).astype(dtype)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * a[::-1].astype(dtype)
    np.save(tmp_path / "a.npy", a)
    m = nm.open(tmp_path / "a.npy")
    assert m.dtype == np.dtype(dtype) and isinstance(m.base, nm.Map)
    assert np.array_equal(m.view(np.uint8), a.view(np.uint8))  # bit for bit, no copy
    a.tofile(tmp_path / "a.raw")
    r = nm.open(tmp_path / "a.raw", dtype=dtype, shape=(-1, 6), mode="r+")
    assert np.array_equal(r.view(np.uint8), a.view(np.uint8))
    r[1, 2] = 3
    nm.flush(r)
    a[1, 2] = 3
    assert np.array_equal(np.fromfile(tmp_path / "a.raw", dtype=dtype).reshape(4, 6), a)
    c = nm.create(tmp_path / "c.npy", dtype=dtype, shape=(4, 6), order="F")
    c[:] = a
    nm.flush(c)
    back = np.load(tmp_path / "c.npy")
    assert back.dtype == np.dtype(dtype) and np.isfortran(back)
    assert np.array_equal(back, a)
    with pytest.raises(TypeError, match=dtype):
        nm.open(tmp_path / "a.npy", dtype="float32")  # the header's type, named
    with pytest.raises(TypeError, match=f"a.npy\\) holds {dtype}"):
        nm.evaluate("m + 1", m=m)  # mapped, not computed in: named, nothing written
    with pytest.raises(TypeError, match=f"a.npy\\) holds {dtype}"):
        nm.evaluate("m + 1", m=str(tmp_path / "a.npy"))
    np.save(tmp_path / "big.npy", a.astype(a.dtype.newbyteorder(">")))
    with pytest.raises(TypeError, match="byte order"):
        nm.open(tmp_path / "big.npy")
    with pytest.raises(TypeError, match=dtype):
        nm.evaluate("x * 2", x=np.ones((4, 6)), out=c)
    assert np.array_equal(np.load(tmp_path / "c.npy"), a)


def test_the_contract_example(tmp_path):
    a = data("float32", (64, 1024))
    np.save(tmp_path / "a.npy", a)
    b_ = data("float32", (64, 1024))
    b_.tofile(tmp_path / "b.f32")
    c = data("float32", (64, 1024))
    a_m = nm.open(tmp_path / "a.npy")
    b_m = nm.open(tmp_path / "b.f32", dtype="float32", shape=(-1, 1024))
    d = nm.create(tmp_path / "d.npy", dtype="float32", shape=a_m.shape)
    assert nm.evaluate("2*a + 3*b + c", out=d, a=a_m, b=b_m, c=c) is d
    same(d, 2 * a + 3 * b_ + c)
    x = nm.evaluate("where(a > 0, sqrt(a), -a)", a=a_m)
    with np.errstate(invalid="ignore"):
        same(x, np.where(a > 0, np.sqrt(a), -a))
    s = nm.evaluate("sum(a * b)", a=a_m, b=b_m)
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, np.sum(a.astype(np.float64) * b_), rtol=1e-5)
    m = nm.evaluate("mean(a, axis=0)", a=a_m)
    np.testing.assert_allclose(m, a.mean(axis=0), rtol=1e-5, atol=1e-4)
    assert m.dtype == np.float32 and m.shape == (1024,)


BINARY = ["+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!="]
DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "uint32", "uint64", "float32", "float64"]


@pytest.mark.parametrize("op", BINARY)
def test_binary_operators_match_numpy_for_every_pair_of_types(op):
    for t1, t2 in itertools.product(DTYPES, DTYPES):
        a, b = data(t1, (37,)), data(t2, (37,))
        if t2 != "bool" and op == "/":
            b[b == 0] = 1
        with np.errstate(all="ignore"):
            try:
                want = eval(f"a {op} b")
            except TypeError:
                with pytest.raises(TypeError):
                    nm.evaluate(f"a {op} b", a=a, b=b)
                continue
        same(nm.evaluate(f"a {op} b", a=a, b=b), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_python_scalars_are_weak(dtype):
    a = data(dtype, (25,))
    for ex in ["a * 2", "a + 1.5", "2 * a - 1", "a > 3", "a / 4"]:
        with np.errstate(all="ignore"):
            try:
                want = eval(ex)
            except (TypeError, OverflowError):
                with pytest.raises((TypeError, OverflowError, ValueError)):
                    nm.evaluate(ex, a=a)
                continue
        same(nm.evaluate(ex, a=a), want)
    k = 3
    if dtype != "bool":
        same(nm.evaluate("a * k", a=a), a * k)  # a named Python scalar is weak too


@pytest.mark.parametrize("fn", ["sqrt", "exp", "log", "log1p", "expm1", "sin", "cos", "tan",
                                "abs", "floor", "ceil", "arctan"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint16"])
def test_functions_match_numpy(fn, dtype):
    a = data(dtype, (101,))
    with np.errstate(all="ignore"):
        want = getattr(np, fn if fn != "abs" else "absolute")(a)
        got = nm.evaluate(f"{fn}(a)", a=a)
    assert got.dtype == want.dtype
    if fn in ("sqrt", "abs", "floor", "ceil"):
        same(got, want)  # exactly rounded everywhere
    else:
        np.testing.assert_allclose(got, want, rtol=2e-6 if got.dtype == np.float32 else 1e-14)


def test_where_minimum_maximum_arctan2_mod_pow_bits():
    a, b = data("float64", (200,)), data("float64", (200,))
    b[::7] = np.nan
    same(nm.evaluate("minimum(a, b)", a=a, b=b), np.minimum(a, b))
    same(nm.evaluate("maximum(a, b)", a=a, b=b), np.maximum(a, b))
    np.testing.assert_allclose(nm.evaluate("arctan2(a, b)", a=a, b=b), np.arctan2(a, b))
    i, j = data("int32", (200,)), data("int32", (200,))
    j[j == 0] = 3
    same(nm.evaluate("i % j", i=i, j=j), i % j)
    same(nm.evaluate("a % 7.5", a=a), a % 7.5)
    same(nm.evaluate("(i & 12) | ~j", i=i, j=j), (i & 12) | ~j)
    same(nm.evaluate("where((a > 0) & (i < 0), a, i)", a=a, i=i), np.where((a > 0) & (i < 0), a, i))
    same(nm.evaluate("i ** 2", i=i), i ** 2)
    np.testing.assert_allclose(nm.evaluate("abs(a) ** 0.5", a=a), np.abs(a) ** 0.5)


def test_broadcasting_and_layouts():
    a = data("float32", (30, 20))
    row = data("float32", (20,))
    col = data("float32", (30, 1))
    same(nm.evaluate("a + row * col", a=a, row=row, col=col), a + row * col)
    f = np.asfortranarray(a)
    same(nm.evaluate("f * 2", f=f), f * 2)
    s = a[::2, ::3]
    same(nm.evaluate("s - 1", s=s), s - 1)
    out = np.zeros((20, 30), dtype=np.float64).T  # a strided output
    nm.evaluate("a + 1", a=a, out=out)
    same(out, (a + 1).astype(np.float64))
    big = np.zeros((2, 30, 20), dtype=np.float32)
    nm.evaluate("a * 3", a=a, out=big)  # inputs broadcast to the output
    same(big, np.broadcast_to(a * 3, big.shape))


def test_reductions_match_numpy():
    a = data("float64", (40, 30, 5))
    i = data("int32", (40, 30, 5))
    np.testing.assert_allclose(nm.evaluate("sum(a)", a=a), a.sum())
    for ax in [0, 1, 2, -1]:
        np.testing.assert_allclose(nm.evaluate(f"sum(a * 2, axis={ax})", a=a), (a * 2).sum(axis=ax))
        np.testing.assert_allclose(nm.evaluate(f"mean(a, axis={ax})", a=a), a.mean(axis=ax))
        same(nm.evaluate(f"min(a, axis={ax})", a=a), a.min(axis=ax))
        same(nm.evaluate(f"max(i, axis={ax})", i=i), i.max(axis=ax))
        same(nm.evaluate(f"sum(i, axis={ax})", i=i), i.sum(axis=ax))
    same(nm.evaluate("sum(i)", i=i), i.sum())
    same(nm.evaluate("min(i)", i=i), i.min())
    assert nm.evaluate("mean(i)", i=i) == pytest.approx(i.mean())
    same(nm.evaluate("sum(a > 0)", a=a), (a > 0).sum())
    with pytest.raises(ValueError, match="zero-size"):
        nm.evaluate("min(e)", e=np.zeros((0,)))
    with pytest.raises(ValueError, match="axis 3"):
        nm.evaluate("sum(a, axis=3)", a=a)


def test_errors_are_python_exceptions_raised_before_writing(tmp_path):
    a = data("float32", (10,))
    out = np.full(10, 7.0, dtype=np.float32)
    for ex, exc in [("a +", ValueError), ("foo(a)", ValueError), ("a < a < a", ValueError),
                    ("a & a", TypeError), ("-(a > 0)", TypeError), ("zz + a", ValueError),
                    ("sqrt(u)", TypeError)]:
        with pytest.raises(exc):
            nm.evaluate(ex, a=a, out=out, u=np.zeros(10, np.uint8))
        assert (out == 7.0).all(), ex
    with pytest.raises(ValueError, match="broadcast"):
        nm.evaluate("a + b", a=a, b=np.zeros(3, np.float32), out=out)
    with pytest.raises(TypeError, match="same_kind"):
        nm.evaluate("a * 1.5", a=a, out=np.zeros(10, np.int32))
    with pytest.raises(OverflowError, match="300"):
        nm.evaluate("u + 300", u=np.zeros(10, np.uint8))
    assert (out == 7.0).all()


def test_progress_and_cancel(tmp_path):
    a = np.ones(4 << 20, dtype=np.float32)  # 16 MiB: several chunks
    calls = []
    out = np.zeros_like(a)
    nm.evaluate("a + 1", a=a, out=out, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 2 and calls[-1][0] == calls[-1][1] == a.nbytes
    assert all(x[0] <= y[0] for x, y in zip(calls, calls[1:]))

    class Stop(Exception):
        pass

    def stop(done, total):
        raise Stop()

    with pytest.raises(Stop):
        nm.evaluate("a + 1", a=a, out=out, progress=stop)

    def interrupt(done, total):
        signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        nm.evaluate("a * 2", a=a, out=out, progress=interrupt)


def test_files_and_zarr_paths(tmp_path):
    import zarr  # CI installs it; a missing zarr fails the test

    a, b = data("float32", (256, 64)), data("float32", (256, 64))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    r = nm.evaluate("a - b", a=str(tmp_path / "a.npy"), b=tmp_path / "b.npy", out=str(tmp_path / "c.npy"))
    same(r, a - b)
    same(np.load(tmp_path / "c.npy"), a - b)
    for comp in [None, "default"]:
        za = tmp_path / f"a{comp}.zarr"
        zb = tmp_path / f"b{comp}.zarr"
        kw = {"compressors": None} if comp is None else {}
        zarr.create_array(za, shape=a.shape, chunks=(64, 64), dtype="float32", **kw)[...] = a
        zarr.create_array(zb, shape=b.shape, chunks=(64, 64), dtype="float32", **kw)[...] = b
        zc = tmp_path / f"c{comp}.zarr"
        nm.evaluate("a + b", out=str(zc), a=str(za), b=str(zb))
        same(zarr.open_array(zc)[...], a + b)
        np.testing.assert_allclose(nm.evaluate("sum(a)", a=str(za)), a.sum(dtype=np.float64), rtol=1e-5)


def test_numpy_memmaps_stream_through_the_crate(tmp_path):
    a = np.memmap(tmp_path / "a.f32", dtype=np.float32, mode="w+", shape=(1000, 100))
    a[:] = data("float32", (1000, 100))
    a.flush()
    c = np.memmap(tmp_path / "c.f32", dtype=np.float32, mode="w+", shape=(1000, 100))
    nm.evaluate("a * a", a=a, out=c)
    same(np.asarray(c), np.asarray(a) * np.asarray(a))
    c.flush()
    same(np.fromfile(tmp_path / "c.f32", dtype=np.float32).reshape(1000, 100), np.asarray(a) ** 2)


def test_in_place(tmp_path):
    a = data("float64", (500,))
    want = a * 2 + 1
    nm.evaluate("a * 2 + 1", a=a, out=a)
    same(a, want)
    m = nm.create(tmp_path / "m.npy", dtype="float64", shape=(500,))
    m[:] = 3.0
    nm.evaluate("m + m", m=m, out=m)
    same(m, np.full(500, 6.0))


def test_the_gil_is_released():
    a = np.ones(8 << 20, dtype=np.float32)
    out = np.empty_like(a)
    ticks = []
    stop = threading.Event()

    def other():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=other)
    t.start()
    try:
        for _ in range(3):
            nm.evaluate("sqrt(a) * 2 + a", a=a, out=out)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 3


def test_an_input_overlapping_the_output_is_read_before_it_is_written():
    x = np.arange(10000.0)
    want = x.copy()
    np.add(want[:-1], 0, out=want[1:])
    nm.evaluate("a + 0", a=x[:-1], out=x[1:])
    same(x, want)
    y = np.arange(10000.0)
    nm.evaluate("a", a=y[:-1], out=y[1:])
    same(y, np.concatenate([[0.0], np.arange(9999.0)]))


def test_one_map_under_two_names_and_a_flush_from_progress(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(1000, dtype=np.float64))
    x = nm.open(tmp_path / "x.npy")
    same(nm.evaluate("a * b", a=x, b=x), np.arange(1000.0) ** 2)
    w = nm.create(tmp_path / "w.npy", dtype="float64", shape=(1000,))
    # A flush of the map being written, from the evaluate's own progress callback: an
    # error, not a thread waiting for itself.
    with pytest.raises(ValueError, match="being written"):
        nm.evaluate("a + 1", a=x, out=w, progress=lambda d, t: nm.flush(w))
    nm.evaluate("a + 1", a=x, out=w)
    nm.flush(w)
    same(np.load(tmp_path / "w.npy"), np.arange(1000.0) + 1)


def test_numpy_rules_at_the_edges():
    u = np.arange(5, dtype=np.uint8)
    same(nm.evaluate("u > 300", u=u), u > 300)
    same(nm.evaluate("u != -1", u=u), u != -1)
    with pytest.raises(OverflowError):
        nm.evaluate("u + 300", u=u)
    with pytest.raises(TypeError, match="same_kind"):
        nm.evaluate("a + 1", a=np.arange(3), out=np.zeros(3, np.uint8))
    same(nm.evaluate("a ** b", a=np.array([-1, 2]), b=np.array([2 ** 33, 3])),
         np.array([-1, 2]) ** np.array([2 ** 33, 3]))
    r = nm.evaluate("a % 2.0", a=np.array([-4.0, 4.0, -3.0]))
    same(r, np.array([-4.0, 4.0, -3.0]) % 2.0)
    assert not np.signbit(r[0])
    x = np.linspace(-1, 1, 11)
    k = 3
    same(nm.evaluate("where(k > 0, x, -x)", x=x), np.where(k > 0, x, -x))
    same(nm.evaluate("x * 1e-3 + e", x=x, e=2), x * 1e-3 + 2)
    with pytest.raises(ValueError, match="negative"):
        nm.evaluate("i ** -1", i=np.arange(5, dtype=np.int8))


def test_a_progress_exception_on_the_last_call_is_raised():
    def boom(done, total):
        raise RuntimeError("from progress")

    with pytest.raises(RuntimeError, match="from progress"):
        nm.evaluate("a + 1", a=np.ones(10), progress=boom)


def test_outputs_that_overlap_themselves_are_refused():
    base = np.zeros(1)
    out = np.lib.stride_tricks.as_strided(base, (5,), (0,))
    with pytest.raises(ValueError, match="overlap"):
        nm.evaluate("a + 1", a=np.ones(5), out=out)
    assert base[0] == 0.0


def test_path_outputs_raw_and_in_place(tmp_path):
    a = data("float32", (100,))
    r = nm.evaluate("a * 2", a=a, out=str(tmp_path / "c.f32"))
    same(np.fromfile(tmp_path / "c.f32", dtype=np.float32), a * 2)
    same(r, a * 2)
    np.save(tmp_path / "x.npy", a)
    nm.evaluate("x * 2", x=str(tmp_path / "x.npy"), out=str(tmp_path / "x.npy"))
    same(np.load(tmp_path / "x.npy"), a * 2)
    nm.evaluate("a > 0", a=a, out=str(tmp_path / "b.npy"))
    same(np.load(tmp_path / "b.npy"), a > 0)


def test_copy_on_write_memmaps_and_byte_swapped_views(tmp_path):
    a = np.arange(100, dtype=np.float64)
    a.tofile(tmp_path / "a.f64")
    m = np.memmap(tmp_path / "a.f64", dtype=np.float64, mode="c")
    m[:] = 5.0  # private to this process
    assert nm.evaluate("sum(m)", m=m) == 500.0
    np.save(tmp_path / "x.npy", a)
    x = nm.open(tmp_path / "x.npy")
    y = x.view(x.dtype.newbyteorder())
    same(nm.evaluate("y + 0", y=y), y + 0)


def test_programs_reused_across_calls_give_each_call_its_own_result():
    # The native side keeps compiled programs by (expression, operand types, result type,
    # block): calls that differ in any of them, or in their data, must not see another's.
    ex = "2*a + 3*b - a*b"
    rng = np.random.default_rng(5)
    for dtype, n in itertools.product(["float32", "float64", "int16", "int64"], [7, 4096, 5000]):
        for _ in range(2):
            a = (rng.random(n) * 50).astype(dtype)
            b = (rng.random(n) * 50).astype(dtype)
            got = nm.evaluate(ex, a=a, b=b)
            want = 2 * a + 3 * b - a * b
            assert got.dtype == want.dtype and np.array_equal(got, want), (dtype, n)
    # A literal changes the program: no stale constant.
    x = np.arange(10, dtype=np.float32)
    for k in (2, 5, 2.5):
        assert np.array_equal(nm.evaluate("x * k", x=x, k=k), x * np.float32(k))
    # The same expression evaluated from inside its own progress callback (nested).
    a = np.arange(1 << 20, dtype=np.float64)
    inner = []

    def progress(done, total):
        if not inner:
            inner.append(nm.evaluate("a * 2 + 1", a=a[:100]))

    out = nm.evaluate("a * 2 + 1", a=a, progress=progress)
    assert np.array_equal(out, a * 2 + 1)
    assert np.array_equal(inner[0], a[:100] * 2 + 1)


def test_views_strided_readonly_and_byteswapped_arrays_are_read_right():
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    cases = [base[::2, 1::3], base.T, base[1:, :], np.asfortranarray(base)]
    ro = base.copy()
    ro.flags.writeable = False
    cases.append(ro)
    cases.append(base.astype(">f8"))  # not native: copied first
    for v in cases:
        assert np.array_equal(nm.evaluate("v * 3", v=v), v * 3)
    out = np.zeros_like(base)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        nm.evaluate("v * 3", out=out, v=base)
