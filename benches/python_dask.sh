#!/usr/bin/env bash
# Issue 21's dask figure, in one run: d = 2a + 3b + c over three Zarr v3 arrays written by
# zarr-python with its defaults (zstd, its chunk shape), on a LocalCluster of 2 worker
# processes with 1 thread each, a new cluster per run:
#   nmd.evaluate(...).compute()              (the engine in each task, ndarray_mmap.dask)
#   (2*a + 3*b + c).to_zarr(...)            (dask.array over da.from_zarr, zarr-python's codecs)
# Printed: medians of REPS interleaved runs (order turned each repetition), their ratio, the
# peak RSS of each worker (VmHWM of a fresh worker: ru_maxrss would carry the peak of the
# process that started it), the CPU seconds the workers spent, whether both outputs hold
# exactly numpy's float32 result (checked once, after the runs), and the codec's own floor:
# zstd alone (numcodecs, one core) decoding the inputs and encoding the output, halved for
# the 2 workers (what no tool that stores the same bytes can go below on 2 cores).
# usage: bash benches/python_dask.sh     env: MIB=1024 (per array) REPS=3 DIR=target/pydask
#        QUIET=1 (root: DAMON and free page reporting off for the run, benches/quiet.sh)
# needs: the package installed (pip install ./python); numpy, zarr 3, dask[distributed].
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-1024}; REPS=${REPS:-3}; DIR=${DIR:-target/pydask}
source benches/quiet.sh
python3 -c 'import ndarray_mmap, zarr, dask.distributed' || {
    echo "$0: pip install ./python numpy 'zarr>=3' 'dask[array,distributed]' first" >&2; exit 2; }
mkdir -p "$DIR"
# A file, not stdin: the cluster's worker processes import the main module.
cat > "$DIR/bench.py" <<'PY'
import os, shutil, statistics as st, sys, time
import numpy as np, zarr
import dask.array as da
from dask.distributed import Client, LocalCluster
import ndarray_mmap.dask as nmd

def main():
    d, mib, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    side = int(round((mib << 18) ** 0.5))  # square f32 arrays of about MIB MiB
    shape = (side, side)
    paths = {x: os.path.join(d, f"{x}{mib}.zarr") for x in "abc"}
    yy, xx = np.ogrid[:1024, :side]
    for k, (x, p) in enumerate(paths.items()):
        if os.path.exists(os.path.join(p, "zarr.json")) and zarr.open_array(p).shape == shape:
            continue
        z = zarr.create_array(p, shape=shape, dtype="float32", overwrite=True)  # defaults: zstd
        for r in range(0, side, 1024):
            # A smooth field plus integer counts: data that compresses as measurements do.
            y = yy[: min(1024, side - r)] + r
            z[r : r + y.shape[0]] = (np.sin(y / 300 + k) * np.cos(xx / 200) * 100
                                     + (y * 7 + xx * (k + 1)) % 13).astype(np.float32)
    z0 = zarr.open_array(paths["a"])
    print(f"3 x {mib} MiB float32 {shape}, chunks {z0.chunks}, "
          f"compressors {[type(c).__name__ for c in z0.compressors]}, stored "
          f"{sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(paths['a']) for f in fs) / 2**20:.0f} MiB per array")

    def maxrss():
        # VmHWM: this process's own peak (ru_maxrss keeps the peak of the process that
        # started the worker, the data's writer here).
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024  # MiB

    def cpu():
        t = os.times()
        return t.user + t.system

    def run(tool):
        out = os.path.join(d, f"out_{tool}.zarr")
        shutil.rmtree(out, ignore_errors=True)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cl, Client(cl) as client:
            cpu0 = client.run(cpu)  # workers up before the clock starts
            t = time.perf_counter()
            if tool == "nmd":
                nmd.evaluate("2*a + 3*b + c", out=out, **paths).compute()
            else:
                a, b, c = (da.from_zarr(paths[x]) for x in "abc")
                (2 * a + 3 * b + c).to_zarr(out)
            secs = time.perf_counter() - t
            used = sum(v - cpu0[w] for w, v in client.run(cpu).items())
            peak = max(client.run(maxrss).values())
        return secs, peak, used

    times = {"nmd": [], "dask": []}
    peaks = {"nmd": [], "dask": []}
    cpus = {"nmd": [], "dask": []}
    for r in range(reps):
        for tool in (["nmd", "dask"] if r % 2 == 0 else ["dask", "nmd"]):
            s, p, u = run(tool)
            times[tool].append(s); peaks[tool].append(p); cpus[tool].append(u)
            print(f"  {tool:<5} {s:7.3f} s  worker peak RSS {p:6.0f} MiB  workers' CPU {u:6.2f} s",
                  flush=True)
    want = None
    ok = {}
    a, b, c = (zarr.open_array(paths[x])[:] for x in "abc")
    want = 2 * a + 3 * b + c
    for tool in times:
        got = zarr.open_array(os.path.join(d, f"out_{tool}.zarr"))[:]
        ok[tool] = got.dtype == want.dtype and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    m = {t: st.median(v) for t, v in times.items()}
    u = {t: st.median(v) for t, v in cpus.items()}
    print(f"nmd.evaluate      {m['nmd']:7.3f} s  (median of {reps})  worker peak {max(peaks['nmd']):.0f} MiB  CPU {u['nmd']:.2f} s")
    print(f"dask.array to_zarr {m['dask']:6.3f} s  (median of {reps})  worker peak {max(peaks['dask']):.0f} MiB  CPU {u['dask']:.2f} s")
    floor = codec_floor(paths, want)
    print(f"zstd alone (numcodecs, one core): {floor:.3f} s of CPU, {floor / 2:.3f} s on 2 workers; "
          f"3x dask needs {m['dask'] / 3:.3f} s")
    def check(good, what):
        print(f"{'ok  ' if good else 'MISS'} {what}")
    check(m["dask"] / m["nmd"] >= 3, f"dask.array / nmd.evaluate {m['dask'] / m['nmd']:.2f}x (>= 3)")
    check(max(peaks["nmd"]) <= 256, f"nmd worker peak {max(peaks['nmd']):.0f} MiB (<= 256)")
    check(ok["nmd"], "nmd output bit for bit numpy's float32 result")
    check(ok["dask"], "dask output bit for bit numpy's float32 result (the baseline's own check)")


def codec_floor(paths, want):
    """CPU seconds zstd alone takes to decode every stored chunk of the inputs and encode
    the output's chunks (one core, numcodecs: the library zarr-python uses)."""
    from numcodecs import Zstd
    z = zarr.open_array(paths["a"])
    level = z.compressors[0].level
    codec = Zstd(level=level)
    secs = 0.0
    for p in paths.values():
        for root, _, files in os.walk(os.path.join(p, "c")):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    stored = fh.read()
                t = time.perf_counter()
                codec.decode(stored)
                secs += time.perf_counter() - t
    ch = z.chunks
    for r in range(0, want.shape[0], ch[0]):
        for c in range(0, want.shape[1], ch[1]):
            block = np.ascontiguousarray(want[r:r + ch[0], c:c + ch[1]])
            t = time.perf_counter()
            codec.encode(block)
            secs += time.perf_counter() - t
    return secs


if __name__ == "__main__":
    main()
PY
python3 "$DIR/bench.py" "$DIR" "$MIB" "$REPS"
