"""What an adversary tried against the package (session 12): each case was a crash, a hang,
a wrong result, a file changed by a failed call, or a vague error before its fix."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ndarray_mmap as nm


def in_a_child(code):
    """Runs ``code`` in a new Python: a crash (a signal) fails the test that runs it, not the
    whole session."""
    r = subprocess.run([sys.executable, "-c", code + "print('ok')\n"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])


def test_an_expression_nesting_past_the_limit_is_an_error_not_a_crash():
    # 20 000 terms or parentheses overflowed the stack (SIGSEGV); run in a child process so
    # that a crash fails this test and not the whole session.
    code = (
        "import numpy as np, ndarray_mmap as nm\n"
        "e = 'a'\n"
        "for _ in range(20):\n"
        "    e = '(' + e + '+a' * 900 + ')'\n"  # each chain under the limit, the tree not
        "for ex in ['+'.join(['a'] * 20000), '(' * 20000 + 'a' + ')' * 20000,\n"
        "           '-' * 100000 + 'a', 'abs(' * 5000 + 'a' + ')' * 5000, e]:\n"
        "    try:\n"
        "        nm.evaluate(ex, a=np.ones(3))\n"
        "    except ValueError as e:\n"
        "        assert 'nests deeper than 1000' in str(e), e\n"
        "    else:\n"
        "        raise SystemExit('no error for ' + ex[:20])\n"
    )
    in_a_child(code)
    # Within the limit, a long chain still evaluates, on a thread of 2 MiB of stack too.
    a = np.arange(5.0)
    np.testing.assert_array_equal(nm.evaluate("+".join(["a"] * 900), a=a), a * 900)
    got = []
    old = threading.stack_size(2 << 20)
    try:
        t = threading.Thread(target=lambda: got.append(
            nm.evaluate("-" * 990 + "a" + "+a" * 5, a=a)))
        t.start()
        t.join()
    finally:
        threading.stack_size(old)
    np.testing.assert_array_equal(got[0], a * 6)  # an even number of minus signs


def test_nested_exact_comparisons_cost_what_numpy_does():
    # Each exact comparison computed its operand twice: 20 nested ones took 2**20 copies
    # (seconds at 16, an abort for memory at 20).
    code = (
        "import numpy as np, ndarray_mmap as nm\n"
        "a = np.arange(8, dtype=np.int64); u = np.arange(8, dtype=np.uint64) + 3\n"
        "for cmp in ['< u', '< 2**70']:\n"
        "    e = 'a'\n"
        "    for _ in range(24):\n"
        "        e = f'(({e}) {cmp}) + 0'\n"
        "    got = nm.evaluate(e, a=a, u=u)\n"
        "    want = eval(e.replace('2**70', '(2**70)'), {'a': a, 'u': u})\n"
        "    assert got.dtype == want.dtype and (got == want).all(), (got, want)\n"
    )
    in_a_child(code)


def test_two_threads_over_the_same_maps_in_opposite_orders_finish(tmp_path):
    x = nm.create(str(tmp_path / "x.npy"), "f8", (64,))
    y = nm.create(str(tmp_path / "y.npy"), "f8", (64,))
    x[:] = 1
    y[:] = 2
    errors = []

    def work(p, q):
        o = np.empty(64)
        end = time.monotonic() + 5  # the calls met in the lock window after ~14 000 each
        try:
            while time.monotonic() < end:
                nm.evaluate("p + q", out=o, p=p, q=q)
            assert (o == 3).all()
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    ts = [threading.Thread(target=work, args=(x, y), daemon=True),
          threading.Thread(target=work, args=(y, x), daemon=True)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts), "the two calls wait on each other"
    assert errors == []


def test_an_input_that_is_another_view_of_the_outputs_file_is_refused(tmp_path):
    n = 600  # 2.9 MB: more than one chunk of the engine's
    p = tmp_path / "m.bin"
    np.arange(n * n, dtype="f8").tofile(p)
    before = p.read_bytes()
    m = np.memmap(p, dtype="f8", mode="r+", shape=(n, n))
    m2 = np.memmap(p, dtype="f8", mode="r", shape=(n, n))  # another map of the file
    for out, b in [(m, m2.T), (m.T, m2), (m[1:], m2[:-1])]:
        with pytest.raises(ValueError, match="through another view"):
            nm.evaluate("b + 1", out=out, b=b)
    q = tmp_path / "p.npy"
    np.save(q, np.arange(n * n, dtype="f8").reshape(n, n))
    with pytest.raises(ValueError, match="another view"):
        nm.evaluate("b + 1", out=str(q), b=np.load(q, mmap_mode="r").T)
    with pytest.raises(ValueError, match="another view"):
        nm.evaluate("b + 1", out=nm.open(q, mode="r+"), b=np.load(q, mmap_mode="r").T)
    c = np.memmap(p, dtype="f8", mode="c", shape=(n, n))
    c[:] = 5  # its own memory now
    with pytest.raises(ValueError, match="through another view"):
        nm.evaluate("b + 1", out=m, b=c)
    del m, m2, c
    assert p.read_bytes() == before
    # The output's own view, or the same bytes mapped twice, is read in place.
    m = np.memmap(p, dtype="f8", mode="r+", shape=(n, n))
    nm.evaluate("b + 1", out=m, b=m)
    m2 = np.memmap(p, dtype="f8", mode="r", shape=(n, n))
    nm.evaluate("b * 2", out=m, b=m2)
    m.flush()
    want = (np.arange(n * n, dtype="f8").reshape(n, n) + 1) * 2
    np.testing.assert_array_equal(np.fromfile(p, "f8").reshape(n, n), want)
    # Views of the output's own memory are read as numpy reads them: copied first.
    for out, b in [(m[1:], m[:-1]), (m, m.T), (m, m[::-1])]:
        want = np.array(b) + 1
        nm.evaluate("b + 1", out=out, b=b)
        np.testing.assert_array_equal(out, want)
    # The same bytes through two kinds of map, and bytes the output does not write.
    q = tmp_path / "q.npy"
    np.save(q, np.arange(1000.0))
    w = nm.open(q, mode="r+")
    nm.evaluate("x * 2", out=w, x=nm.open(q))
    nm.evaluate("x + 1", out=w[:500], x=np.load(q, mmap_mode="r")[500:])
    want = np.arange(1000.0) * 2
    want[:500] = want[500:] + 1
    np.testing.assert_array_equal(np.load(q), want)


def test_an_output_path_that_an_input_reads_at_another_offset_is_refused(tmp_path):
    p = tmp_path / "xo.bin"
    np.arange(8, dtype="f4").tofile(p)
    before = p.read_bytes()
    x = nm.open(p, dtype="f4", shape=(4,), offset=16)
    with pytest.raises(ValueError, match="another view of the file"):
        nm.evaluate("x * 2", out=str(p), x=x)
    c = nm.open(p, dtype="f4", mode="c")
    c[:] = 5  # its own memory: the file still holds 0..7
    with pytest.raises(ValueError, match="another view of the file"):
        nm.evaluate("c + 1", out=str(p), c=c)
    h = nm.open(p, dtype="i2", shape=(2,))
    with pytest.raises(ValueError, match="another view of the file"):
        # int16 read, int32 written over it: its bytes were read as int32
        nm.evaluate("h + i", out=str(p), h=h, i=np.ones(2, np.int32))
    del x, h, c
    assert p.read_bytes() == before
    # The whole file, same type: in place.
    w = nm.open(p, dtype="f4", shape=(8,))
    nm.evaluate("w * 2", out=str(p), w=w)
    np.testing.assert_array_equal(np.fromfile(p, "f4"), np.arange(8, dtype="f4") * 2)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_integer_comparisons_are_exact_as_numpys(op):
    i = np.array([2**62 + 1, 2**62, -1, 0, 2**63 - 1, -2**63], np.int64)
    u = np.array([2**62, 2**62 + 1, 2**64 - 1, 0, 2**63, 2**63], np.uint64)
    for a, b in [(i, u), (u, i), (i.astype(np.int8), u), (u, i.astype(np.int16))]:
        want = eval(f"a {op} b")
        np.testing.assert_array_equal(nm.evaluate(f"a {op} b", a=a, b=b), want)
    # Python integers beyond the array type: every element gets numpy's one answer.
    for a, v in [(i, 2**63), (i, -2**63 - 1), (u, 2**64), (u, -1),
                 (np.array([5, -3], np.int8), 1000), (np.array([5], np.uint16), -70000)]:
        for ex, want in [(f"a {op} {v}", eval(f"a {op} v")),
                         (f"{v} {op} a", eval(f"v {op} a"))]:
            np.testing.assert_array_equal(nm.evaluate(ex, a=a), want)


def test_literals_that_overflow_are_an_error_not_a_wrapped_value():
    a = np.zeros(2)
    for ex in ["a + (170141183460469231731687303715884105727 + 1)",
               "a + -(-170141183460469231731687303715884105727 - 1)",
               "a + (-170141183460469231731687303715884105727 - 2)"]:
        with pytest.raises(ValueError, match="overflow"):
            nm.evaluate(ex, a=a)


def test_true_division_by_any_python_integer_is_numpys():
    for dt, v in [("uint8", 256), ("int8", 128), ("uint16", -1), ("int64", 2**63), ("int32", 7)]:
        a = np.array([0, 1, 100], dt)
        want = a / v
        got = nm.evaluate("a / x", a=a, x=v)
        assert got.dtype == want.dtype == np.float64
        np.testing.assert_array_equal(got, want)


def test_arguments_of_the_wrong_kind_are_refused_before_anything_is_written(tmp_path):
    a = np.ones(4)
    with pytest.raises(TypeError, match="out must be"):
        nm.evaluate("a + 1", out=[0.0] * 4, a=a)
    with pytest.raises(TypeError, match="out must be"):
        nm.evaluate("a + 1", out=(a,), a=a)
    for progress in (5, "x"):
        with pytest.raises(TypeError, match="progress must be a callable"):
            nm.evaluate("a + 1", out=str(tmp_path / "new.npy"), a=a, progress=progress)
    assert not (tmp_path / "new.npy").exists()
    d = tmp_path / "userdir"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a Zarr array"):
        nm.evaluate("a + 1", out=str(d), a=a)
    assert sorted(os.listdir(d)) == ["notes.txt"]


def test_a_failed_call_leaves_no_output_it_created(tmp_path):
    a = np.full(100_000, 2, np.int32)
    b = np.ones(100_000, np.int32)
    b[-1] = -1  # found while running: numpy's ValueError
    for out in ["new.npy", "new.zarr"]:
        with pytest.raises(ValueError, match="negative integer powers"):
            nm.evaluate("a ** b", out=str(tmp_path / out), a=a, b=b)
        assert not (tmp_path / out).exists()
    # A relative path, the working directory changed meanwhile (by the progress callback):
    # what the call made goes, and nothing of the same name elsewhere.
    (tmp_path / "work").mkdir()
    (tmp_path / "other" / "sub").mkdir(parents=True)
    (tmp_path / "other" / "sub" / "o.npy").write_bytes(b"mine")
    here = os.getcwd()
    os.chdir(tmp_path / "work")
    try:
        with pytest.raises(ValueError, match="negative integer powers"):
            nm.evaluate("a ** b", out="sub/deeper/o.zarr", a=a, b=b,
                        progress=lambda d, t: os.chdir(tmp_path / "other"))
    finally:
        os.chdir(here)
    assert os.listdir(tmp_path / "work") == []
    assert (tmp_path / "other" / "sub" / "o.npy").read_bytes() == b"mine"
    keep = tmp_path / "empty.zarr"
    keep.mkdir()
    with pytest.raises(ValueError, match="negative integer powers"):
        nm.evaluate("a ** b", out=str(keep), a=a, b=b)
    assert keep.is_dir() and os.listdir(keep) == []


def test_odd_but_valid_operands_and_outputs(tmp_path):
    buf = bytearray(8 * 10 + 1)
    x = np.frombuffer(buf, "f8", count=10, offset=1)  # contiguous, misaligned
    x_vals = np.arange(10.0)
    np.frombuffer(buf, "u1")[1:] = x_vals.view("u1")
    np.testing.assert_array_equal(nm.evaluate("x * 2", x=x), x_vals * 2)
    e = nm.create(str(tmp_path / "e.npy"), "f4", (0, 4))  # empty: its strides may be 0
    nm.evaluate("a + 1", out=e, a=np.ones((0, 4), "f4"))
    assert e.shape == (0, 4)


def test_shapes_that_are_not_lengths_are_named(tmp_path):
    p = str(tmp_path / "s.npy")
    with pytest.raises(TypeError, match="axis 0 of the shape .* is 2.9, not an integer"):
        nm.create(p, "f4", (2.9, 3))
    with pytest.raises(ValueError, match=r"s\.npy: axis 1 of the shape .* is -3"):
        nm.create(p, "f4", (2, -3))
    with pytest.raises(ValueError, match="longer than any file"):
        nm.create(p, "f4", (2**63,))
    assert not os.path.exists(p)
    raw = tmp_path / "r.bin"
    raw.write_bytes(bytes(24))
    with pytest.raises(TypeError, match="not an integer"):
        nm.open(raw, dtype="f4", shape=(1.9, 3))
    with pytest.raises(ValueError, match="before the file's start"):
        nm.open(raw, dtype="f4", offset=-4)
    assert nm.open(raw, dtype="f4", shape=(-1, 3)).shape == (2, 3)


def test_arctan2_computes_in_numpys_loop_type():
    for x, y in [("int8", "uint16"), ("int16", "uint16"), ("uint16", "float32"),
                 ("int32", "float32"), ("float32", "float32"), ("int16", "int16")]:
        a = np.arange(1, 6).astype(x)
        b = np.arange(2, 7).astype(y)
        got = nm.evaluate("arctan2(a, b)", a=a, b=b)
        assert got.dtype == np.arctan2(a, b).dtype, (x, y, got.dtype)
    with pytest.raises(TypeError, match="float16"):
        nm.evaluate("arctan2(a, b)", a=np.ones(2, "int8"), b=np.ones(2, "uint8"))


def test_scalars_go_in_as_their_numbers(tmp_path):
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    class Sneaky(float):
        def __repr__(self):
            return "b"

    a = np.arange(4.0)
    np.testing.assert_array_equal(nm.evaluate("a * k", a=a, k=Level.HIGH), a * 3)
    np.testing.assert_array_equal(nm.evaluate("a + s", a=a, s=Sneaky(0.5)), a + 0.5)
    # A scalar named like a function stays a function where it is called.
    np.testing.assert_array_equal(nm.evaluate("sqrt(a) + sqrt", a=a, sqrt=1.0), np.sqrt(a) + 1)


def test_bool_bytes_other_than_0_and_1_are_true():
    # Written by another tool (0xFF for true): compared as numpy compares them.
    bb = np.array([0, 5, 255, 1], np.uint8).view(bool)
    t = np.array([True, True, True, False])
    for op in ["==", "!=", "<", ">", "<=", ">="]:
        np.testing.assert_array_equal(nm.evaluate(f"bb {op} t", bb=bb, t=t), eval(f"bb {op} t"))
    np.testing.assert_array_equal(nm.evaluate("where(bb, 1, 0)", bb=bb), np.where(bb, 1, 0))
    np.testing.assert_array_equal(nm.evaluate("bb + 0", bb=bb), bb + 0)
