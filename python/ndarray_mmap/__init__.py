"""Memory-mapped files as numpy arrays, and numexpr's ``evaluate`` on ndarray-mmap's engine.

>>> import numpy as np, ndarray_mmap as nm
>>> a = nm.create("a.npy", dtype="float32", shape=(1000, 1000))   # new .npy, atomic, mapped
>>> a[:] = 1.5
>>> b = nm.open("a.npy")                                           # numpy array over the map
>>> nm.evaluate("2*a + 1", a=b, out="c.npy")                       # streamed, bounded memory
>>> float(nm.evaluate("sum(c)", c="c.npy"))
4000000.0

``open`` and ``create`` return ordinary ``numpy.ndarray`` objects whose memory is the file's
(no copy): pages load on demand and writes reach the file. ``evaluate`` parses numexpr's
language, types it by numpy's rules (NEP 50: Python scalars are weak) and runs it in one
pass over its operands, chunk by chunk, with the GIL released; operands and outputs may be
numpy arrays, maps, ``numpy.memmap`` objects, or paths of ``.npy`` files and Zarr v3 arrays.
"""

import mmap as _mmap
import operator as _operator
import os as _os
import re as _re
import sys as _sys
import json as _json

import numpy as _np

from . import _native

__all__ = ["open", "create", "evaluate", "flush", "Map"]

Map = _native.Map


def _dtype_name(dtype):
    d = _np.dtype(dtype)
    if not d.isnative:
        raise TypeError(f"dtype {d.str!r} is not in this machine's byte order")
    return d.name


def _shape(shape, path, minus_one=False):
    """``shape`` as a tuple of ints: an axis that is not an integer (2.5, "3") or is
    negative (but for one -1 where ``minus_one``) is a ``TypeError``/``ValueError`` naming
    the path and the axis."""
    if shape is None:
        return None
    if isinstance(shape, (int, _np.integer)):
        shape = (shape,)
    out = []
    for k, s in enumerate(shape):
        try:
            n = _operator.index(s)
        except TypeError:
            raise TypeError(f"{path}: axis {k} of the shape {shape!r} is {s!r}, not an "
                            "integer") from None
        if n < 0 and not (minus_one and n == -1):
            raise ValueError(f"{path}: axis {k} of the shape {shape!r} is {n}"
                             + (" (-1 alone stands for the rest of the file)" if minus_one
                                else ", not a length"))
        if n > _sys.maxsize:
            raise ValueError(f"{path}: axis {k} of the shape {shape!r} is {n}, longer than "
                             "any file")
        out.append(n)
    return tuple(out)


def open(path, dtype=None, shape=None, mode="r", offset=0, order="C"):
    """Maps ``path`` and returns a numpy array over it (no copy).

    A ``.npy`` file gives its own dtype, shape and order; a raw file needs ``dtype``, and
    ``shape`` (one axis may be -1; the default is one axis over the whole file). ``mode``:
    ``"r"`` read-only (the array is not writeable), ``"r+"`` writes reach the file, ``"c"``
    copy-on-write. Every type the crate maps maps here: bool, the integers, float16,
    float32, float64, complex64 and complex128. Errors are ``OSError`` (the file),
    ``ValueError`` (its contents or the shape) and ``TypeError`` (the dtype), with the
    crate's message.
    """
    path = _os.fspath(path)
    offset = _operator.index(offset)
    if offset < 0:
        raise ValueError(f"{path}: offset {offset} is before the file's start")
    m = _native.open(
        path,
        None if dtype is None else _dtype_name(dtype),
        _shape(shape, path, minus_one=True),
        mode,
        offset,
        order,
    )
    return _np.asarray(m)


def create(path, dtype, shape, order="C"):
    """Creates ``path`` (``.npy`` when it ends so, else raw) of ``dtype`` and ``shape``,
    zero-filled, atomically (a crash leaves the old file or none), its disk space
    reserved; returns a writeable numpy array over it."""
    path = _os.fspath(path)
    m = _native.create(path, _dtype_name(dtype), _shape(shape, path), order)
    return _np.asarray(m)


