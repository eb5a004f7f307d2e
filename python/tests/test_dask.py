"""ndarray_mmap.dask: the engine in dask tasks over zarr-python's arrays, on a real
2-process LocalCluster, with a worker killed mid-run."""

import os
import sys

import cloudpickle
import numpy as np
import pytest
import zarr  # CI installs zarr and dask; a missing one fails these tests

import dask
from dask.distributed import Client, LocalCluster

import ndarray_mmap as nm
import ndarray_mmap.dask as nmd

RNG = np.random.default_rng(3)
# The workers cannot import this test module: its functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def arrays(tmp_path, shape=(512, 384), chunks=(64, 96), compressors="default"):
    vals = {}
    for name in "abc":
        v = (RNG.standard_normal(shape) * 10).astype(np.float32)
        kw = {} if compressors == "default" else {"compressors": compressors}
        zarr.create_array(tmp_path / f"{name}.zarr", shape=shape, chunks=chunks,
                          dtype="float32", **kw)[...] = v
        vals[name] = v
    return vals


def paths(tmp_path):
    return {n: str(tmp_path / f"{n}.zarr") for n in "abc"}


@pytest.mark.parametrize("compressors", ["default", None])
def test_threads_scheduler_matches_numpy(tmp_path, compressors):
    v = arrays(tmp_path, compressors=compressors)
    t = nmd.evaluate("2*a + 3*b + c", out=str(tmp_path / "d.zarr"), chunks_per_task=3,
                     **paths(tmp_path))
    done = dask.compute(t, scheduler="threads")[0]
    assert sum(n for _, n in done) == 8 * 4
    got = zarr.open_array(tmp_path / "d.zarr")[...]
    want = 2 * v["a"] + 3 * v["b"] + v["c"]
    assert got.dtype == np.float32
    assert np.array_equal(got, want)  # bit for bit: each step rounds in float32, as numpy


def test_inputs_on_other_grids_than_the_output_match_numpy(tmp_path):
    v = arrays(tmp_path)  # a, b, c: (512, 384) in chunks of (64, 96), zstd
    # e: chunks that straddle the output's on both axes, uncompressed (mapped), with an
    # edge chunk cut on each axis; f: one chunk bigger than a task, sharded, and int16
    e = (RNG.standard_normal((512, 384)) * 10).astype(np.float32)
    zarr.create_array(tmp_path / "e.zarr", shape=e.shape, chunks=(100, 70), dtype="float32",
                      compressors=None)[...] = e
    f = RNG.integers(-300, 300, (512, 384)).astype(np.int16)
    zarr.create_array(tmp_path / "f.zarr", shape=f.shape, shards=(512, 384), chunks=(256, 192),
                      dtype="int16")[...] = f
    t = nmd.evaluate("a * e - f + b", out=str(tmp_path / "x.zarr"), chunks_per_task=5,
                     a=str(tmp_path / "a.zarr"), b=str(tmp_path / "b.zarr"),
                     e=str(tmp_path / "e.zarr"), f=str(tmp_path / "f.zarr"))
    done = dask.compute(t, scheduler="threads")[0]
    assert sum(n for _, n in done) == 8 * 4  # the first input's grid
    got = zarr.open_array(tmp_path / "x.zarr")[...]
    want = v["a"] * e - f + v["b"]
    assert got.dtype == want.dtype == np.float32
    assert np.array_equal(got, want)


