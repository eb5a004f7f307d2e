#!/usr/bin/env bash
# Issue 21's figures for the Python package, in one run, each a ratio to its baseline measured
# in the same run (medians of REPS interleaved runs, tool order turned each repetition):
#  1. d = 2a + 3b + c over 3 x MIB MiB float32 .npy files opened as numpy memmaps, caches
#     dropped, under a LIMIT MiB cgroup (root, cgroup v1, benches/memlimit), the output a new
#     .npy memmap flushed at the end: nm.evaluate against numexpr.evaluate(out=) on the same
#     memmaps, numpy's chunked evaluation (blocks of 4 Mi elements), and the disk's
#     all-at-once floor (one dd per file at once: three read, one written and synced); peak
#     cgroup memory;
#  2. the same in the page cache (inputs warm, output in memory): nm.evaluate against numexpr
#     with one thread (evaluate runs on one);
#  3. calling overhead: 1,000-element arrays, nm.evaluate against numexpr.evaluate.
# usage: bash benches/python_evaluate.sh     env: MIB=512 LIMIT=256 REPS=3 DIR=target/pyeval
# needs: the package installed (pip install ./python), numexpr (pip-installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-512}; LIMIT=${LIMIT:-256}; REPS=${REPS:-3}; DIR=${DIR:-target/pyeval}
source benches/quiet.sh  # QUIET=1 (root): DAMON and free page reporting off for the run
[ "$(id -u)" = 0 ] || { echo "$0: needs root (drop_caches, cgroups)" >&2; exit 2; }
python3 -c 'import numexpr' 2>/dev/null || python3 -m pip install --quiet numexpr
python3 -c 'import ndarray_mmap' || { echo "$0: pip install ./python first" >&2; exit 2; }
mkdir -p "$DIR"
python3 - "$DIR" "$MIB" <<'PY'
import sys, os, numpy as np
d, mib = sys.argv[1], int(sys.argv[2])
n = mib << 18
for k, name in enumerate("abc"):
    p = os.path.join(d, f"{name}.npy")
    if os.path.exists(p) and np.load(p, mmap_mode="r").shape == (n,):
        continue
    m = np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(n,))
    for s in range(0, n, 1 << 24):
        e = min(n, s + (1 << 24))
        m[s:e] = (np.arange(s, e) * (k + 1) % 1000).astype(np.float32)
    m.flush()
PY
RUN=$DIR/run.py
cat > "$RUN" <<'PY'
import sys, time, os, numpy as np
tool, d, warm = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
a, b, c = (np.load(os.path.join(d, f"{x}.npy"), mmap_mode="r") for x in "abc")
t = time.perf_counter()
if warm:
    out = np.empty_like(a)
else:
    out = np.lib.format.open_memmap(os.path.join(d, "d.npy"), mode="w+", dtype=np.float32, shape=a.shape)
if tool == "nm":
    import ndarray_mmap as nm
    nm.evaluate("2*a + 3*b + c", out=out, a=a, b=b, c=c)
elif tool == "numexpr":
    import numexpr as ne
    if warm:
        ne.set_num_threads(1)
    ne.evaluate("2*a + 3*b + c", out=out, local_dict={"a": a, "b": b, "c": c})
else:  # numpy, chunked: what a numpy user writes for arrays bigger than memory
    step = 1 << 22
    for s in range(0, a.shape[0], step):
        e = s + step
        np.add(np.add(2 * a[s:e], 3 * b[s:e]), c[s:e], out=out[s:e])
if not warm:
    out.flush()
    del out