def _map_of(a):
    """The ``Map`` whose whole memory ``a`` is, or None."""
    b = a
    while b is not None:
        if isinstance(b, _native.Map):
            i = b.__array_interface__
            ai = a.__array_interface__
            same = (
                ai["data"][0] == i["data"][0]
                and tuple(a.shape) == tuple(i["shape"])
                and tuple(a.strides) == tuple(i["strides"])
                and a.dtype == _np.dtype(i["typestr"])
            )
            return b if same else None
        b = getattr(b, "base", None)
    return None


def flush(a):
    """Writes the changes of an array made by ``open``/``create`` to the disk."""
    m = _map_of(a)
    if m is None:
        raise ValueError("not an array made by ndarray_mmap.open or create")
    m.flush()


def _zarr_meta(path):
    p = _os.path.join(_os.fspath(path), "zarr.json")
    with _builtin_open(p, "rb") as f:
        meta = _json.load(f)
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "array":
        raise ValueError(f"{path}: not a Zarr v3 array")
    return meta


_builtin_open = __builtins__["open"] if isinstance(__builtins__, dict) else __builtins__.open


class _Operand:
    """An operand as the native side takes it, with what keeps its memory alive."""

    __slots__ = ("desc", "dtype", "shape", "keep", "chunks", "compressor")

    def __init__(self, desc, dtype, shape, keep=None, chunks=None, compressor=None):
        self.desc = desc
        self.dtype = dtype
        self.shape = tuple(shape)
        self.keep = keep
        self.chunks = chunks
        self.compressor = compressor


def _chunk_shape(meta):
    """The chunk shape of a Zarr v3 array's metadata: a sharded array's inner chunks (the
    unit it is read and written in), not its shards."""
    shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
    for c in meta.get("codecs", []):
        if c.get("name") == "sharding_indexed":
            shape = c["configuration"]["chunk_shape"]
            break
    return tuple(shape)


def _inner_codecs(meta):
    """A Zarr v3 array's codecs, with those of its shards' inner chunks after them."""
    codecs = list(meta.get("codecs", []))
    for c in meta.get("codecs", []):
        if c.get("name") == "sharding_indexed":
            codecs += c.get("configuration", {}).get("codecs", [])
    return codecs


def _compressor_of(meta):
    """The compressor a new output takes after an input: the input's zstd or gzip (in its
    shards too) at its level; zarr-python's default (zstd, level 0) for another one (blosc,
    ...); None for an uncompressed input."""
    codecs = _inner_codecs(meta)
    for c in codecs:
        if c.get("name") in ("zstd", "gzip"):
            return c["name"], int(c.get("configuration", {}).get("level", 0))
    if any(c.get("name") not in ("bytes", "transpose", "crc32c", "sharding_indexed")
           for c in codecs):
        return "zstd", 0
    return None


def _sharded_output_problem(meta):
    """Why chunks of this sharded array cannot be written one by one, or None: its shards
    are written in place, so their inner chunks must be uncompressed, and not sharded
    again."""
    for c in meta.get("codecs", []):
        if c.get("name") != "sharding_indexed":
            continue
        inner = c.get("configuration", {}).get("codecs", [])
        if any(i.get("name") == "sharding_indexed" for i in inner):
            return "its shards are sharded again (nested sharding is not supported)"
        coded = [i.get("name") for i in inner if i.get("name") not in ("bytes", "transpose")]
        if coded:
            return (f"its shards' inner chunks are coded ({', '.join(map(str, coded))}): shards "
                    "are written in place, so only uncompressed ones can be written chunk by "
                    "chunk (write the output without shards)")
    return None


_DT_NAMES = {}


def _dt_name(dt):
    """``dt.name``, cached (numpy computes it in Python at each call)."""
    n = _DT_NAMES.get(dt)
    if n is None:
        n = _DT_NAMES[dt] = dt.name
    return n


