#!/usr/bin/env bash
# The engine in the page cache (warm files, no memory limit), against numpy on np.memmap
# of the same files, in one run: our side (benches/engine.rs) and numpy's run twice,
# interleaved, and the median of each case's medians is compared. Prints one ratio per
# case (numpy's time / ours: above 1 means faster than numpy), plus the Zip against
# ndarray's own Zip over the same maps, and min/max against sum.
#
# usage: bash benches/engine.sh      env: MIB=512 (per array), REPEAT=7, ROUNDS=2
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-512}
REPEAT=${REPEAT:-7}
ROUNDS=${ROUNDS:-2}
python3 -c 'import numpy' 2>/dev/null || python3 -m pip install --quiet numpy
DIR=$(mktemp -d -p target)
trap 'rm -rf "$DIR"' EXIT
cargo build --release --bench engine -q
for r in $(seq "$ROUNDS"); do
    cargo bench -q --bench engine -- "$DIR" "$MIB" "$REPEAT" | sed 's/^/ours /' >> "$DIR/times"
    python3 - "$DIR" "$REPEAT" >> "$DIR/times" <<'PYEOF'
import sys, time, statistics
import numpy as np
d, repeat = sys.argv[1], int(sys.argv[2])
def m(name, mode="r", shape=None):
    return np.memmap(f"{d}/{name}", dtype=np.float32, mode=mode, shape=shape)
def t(name, f):
    f()
    ts = []
    for _ in range(repeat):
        s = time.perf_counter(); f(); ts.append(time.perf_counter() - s)
    print(f"numpy {name} {statistics.median(ts):.6f}", flush=True)
def add():
    a, b, c = m("a"), m("b"), m("d", "r+")
    np.add(a, b, out=c)
def add_flush():
    a, b, c = m("a"), m("b"), m("d", "r+")
    np.add(a, b, out=c); c.flush()
def formula():
    a, b, c, dd = m("a"), m("b"), m("c"), m("d", "r+")
    dd[:] = a * 2 + b * 3 + c
def mat():
    return m("m").reshape(-1, 1024)
t("add_open_op", add)
t("add_open_op_flush", add_flush)
t("formula_zip", formula)
t("sum", lambda: mat().sum(dtype=np.float64))
t("min", lambda: mat().min())
t("max", lambda: mat().max())
t("sum_axis0", lambda: mat().sum(axis=0, dtype=np.float64))
t("sum_axis1", lambda: mat().sum(axis=1, dtype=np.float64))
PYEOF
done
python3 - "$DIR/times" "$MIB" <<'PYEOF'
import sys, statistics, collections
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    who, name, secs = line.split()
    times[(who, name)].append(float(secs))
med = {k: statistics.median(v) for k, v in times.items()}
print(f"\n== in the page cache, {sys.argv[2]} MiB per array (median of round medians; ratio = baseline / ours)")
rows = [("add_open_op", "numpy", "add_open_op", "open + add_into, no flush, vs numpy np.add(out=)"),
        ("add_open_op_flush", "numpy", "add_open_op_flush", "open + add_into + flush, vs numpy + flush"),
        ("add_open_op_flush_wt", "numpy", "add_open_op_flush", "the same with write_through(true), vs numpy + flush"),
        ("formula_zip", "numpy", "formula_zip", "Zip d = a*2 + b*3 + c, vs numpy d[:] = ..."),
        ("formula_zip", "ours", "formula_ndarray_zip", "Zip d = a*2 + b*3 + c, vs ndarray's Zip on maps"),
        ("sum_axis0", "numpy", "sum_axis0", "sum_axis(0) of a 1024-column matrix, vs numpy"),
        ("sum_axis1", "numpy", "sum_axis1", "sum_axis(1), vs numpy"),
        ("sum", "numpy", "sum", "sum, vs numpy"),
        ("min", "ours", "sum", "min, vs our sum (target >= 0.8)"),
        ("max", "ours", "sum", "max, vs our sum (target >= 0.8)")]
for ours, bwho, bname, label in rows:
    o, b = med.get(("ours", ours)), med.get((bwho, bname))
    if o and b:
        print(f"  {label:55} ours {o*1e3:8.1f} ms  baseline {b*1e3:8.1f} ms  ratio {b/o:5.2f}x")
PYEOF