print(f"seconds {time.perf_counter() - t:.4f}")
PY
ROWS=$DIR/rows; : > "$ROWS"
tools_cold="nm numexpr numpy dd"
# The tools in turned order: rotate K T1 T2 ... starts at T(K+1).
rotate() {
    local k=$1; shift
    local t=("$@") i
    for i in "${!t[@]}"; do printf '%s ' "${t[$(( (i + k) % ${#t[@]} ))]}"; done
}
for r in $(seq "$REPS"); do
    for tool in $(rotate $((r - 1)) $tools_cold); do
        rm -f "$DIR/d.npy"; sync; echo 3 > /proc/sys/vm/drop_caches; sleep 2
        if [ "$tool" = dd ]; then
            cmd=(bash -c 'for f in a b c; do dd if="$1/$f.npy" of=/dev/null bs=8M status=none & done
                 dd if=/dev/zero of="$1/d.npy" bs=8M count='$((MIB / 8))' conv=fdatasync status=none; wait' _ "$DIR")
        else
            cmd=(python3 "$RUN" "$tool" "$DIR" 0)
        fi
        o=$(CG_QUIET=1 benches/memlimit "$LIMIT" -- /usr/bin/time -f "elapsed %e" "${cmd[@]}" 2>&1) || { echo "$tool failed: $o" >&2; exit 1; }
        secs=$(grep -o 'seconds [0-9.]*' <<< "$o" | cut -d' ' -f2 || true)
        [ -n "$secs" ] || secs=$(grep -o 'elapsed [0-9.]*' <<< "$o" | cut -d' ' -f2)
        peak=$(grep -o 'peak_bytes=[0-9]*' <<< "$o" | cut -d= -f2)
        echo "cold $tool $secs $peak" | tee -a "$ROWS"
    done
    for tool in $(rotate $((r - 1)) nm numexpr); do
        cat "$DIR"/[abc].npy > /dev/null
        # Let freed memory settle: in this VM, a process that runs right after another
        # freed 512 MiB pays for getting it back from the host (up to 3x here).
        sleep 2
        o=$(python3 "$RUN" "$tool" "$DIR" 1)
        echo "warm $tool $(grep -o 'seconds [0-9.]*' <<< "$o" | cut -d' ' -f2) 0" | tee -a "$ROWS"
    done
done
python3 - "$ROWS" "$LIMIT" "$MIB" <<'PY'
import sys, statistics as st, timeit, numpy as np
rows, limit, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t, peak = {}, {}
for line in open(rows):
    cell, tool, secs, p = line.split()
    t.setdefault((cell, tool), []).append(float(secs))
    peak[(cell, tool)] = max(peak.get((cell, tool), 0), int(p))
m = {k: st.median(v) for k, v in t.items()}
nm_ = m[("cold", "nm")]
print(f"== cold, 3 x {mib} MiB in, {mib} MiB out, {limit} MiB cgroup (medians of {len(t[('cold','nm')])})")
for tool in ("nm", "numexpr", "numpy", "dd"):
    print(f"  {tool:8} {m[('cold', tool)]:.3f} s  peak {peak[('cold', tool)] >> 20} MiB")
def check(ok, what):
    print(f"  {'ok  ' if ok else 'MISS'} {what}")
check(nm_ <= 1.1 * m[("cold", "dd")], f"evaluate / dd floor {nm_ / m[('cold', 'dd')]:.2f}x (<= 1.1)")
check(m[("cold", "numexpr")] >= 2 * nm_, f"numexpr / evaluate {m[('cold', 'numexpr')] / nm_:.2f}x (>= 2)")
check(m[("cold", "numpy")] >= 3 * nm_, f"numpy chunked / evaluate {m[('cold', 'numpy')] / nm_:.2f}x (>= 3)")
check(peak[("cold", "nm")] <= 0.75 * (limit << 20), f"peak {peak[('cold', 'nm')] >> 20} MiB <= 0.75 x {limit}")
w, wn = m[("warm", "nm")], m[("warm", "numexpr")]
print(f"== page cache: evaluate {w:.3f} s, numexpr (1 thread) {wn:.3f} s")
check(wn >= w, f"numexpr / evaluate {wn / w:.2f}x (>= 1.0)")
import numexpr as ne, ndarray_mmap as nm
ne.set_num_threads(1)
a, b, c = (np.arange(1000, dtype=np.float32) * k for k in (1, 2, 3))
out = np.empty_like(a)
ours = min(timeit.repeat(lambda: nm.evaluate("2*a + 3*b + c", out=out, a=a, b=b, c=c), number=200, repeat=5)) / 200
theirs = min(timeit.repeat(lambda: ne.evaluate("2*a + 3*b + c", out=out, local_dict={"a": a, "b": b, "c": c}), number=200, repeat=5)) / 200
print(f"== calling overhead, 1,000 elements: evaluate {ours * 1e6:.1f} us, numexpr {theirs * 1e6:.1f} us")
check(ours <= 2 * theirs, f"evaluate / numexpr {ours / theirs:.2f}x (<= 2)")
PY