# Types ``open`` and ``create`` map but ``evaluate`` does not compute in.
_MAPPED_ONLY = frozenset(["float16", "complex64", "complex128"])


def _computed(dt, what):
    """A ``TypeError`` naming ``what`` when ``evaluate`` does not compute in ``dt``."""
    if dt.name in _MAPPED_ONLY:
        raise TypeError(f"{what} holds {dt.name}, which ndarray_mmap maps but evaluate does "
                        "not compute in (bool, int8..int64, uint8..uint64, float32, float64)")


def _operand(v, name, write=False):
    if type(v) is _np.ndarray and v.base is None:
        # An array that owns its memory (the common small case): contiguous, no map behind.
        dt = v.dtype
        if dt.isnative and v.flags.aligned and (not write or v.flags.writeable):
            n = _dt_name(dt)
            # numpy's array interface as a C struct (a capsule): building the
            # __array_interface__ dict would cost more than a small evaluate's work.
            return _Operand(("struct", v.__array_struct__, n), n, v.shape, keep=v)
    if isinstance(v, (str, _os.PathLike)):
        p = _os.fspath(v)
        if _os.path.isdir(p):
            meta = _zarr_meta(p)
            dt = _np.dtype(meta["data_type"]).name
            return _Operand(("zarr", p, dt), dt, meta["shape"], chunks=_chunk_shape(meta),
                            compressor=_compressor_of(meta))
        m = _native.open(p, None, None, "r+" if write else "r", 0, "C")
        a = _np.asarray(m)
        _computed(a.dtype, f"{name} ({p})")
        return _Operand(("map", m), a.dtype.name, a.shape, keep=a)
    if isinstance(v, _native.Map):
        v = _np.asarray(v)
    if isinstance(v, (bool, int, float)) and not isinstance(v, _np.generic):
        raise AssertionError("scalars are substituted before")
    a = v if isinstance(v, _np.ndarray) else _np.asarray(v)
    if write and not a.flags.writeable:
        raise ValueError(f"{name}: the output is not writeable")
    if write and _self_overlapping(a):
        raise ValueError(f"{name}: the output's elements overlap (a zero or overlapping "
                         "stride): each element must be written once")
    m = _map_of(a)
    if m is not None:
        _computed(a.dtype, f"{name} ({m.path})")
        return _Operand(("map", m), a.dtype.name, a.shape, keep=a)
    # A whole numpy.memmap: mapped again by the crate, which streams it (read-ahead, and
    # pages dropped behind the stream when they do not fit).
    if (isinstance(a, _np.memmap) and isinstance(a.base, _mmap.mmap) and a.filename
            and getattr(a, "mode", None) in ("r", "r+", "w+", "readonly", "readwrite", "write")
            and a.dtype.isnative and a.size > 0 and (a.flags.c_contiguous or a.flags.f_contiguous)):
        order = "C" if a.flags.c_contiguous else "F"
        npy = _os.fspath(a.filename).lower().endswith(".npy")
        try:
            # A .npy file's header gives its layout (numpy's offset is the header's length).
            m = _native.open(_os.fspath(a.filename), a.dtype.name, None if npy else a.shape,
                             "r+" if write else "r", 0 if npy else int(a.offset), order)
            mi = m.__array_interface__
            if tuple(mi["shape"]) == a.shape and _np.dtype(mi["typestr"]) == a.dtype:
                return _Operand(("map", m), a.dtype.name, a.shape, keep=(a, m))
        except (OSError, ValueError, TypeError):
            pass  # (locked, or changed since): read the memory numpy maps
    if (not a.flags.aligned or not a.dtype.isnative
            or any(s < 0 or s % a.itemsize for s in a.strides)):
        if write:
            raise ValueError(f"{name}: the output must be aligned, in native byte order, "
                             "with non-negative strides")
        # (a copy: ascontiguousarray would keep a contiguous array that is misaligned)
        a = _np.array(a, dtype=a.dtype.newbyteorder("="), order="C", copy=True)
    n = _dt_name(a.dtype)
    return _Operand(("struct", a.__array_struct__, n), n, a.shape, keep=a)