@pytest.mark.parametrize("sharded_inputs", [True, False])
def test_an_existing_sharded_output_is_written_in_every_inner_chunk(tmp_path, sharded_inputs):
    # uncompressed shards of 2 x 2 inner chunks (shards are written in place, so the output
    # is written whole first): the tasks' grid is the inner chunks', 8 x 4 of them, not the
    # 4 x 2 shards (with inputs sharded the same way, 8 of the 32 were written, silently)
    v = {}
    for n in "ab":
        v[n] = (RNG.standard_normal((512, 384)) * 10).astype(np.float32)
        kw = {"shards": (128, 192)} if sharded_inputs else {}
        zarr.create_array(tmp_path / f"{n}.zarr", shape=(512, 384), chunks=(64, 96),
                          dtype="float32", compressors=None, **kw)[...] = v[n]
    out = tmp_path / "s.zarr"
    zarr.create_array(out, shape=(512, 384), shards=(128, 192), chunks=(64, 96),
                      dtype="float32", compressors=None)[...] = np.full((512, 384), 7, np.float32)
    t = nmd.evaluate("a + b", out=str(out), chunks_per_task=3, a=str(tmp_path / "a.zarr"),
                     b=str(tmp_path / "b.zarr"))
    done = dask.compute(t, scheduler="threads")[0]
    assert sum(n for _, n in done) == 8 * 4
    assert np.array_equal(zarr.open_array(out)[...], v["a"] + v["b"])


def test_inputs_of_another_shape_are_refused_before_any_task(tmp_path):
    arrays(tmp_path)
    zarr.create_array(tmp_path / "e.zarr", shape=(512, 383), chunks=(64, 96), dtype="float32")
    with pytest.raises(ValueError, match="shape \\[512, 383\\], not \\[512, 384\\]"):
        nmd.evaluate("a + e", out=str(tmp_path / "x.zarr"), a=str(tmp_path / "a.zarr"),
                     e=str(tmp_path / "e.zarr"))
    assert not (tmp_path / "x.zarr").exists()


def test_an_output_evaluate_does_not_compute_in_is_refused_before_the_graph(tmp_path):
    arrays(tmp_path)
    out = tmp_path / "h.zarr"
    zarr.create_array(out, shape=(512, 384), chunks=(64, 96), dtype="float16")
    with pytest.raises(TypeError, match="h.zarr\\) holds float16"):
        nmd.evaluate("a + 1", out=str(out), a=str(tmp_path / "a.zarr"))
    assert sorted(os.listdir(out)) == ["zarr.json"]  # no chunk written


def _kill_first_task(marker):
    """Runs in each worker: the first task started anywhere kills its worker process."""
    import ndarray_mmap.dask as m
    original = getattr(m, "_original_task", m._task)
    m._original_task = original

    def task(*args):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return original(*args)
        os.close(fd)
        os._exit(1)  # the worker dies mid-task, as under the OOM killer

    m._task = task
    return os.getpid()


def test_a_local_cluster_of_two_processes_with_a_worker_killed(tmp_path):
    v = arrays(tmp_path, shape=(1024, 512), chunks=(32, 128))
    want = 2 * v["a"] + 3 * v["b"] + v["c"]
    marker = str(tmp_path / "killed")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        # Both worker processes run tasks.
        t = nmd.evaluate("2*a + 3*b + c", out=str(tmp_path / "d.zarr"), chunks_per_task=1,
                         **paths(tmp_path))
        done = client.compute(t).result(timeout=120)
        ran = {pid for pid, _ in done}
        assert sum(n for _, n in done) == 32 * 4
        assert len(ran) == 2, f"tasks ran in {ran}"
        assert np.array_equal(zarr.open_array(tmp_path / "d.zarr")[...], want)
        # The first task started kills its worker mid-task; dask runs it again elsewhere.
        pids = set(client.run(_kill_first_task, marker).values())
        assert len(pids) == 2
        t = nmd.evaluate("2*a + 3*b + c", out=str(tmp_path / "e.zarr"), chunks_per_task=2,
                         **paths(tmp_path))
        done = client.compute(t).result(timeout=120)
    assert os.path.exists(marker), "a worker was killed"
    assert sum(n for _, n in done) == 32 * 4
    got = zarr.open_array(tmp_path / "e.zarr")[...]
    assert np.array_equal(got, want)
    # And the same arrays through nm.evaluate, one process:
    assert np.array_equal(nm.evaluate("2*a + 3*b + c", **paths(tmp_path)), got)


