#!/usr/bin/env bash
# Issue 21's dask figure, in one run: d = 2a + 3b + c over three Zarr v3 arrays written by
# zarr-python with its defaults (zstd, its chunk shape), on a LocalCluster of 2 worker
# processes with 1 thread each, a new cluster per run:
#   nmd.evaluate(...).compute()              (the engine in each task, ndarray_mmap.dask)
#   (2*a + 3*b + c).to_zarr(...)            (dask.array over da.from_zarr, zarr-python's codecs)
# Printed: medians of REPS interleaved runs (order turned each repetition), their ratio, the
# peak RSS of each worker (ru_maxrss, from a fresh worker), and whether both outputs hold
# exactly numpy's float32 result (checked once, after the runs).
# usage: bash benches/python_dask.sh     env: MIB=1024 (per array) REPS=3 DIR=target/pydask
# needs: the package installed (pip install ./python); numpy, zarr 3, dask[distributed].
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-1024}; REPS=${REPS:-3}; DIR=${DIR:-target/pydask}
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
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB

    def run(tool):
        out = os.path.join(d, f"out_{tool}.zarr")
        shutil.rmtree(out, ignore_errors=True)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cl, Client(cl) as client:
            client.run(lambda: None)  # workers up before the clock starts
            t = time.perf_counter()
            if tool == "nmd":
                nmd.evaluate("2*a + 3*b + c", out=out, **paths).compute()
            else:
                a, b, c = (da.from_zarr(paths[x]) for x in "abc")
                (2 * a + 3 * b + c).to_zarr(out)
            secs = time.perf_counter() - t
            peak = max(client.run(maxrss).values())
        return secs, peak

    times = {"nmd": [], "dask": []}
    peaks = {"nmd": [], "dask": []}
    for r in range(reps):
        for tool in (["nmd", "dask"] if r % 2 == 0 else ["dask", "nmd"]):
            s, p = run(tool)
            times[tool].append(s); peaks[tool].append(p)
            print(f"  {tool:<5} {s:7.3f} s  worker peak RSS {p:6.0f} MiB", flush=True)
    want = None
    ok = {}
    a, b, c = (zarr.open_array(paths[x])[:] for x in "abc")
    want = 2 * a + 3 * b + c
    for tool in times:
        got = zarr.open_array(os.path.join(d, f"out_{tool}.zarr"))[:]
        ok[tool] = got.dtype == want.dtype and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    m = {t: st.median(v) for t, v in times.items()}
    print(f"nmd.evaluate      {m['nmd']:7.3f} s  (median of {reps})  worker peak {max(peaks['nmd']):.0f} MiB")
    print(f"dask.array to_zarr {m['dask']:6.3f} s  (median of {reps})  worker peak {max(peaks['dask']):.0f} MiB")
    def check(good, what):
        print(f"{'ok  ' if good else 'MISS'} {what}")
    check(m["dask"] / m["nmd"] >= 3, f"dask.array / nmd.evaluate {m['dask'] / m['nmd']:.2f}x (>= 3)")
    check(max(peaks["nmd"]) <= 256, f"nmd worker peak {max(peaks['nmd']):.0f} MiB (<= 256)")
    check(ok["nmd"], "nmd output bit for bit numpy's float32 result")
    check(ok["dask"], "dask output bit for bit numpy's float32 result (the baseline's own check)")


if __name__ == "__main__":
    main()
PY
python3 "$DIR/bench.py" "$DIR" "$MIB" "$REPS"