# Numbers first, so that the exponent of `1e-3` is never taken for a name `e`.
_TOKEN = _re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[A-Za-z_][A-Za-z0-9_]*")

# Parsed names and result types by expression (and operand types), as numexpr caches its
# compiled programs: a call on small arrays is then mostly the native call itself.
def _self_overlapping(a):
    """Whether two indices of ``a`` reach the same bytes (a broadcast or as_strided view)."""
    if a.size == 0:
        return False  # (an empty map's strides may be 0)
    axes = sorted((abs(st), n) for n, st in zip(a.shape, a.strides) if n > 1)
    reach = a.itemsize
    for st, n in axes:
        if st < reach:
            return True
        reach = st * n
    return False


_NAMES = {}
_TYPES = {}


def _names(ex):
    n = _NAMES.get(ex)
    if n is None:
        n = _native.names(ex)
        if len(_NAMES) > 256:
            _NAMES.clear()
        _NAMES[ex] = n
    return n


def _result_type(ex, dtypes):
    key = (ex, tuple(dtypes))
    r = _TYPES.get(key)
    if r is None:
        r = _native.result_type(ex, list(dtypes))
        if len(_TYPES) > 256:
            _TYPES.clear()
        _TYPES[key] = r
    return r


def _substitute(ex, scalars):
    """Python scalars go into the expression as literals: weak, as numpy treats them."""
    def repl(m):
        w = m.group(0)
        if w in scalars and not ex[m.end():].lstrip().startswith("("):  # (not a call)
            v = scalars[w]
            if isinstance(v, bool):
                return "True" if v else "False"
            # The number's own text (an int or float subclass's repr may be anything).
            return f"({int(v)!r})" if isinstance(v, int) else f"({float(v)!r})"
        return w
    return _TOKEN.sub(repl, ex)