def test_bad_arguments_are_refused_before_the_graph(tmp_path):
    arrays(tmp_path)
    a = str(tmp_path / "a.zarr")
    for k in (-1, 0, 1.5, True):
        with pytest.raises(ValueError, match="chunks_per_task must be a positive integer"):
            nmd.evaluate("a + 1", out=str(tmp_path / "x.zarr"), chunks_per_task=k, a=a)
    with pytest.raises(TypeError, match="b: the dask evaluate reads Zarr arrays by path"):
        nmd.evaluate("a + b", out=str(tmp_path / "x.zarr"), a=a, b=np.ones((512, 384)))
    with pytest.raises(ValueError, match="reads no array"):
        nmd.evaluate("1 + 2", out=str(tmp_path / "x.zarr"))
    with pytest.raises(TypeError, match="out: the dask evaluate writes a Zarr array by path"):
        nmd.evaluate("a + 1", out=np.ones((512, 384)), a=a)
    assert not (tmp_path / "x.zarr").exists()
    t = nmd.evaluate("a + 1", out=str(tmp_path / "x.zarr"), chunks_per_task=np.int64(5), a=a)
    assert sum(n for _, n in dask.compute(t, scheduler="threads")[0]) == 8 * 4


def test_a_sharded_output_with_compressed_inner_chunks_is_refused_before_the_graph(tmp_path):
    arrays(tmp_path)
    out = tmp_path / "s.zarr"
    zarr.create_array(out, shape=(512, 384), shards=(128, 192), chunks=(64, 96),
                      dtype="float32")[...] = 7  # zarr-python's default: zstd inside
    before = {f: os.path.getmtime(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs}
    with pytest.raises(ValueError, match="inner chunks are coded"):
        nmd.evaluate("a + 1", out=str(out), a=str(tmp_path / "a.zarr"))
    after = {f: os.path.getmtime(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs}
    assert before == after


def test_many_small_mapped_input_chunks_keep_few_files_open(tmp_path):
    # 1024 uncompressed inner chunks read for one output chunk: each kept chunk holds an
    # open file and a map, so they were all kept open (EMFILE under a limit of 256).
    import resource
    b = (RNG.standard_normal((256, 256)) * 10).astype(np.float32)
    zarr.create_array(tmp_path / "b.zarr", shape=b.shape, shards=(256, 256), chunks=(8, 8),
                      dtype="float32", compressors=None)[...] = b
    a = (RNG.standard_normal((256, 256)) * 10).astype(np.float32)
    zarr.create_array(tmp_path / "a.zarr", shape=a.shape, chunks=(256, 256),
                      dtype="float32")[...] = a
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        t = nmd.evaluate("a + b", out=str(tmp_path / "o.zarr"), a=str(tmp_path / "a.zarr"),
                         b=str(tmp_path / "b.zarr"))
        dask.compute(t, scheduler="synchronous")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert np.array_equal(zarr.open_array(tmp_path / "o.zarr")[...], a + b)


def test_a_new_output_takes_the_compressor_inside_a_sharded_inputs_shards(tmp_path):
    v = (RNG.standard_normal((512, 384)) * 10).astype(np.float32)
    zarr.create_array(tmp_path / "a.zarr", shape=v.shape, shards=(128, 192), chunks=(64, 96),
                      dtype="float32")[...] = v  # zstd inside the shards
    dask.compute(nmd.evaluate("a * 2", out=str(tmp_path / "o.zarr"),
                              a=str(tmp_path / "a.zarr")), scheduler="threads")
    o = zarr.open_array(tmp_path / "o.zarr")
    assert o.chunks == (64, 96) and o.shards is None
    assert [type(c).__name__ for c in o.compressors] == ["ZstdCodec"]
    assert np.array_equal(o[...], v * 2)
