#!/usr/bin/env bash
# In the page cache (no memory limit, warm): add_into on mapped files including the final
# flush (criterion, benches/ops.rs, one thread and rayon) against numpy doing the same
# (np.add(a, b, out=c); c.flush() on np.memmap, timed here), in one run; prints medians
# and ratios. The compute-only rows (vs a plain Vec<f32> add) are in criterion's output.
#
# usage: bash benches/in_cache.sh        env: OPS_BENCH_MIB=64 (MiB per array), REPEAT=20
set -euo pipefail
cd "$(dirname "$0")/.."
export OPS_BENCH_MIB=${OPS_BENCH_MIB:-64}
REPEAT=${REPEAT:-20}
python3 -c 'import numpy' 2>/dev/null || pip install --quiet numpy

cargo bench --bench ops --features rayon 2>&1 | grep -E '^(compute|maps_flush)/|time:|^interleaved' || true

DIR=$(mktemp -d -p target)
trap 'rm -rf "$DIR"' EXIT
python3 - "$DIR" "$OPS_BENCH_MIB" "$REPEAT" <<'PYEOF' > "$DIR/numpy.txt"
import sys, time, statistics
import numpy as np
d, mib, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = mib << 18
for name, v in (("a", 1.5), ("b", 2.25), ("c", 0.0)):
    m = np.memmap(f"{d}/{name}", dtype=np.float32, mode="w+", shape=(n,))
    m[:] = v
    m.flush()
    del m
a = np.memmap(f"{d}/a", dtype=np.float32, mode="r")
b = np.memmap(f"{d}/b", dtype=np.float32, mode="r")
c = np.memmap(f"{d}/c", dtype=np.float32, mode="r+")
times = []
for _ in range(repeat + 2):
    t = time.perf_counter()
    np.add(a, b, out=c)
    c.flush()
    times.append(time.perf_counter() - t)
print(statistics.median(times[2:]))
PYEOF

python3 - "$DIR/numpy.txt" <<'PYEOF'
import json, sys, os
numpy_s = float(open(sys.argv[1]).read())
print(f"\n== in the page cache, {os.environ['OPS_BENCH_MIB']} MiB per array (medians)")
print(f"  numpy np.add(out=c) + flush     {numpy_s * 1e3:8.2f} ms")
base = "target/criterion/maps_flush"
for label in ("1thread", "rayon"):
    p = f"{base}/add_into+flush_{label}/new/estimates.json"
    if not os.path.exists(p):
        continue
    ours = json.load(open(p))["median"]["point_estimate"] / 1e9
    print(f"  add_into + flush ({label:7})      {ours * 1e3:8.2f} ms   numpy / ours = {numpy_s / ours:.2f}x")
def med(name):
    p = f"target/criterion/compute/{name}/new/estimates.json"
    return json.load(open(p))["median"]["point_estimate"] if os.path.exists(p) else None
vec = med("vec_loop")
for name in ("add_into_maps_1thread", "add_into_maps_rayon", "add_into_views_1thread", "add_into_views_rayon", "ndarray_zip", "ndarray_alloc"):
    m = med(name)
    if vec and m:
        print(f"  compute {name:24} {m / 1e6:8.2f} ms   vec_loop / it = {vec / m:.2f}x")
PYEOF