def evaluate(ex, out=None, progress=None, local_dict=None, global_dict=None, **operands):
    """Evaluates the numexpr expression ``ex`` in one streamed pass.

    Operands come by name from the keyword arguments (else ``local_dict``/``global_dict``,
    else the caller's variables): numpy arrays (memmaps too), arrays made by ``open`` and
    ``create``, paths of ``.npy`` files and Zarr v3 arrays, and Python scalars. Elementwise
    expressions write into ``out`` (an array, or a path: a new ``.npy`` file or a Zarr array,
    created when missing) or return a new array; reductions (``sum``, ``mean``, ``min``,
    ``max``, whole or ``axis=k``) return numpy's result. ``progress(done, total)`` is
    called between chunks (bytes); Ctrl-C stops there with ``KeyboardInterrupt``.
    """
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable progress(done, total), not "
                        f"{type(progress).__name__}")
    if out is not None and not isinstance(out, (str, _os.PathLike, _np.ndarray, _native.Map)):
        raise TypeError(f"out must be a numpy array, a map or a path (.npy, Zarr), not "
                        f"{type(out).__name__}")
    names = _names(ex)
    frame = None
    values = {}
    for n in names:
        if n in operands:
            values[n] = operands[n]
            continue
        if local_dict is not None and n in local_dict:
            values[n] = local_dict[n]
            continue
        if global_dict is not None and n in global_dict:
            values[n] = global_dict[n]
            continue
        if frame is None:
            frame = _sys._getframe(1)
        if n in frame.f_locals:
            values[n] = frame.f_locals[n]
        elif n in frame.f_globals:
            values[n] = frame.f_globals[n]
        else:
            raise ValueError(f"name {n!r} in {ex!r} is not defined (pass it as {n}=...)")
    scalars = {n: v for n, v in values.items()
               if isinstance(v, (bool, int, float)) and not isinstance(v, _np.generic)}
    if scalars:
        ex = _substitute(ex, scalars)
        names = _names(ex)
    if out is not None and not isinstance(out, (str, _os.PathLike)):
        values.update(_check_views_of_out(out, {n: values[n] for n in names}))
    ops = [_operand(values[n], n) for n in names]
    rdt, reduce, axis = _result_type(ex, [o.dtype for o in ops])
    try:
        shapes = [o.shape for o in ops]
        if shapes and all(sh == shapes[0] for sh in shapes):
            shape = tuple(shapes[0])
        else:
            shape = tuple(_np.broadcast_shapes(*shapes)) if shapes else ()
    except ValueError as e:
        raise ValueError(f"{ex!r}: the operands' shapes {[o.shape for o in ops]} do not "
                         f"broadcast ({e})") from None
    descs = [o.desc for o in ops]
    if reduce is not None:
        if out is not None:
            raise ValueError("a reduction returns its result: out must be None")
        if axis is not None and not -len(shape) <= axis < len(shape):
            raise _np.exceptions.AxisError(axis, len(shape))
        n = int(_np.prod(shape)) if axis is None else shape[axis if axis >= 0 else axis + len(shape)]
        if reduce in ("min", "max") and n == 0:
            raise ValueError(f"zero-size array to reduction operation "
                             f"{'minimum' if reduce == 'min' else 'maximum'} which has no identity")
        data, rshape, dt = _native.evaluate(ex, descs, list(shape), None, None, progress)
        r = _np.frombuffer(data, dtype=dt).reshape(rshape).copy()
        return r[()] if axis is None else r
    result = None
    made = None  # (path, a directory that was there before): what a failed call removes
    if out is None:
        result = _np.empty(shape, dtype=rdt)
        target = _operand(result, "out", write=True)
    elif isinstance(out, (str, _os.PathLike)):
        p = _os.fspath(out)
        if p.endswith(".npy") or not (p.endswith(".zarr") or _os.path.isdir(p)):
            npy = p.lower().endswith(".npy")
            # An input that is this file: let its read-only map go, and read it through
            # the output's (in place) when it is the same view of the file as the output
            # will be; another view of it would be read while it is written: refused.
            same = []
            if _os.path.exists(p):
                for i, n in enumerate(names):
                    f = _file_of(values[n])
                    if f is None or not _same_file(f, p):
                        continue
                    o = ops[i]
                    a = _np.asarray(o.desc[1]) if o.desc[0] == "map" \
                        and not o.desc[1].copy_on_write else None
                    whole = a is not None and (npy or (
                        a.dtype == _np.dtype(rdt) and a.flags.c_contiguous
                        and a.nbytes == _os.path.getsize(p)))
                    if not whole or tuple(a.shape) != shape:
                        raise ValueError(
                            f"{n} reads {p}, the output, through another view of the file "
                            "(another offset, dtype, shape or order): it would be read while "
                            f"it is written (copy it first: numpy.array({n}))")
                    same.append(i)
            for i in same:
                ops[i] = descs[i] = None
            if not _os.path.exists(p):
                made = (_os.path.abspath(p), False)
            if _os.path.exists(p):
                m = _native.open(p, None if npy else rdt, None if npy else shape, "r+", 0, "C")
            elif npy and rdt == "bool":
                _np.lib.format.open_memmap(p, mode="w+", dtype=rdt, shape=shape).flush()
                m = _native.open(p, None, None, "r+", 0, "C")
            else:
                m = _native.create(p, rdt, shape, "C")
            result = _np.asarray(m)
            target = _Operand(("map", m), result.dtype.name, result.shape, keep=result)
            for i in same:
                ops[i] = _Operand(("map", m), result.dtype.name, result.shape, keep=result)
                descs[i] = ops[i].desc
        else:
            if _os.path.isdir(p) and not _os.path.exists(_os.path.join(p, "zarr.json")) \
                    and _os.listdir(p):
                raise ValueError(f"{p}: a directory that is not a Zarr array (no zarr.json) "
                                 "and not empty: give a new path for the output")
            if not _os.path.exists(_os.path.join(p, "zarr.json")):
                top = _os.path.abspath(p)
                if _os.path.isdir(top):
                    made = (top, True)  # an empty directory given: emptied again
                else:
                    # The first of its directories missing (the create makes the parents).
                    while not _os.path.exists(_os.path.dirname(top)):
                        top = _os.path.dirname(top)
                    made = (top, False)
                z = next((o for o in ops if o.chunks is not None), None)
                chunks = z.chunks if z is not None and len(z.chunks) == len(shape) else \
                    _default_chunks(shape, _np.dtype(rdt).itemsize)
                comp = z.compressor if z is not None else ("zstd", 0)
                _native.zarr_create(p, rdt, list(shape), list(chunks),
                                    None if comp is None else comp[0],
                                    0 if comp is None else comp[1])
            target = _operand(p, "out", write=True)
            result = None
    else:
        target = _operand(out, "out", write=True)
        result = out
    try:
        _run(ex, ops, descs, shape, out, target, progress)
    except BaseException:
        # A failed call (an error, Ctrl-C) leaves no output it created, half written.
        if made is not None:
            del result, target
            _remove_made(*made)
        raise
    return result


