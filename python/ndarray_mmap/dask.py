"""``evaluate`` over Zarr arrays as a dask graph: one task per block of output chunks, each
running ndarray-mmap's engine on its chunks in whatever worker dask gives it.

>>> import ndarray_mmap.dask as nmd
>>> t = nmd.evaluate("2*a + 3*b + c", out="d.zarr", a="a.zarr", b="b.zarr", c="c.zarr")
>>> t.compute()        # any scheduler: threads, processes, dask.distributed

The output array is created (when missing) before the graph is built, in the first input's
chunks (a sharded input's inner chunks) with its zstd or gzip compressor (zstd for another
one, none for none); every task writes only its own chunks, each whole (a compressed chunk
replaces its file in one step), so a task killed mid-way and run again by dask leaves a
correct array. The inputs and the output share one shape; their chunk grids may differ (an
input on another grid than the output's is read from the chunks each output chunk overlaps).
An existing sharded output is written in place: its inner chunks must be uncompressed and
every one of them present (zarr-python leaves out those equal to the fill value).
"""

import json as _json
import operator as _operator
import os as _os

import numpy as _np

from . import (_native, _result_type, _names, _zarr_meta, _compressor_of, _computed,
               _chunk_shape, _sharded_output_problem)

__all__ = ["evaluate"]


def _task(ex, inputs, out, block):
    """One task: the engine over chunks ``block`` of ``out``; returns the worker's pid and
    the number of chunks written (for the caller and the tests)."""
    _native.evaluate_chunks(ex, inputs, out, [list(i) for i in block])
    return _os.getpid(), len(block)


def _done(results):
    return list(results)


def evaluate(ex, out, chunks_per_task=None, **operands):
    """A ``dask.delayed`` object that evaluates ``ex`` over the Zarr arrays named in
    ``operands`` (paths) into the Zarr array ``out`` (a path; created when missing).

    ``chunks_per_task`` (default: about 64 MiB of output per task) sets how many output
    chunks one task writes. ``compute()`` returns one ``(pid, chunks)`` pair per task.
    """
    import dask

    if chunks_per_task is not None:
        k = None
        if not isinstance(chunks_per_task, bool):
            try:
                k = _operator.index(chunks_per_task)
            except TypeError:
                pass
        if k is None or k < 1:
            raise ValueError(f"chunks_per_task must be a positive integer, not "
                             f"{chunks_per_task!r}")
        chunks_per_task = k
    names = _names(ex)
    missing = [n for n in names if n not in operands]
    if missing:
        raise ValueError(f"{ex!r}: no array for {missing} (pass each as name='path.zarr')")
    if not names:
        raise ValueError(f"{ex!r} reads no array: the dask evaluate writes a Zarr array "
                         "computed from others")
    inputs, metas = [], []
    for n in names:
        if not isinstance(operands[n], (str, _os.PathLike)):
            raise TypeError(f"{n}: the dask evaluate reads Zarr arrays by path, not "
                            f"{type(operands[n]).__name__} (numpy arrays and scalars go "
                            "through ndarray_mmap.evaluate)")
        p = _os.fspath(operands[n])
        meta = _zarr_meta(p)
        metas.append(meta)
        inputs.append((p, _np.dtype(meta["data_type"]).name))
    rdt, reduce, _ = _result_type(ex, [d for _, d in inputs])
    if reduce is not None:
        raise ValueError("the dask evaluate writes arrays: reductions go through "
                         "ndarray_mmap.evaluate")
    shape = tuple(metas[0]["shape"])
    chunks = _chunk_shape(metas[0])
    for (p, _), m in zip(inputs, metas):
        if tuple(m["shape"]) != shape:
            raise ValueError(f"{p}: shape {m['shape']}, not {list(shape)} (the first input's): "
                             "the dask evaluate needs one shape (it does not broadcast)")
    if not isinstance(out, (str, _os.PathLike)):
        raise TypeError(f"out: the dask evaluate writes a Zarr array by path, not "
                        f"{type(out).__name__}")
    out = _os.fspath(out)
    if not _os.path.exists(_os.path.join(out, "zarr.json")):
        comp = _compressor_of(metas[0])
        _native.zarr_create(out, rdt, list(shape), list(chunks),
                            None if comp is None else comp[0], 0 if comp is None else comp[1])
    om = _zarr_meta(out)
    odt = _np.dtype(om["data_type"]).name
    _computed(_np.dtype(odt), f"the output ({out})")  # refused before the graph runs
    if tuple(om["shape"]) != shape:
        raise ValueError(f"{out}: shape {om['shape']}, not the inputs' {list(shape)}")
    why = _sharded_output_problem(om)
    if why is not None:
        raise ValueError(f"{out}: {why}")
    chunks = _chunk_shape(om)  # the tasks' grid
    grid = [-(-s // c) if c else 0 for s, c in zip(shape, chunks)]
    indices = list(_np.ndindex(*grid))
    if chunks_per_task is None:
        chunk_bytes = int(_np.prod(chunks)) * _np.dtype(odt).itemsize
        chunks_per_task = max(1, (64 << 20) // max(1, chunk_bytes))
    blocks = [indices[k:k + chunks_per_task] for k in range(0, len(indices), chunks_per_task)]
    tasks = [dask.delayed(_task, pure=False)(ex, inputs, (out, odt), b) for b in blocks]
    return dask.delayed(_done, pure=False)(tasks)