def _remove_made(path, was_dir):
    import shutil
    if not was_dir and not _os.path.isdir(path):
        try:
            _os.remove(path)
        except OSError:
            pass
        return
    if not was_dir:
        shutil.rmtree(path, ignore_errors=True)
        return
    # An empty directory given as the output: empty again.
    for name in _os.listdir(path):
        q = _os.path.join(path, name)
        if _os.path.isdir(q) and not _os.path.islink(q):
            shutil.rmtree(q, ignore_errors=True)
        else:
            try:
                _os.remove(q)
            except OSError:
                pass


def _run(ex, ops, descs, shape, out, target, progress):
    """The elementwise evaluate's last checks and its run into ``target``."""
    if tuple(target.shape) != shape:
        try:
            ok = tuple(_np.broadcast_shapes(target.shape, shape)) == target.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{ex!r}: the output's shape {target.shape} is not the operands' "
                             f"broadcast shape {shape}")
        shape = target.shape
    # An input over the output's memory that is not a map the engine checks: copied
    # first (numpy's rule: the result is as if every input were read before any write).
    # (A result made here above shares memory with nothing.)
    if out is not None and target.desc[0] == "struct":
        o_arr = target.keep
        for i, o in enumerate(ops):
            if o.desc[0] == "struct" and _np.may_share_memory(o.keep, o_arr):
                c = _np.array(o.keep, copy=True)
                ops[i] = _Operand(("struct", c.__array_struct__, _dt_name(c.dtype)),
                                  c.dtype.name, c.shape, keep=c)
                descs[i] = ops[i].desc
    # An input that is the output's own map is read through its memory (in place).
    for i, o in enumerate(ops):
        if o.desc[0] == "map" and target.desc[0] == "map" and o.desc[1] is target.desc[1]:
            a = _np.asarray(o.desc[1])
            descs[i] = ("struct", a.__array_struct__, _dt_name(a.dtype))
            o.keep = (o.keep, a)
    _native.evaluate(ex, descs, list(shape), target.desc, None, progress)


def _file_of(v):
    """The file a numpy array (or map, or path) reads, when it is one: a map made by
    ``open``/``create``, a ``numpy.memmap`` (``numpy.load(mmap_mode=...)`` too) or a view
    of one, or a path that is not a directory; else None."""
    if isinstance(v, (str, _os.PathLike)):
        p = _os.fspath(v)
        return p if _os.path.isfile(p) else None
    b = v
    while b is not None:
        if isinstance(b, _native.Map):
            return b.path
        if isinstance(b, _np.memmap) and getattr(b, "filename", None):
            return _os.fspath(b.filename)
        b = getattr(b, "base", None)
    return None


def _file_view(a):
    """(file's device and inode, the first element's byte in it, shape, strides, dtype) of
    an array over a shared map of a file (a ``numpy.memmap`` or a view of one, a map made by
    ``open``/``create``); None otherwise, and for copy-on-write maps (their memory is not
    the file's)."""
    b = a
    while b is not None:
        if isinstance(b, _native.Map):
            if b.copy_on_write:
                return None
            path, start = b.path, b.offset
            base = b.__array_interface__["data"][0]
            break
        if isinstance(b, _np.memmap) and isinstance(b.base, _mmap.mmap):
            if getattr(b, "mode", None) in ("c", "copyonwrite") or not b.filename:
                return None
            path, start = _os.fspath(b.filename), b.offset
            base = b.__array_interface__["data"][0]
            break
        b = getattr(b, "base", None)
    else:
        return None
    try:
        st = _os.stat(path)
    except OSError:
        return None
    first = start + a.__array_interface__["data"][0] - base
    return ((st.st_dev, st.st_ino), first, tuple(a.shape), tuple(a.strides), a.dtype)


def _bytes_of(view):
    """The file bytes ``lo..hi`` a ``_file_view`` spans."""
    _, first, shape, strides, dtype = view
    if 0 in shape:
        return first, first
    lo = first + sum(st * (n - 1) for n, st in zip(shape, strides) if st < 0)
    hi = first + sum(st * (n - 1) for n, st in zip(shape, strides) if st > 0) + dtype.itemsize
    return lo, hi


def _check_views_of_out(out, values):
    """Inputs that read the output's file: the output's own view is read in place; a view
    sharing the output's memory is copied first (numpy's rule: as if every input were read
    before any write); the same bytes mapped again, with the same layout, are read in place;
    bytes of the file the output does not write are read as they are. Any other view of the
    file (another layout over the bytes written, a copy-on-write map) is refused: two maps
    of one file are two addresses, which no memory check sees, and it would be read while
    it is written. Returns the inputs to replace (by their copies)."""
    oa = _np.asarray(out)
    f = _file_of(oa)
    if f is None:
        return {}
    oi = oa.__array_interface__
    ov = _file_view(oa)
    copies = {}
    for n, v in values.items():
        if not isinstance(v, (str, _os.PathLike, _np.ndarray, _native.Map)):
            continue
        g = _file_of(v)
        if g is None or not _same_file(f, g):
            continue
        if isinstance(v, (str, _os.PathLike)):
            try:
                a = _np.load(_os.fspath(v), mmap_mode="r")  # its view of the file
            except (OSError, ValueError):
                a = None
        else:
            a = _np.asarray(v)
        if a is not None:
            ai = a.__array_interface__
            if (ai["data"][0] == oi["data"][0] and a.shape == oa.shape
                    and a.strides == oa.strides and a.dtype == oa.dtype):
                continue  # the output itself
            if not isinstance(v, (str, _os.PathLike)) and _np.may_share_memory(a, oa):
                copies[n] = _np.array(a, copy=True)
                continue
            av = _file_view(a)
            if av is not None and ov is not None:
                if av == ov:
                    continue  # the same bytes, mapped again
                (alo, ahi), (olo, ohi) = _bytes_of(av), _bytes_of(ov)
                if ahi <= olo or ohi <= alo:
                    continue  # bytes the output does not write
        raise ValueError(f"{n} reads {f}, the output's file, through another view of it "
                         "than the output's: it would be read while it is written (pass the "
                         f"output's own array, or copy it first: numpy.array({n}))")
    return copies


def _same_file(a, b):
    try:
        return _os.path.samefile(a, b)
    except OSError:
        return False


def _default_chunks(shape, itemsize):
    """Chunks of about 16 MiB, cut along the first axes."""
    chunks = list(shape)
    budget = 16 << 20
    size = itemsize * int(_np.prod(shape)) if shape else itemsize
    k = 0
    while size > budget and k < len(chunks):
        n = max(1, budget // max(1, size // max(1, chunks[k])))
        size = size // max(1, chunks[k]) * n
        chunks[k] = n
        k += 1
    return [max(1, c) for c in chunks]
