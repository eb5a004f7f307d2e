#!/usr/bin/env bash
# The seed experiment, out of core: c = a + b on f32 files under a memory limit, caches
# dropped before every run. ndarray-mmap (examples/add_files) vs numpy (np.add(a, b, out=c)
# on np.memmap, then c.flush()) vs the disk floor (dd reading a and b, writing c with
# fdatasync). Runs the three in turn REPEAT times per limit and prints medians and ratios.
#
# usage: bash benches/out_of_core.sh
# env:   SIZE_MIB=512      size of each array (the scale case: SIZE_MIB=4096 LIMITS=256 REPEAT=1)
#        LIMITS="128 64"   memory limits in MiB
#        REPEAT=5          runs per tool and limit
#        DIR=target/ooc    where the files go (needs 3 × SIZE_MIB free)
#        FEATURES=         cargo features for the example (e.g. rayon)
#        CHUNK=            --chunk for add_files (default: the crate's default)
#        (dd runs twice: one file after another, the floor the issue names, and all at
#        once, "dd-parallel", the fastest the disk moves the same bytes)
#        FORMULA=1         d = a*2 + b*3 + c instead (4 arrays: add_files --formula with ops::Zip,
#                          numpy d[:] = a*2 + b*3 + c, dd reading three files and writing one)
# needs: root and a cgroup-v1 memory controller (benches/memlimit, a copy of the shared tool), python3 (numpy is
#        pip-installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-512}
LIMITS=${LIMITS:-"128 64"}
REPEAT=${REPEAT:-5}
DIR=${DIR:-target/ooc}
FEATURES=${FEATURES:-}
MEMLIMIT=${MEMLIMIT:-$(pwd)/benches/memlimit}

mkdir -p "$DIR"
echo "== disk space"
df -h "$DIR"
need=$((3 * SIZE_MIB + 256))
avail=$(df -Pm "$DIR" | awk 'NR == 2 {print $4}')
if [ "$avail" -lt "$need" ]; then
    echo "need $need MiB free in $DIR, have $avail" >&2
    exit 1
fi

echo "== build"
cargo build --release --example add_files ${FEATURES:+--features "$FEATURES"} 2>&1 | tail -1
BIN=target/release/examples/add_files
python3 -c 'import numpy' 2>/dev/null || pip install --quiet numpy

A=$DIR/a.f32; B=$DIR/b.f32; OUT=$DIR/out.f32
N=$((SIZE_MIB * 1024 * 1024 / 4))
if [ "$(stat -c %s "$A" 2>/dev/null || echo 0)" != $((N * 4)) ] || [ "$(stat -c %s "$B" 2>/dev/null || echo 0)" != $((N * 4)) ]; then
    echo "== creating 2 × $SIZE_MIB MiB inputs in $DIR"
    python3 - "$A" "$B" "$N" <<'EOF'
import sys
import numpy as np
a_path, b_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
block = 1 << 24
with open(a_path, "wb") as fa, open(b_path, "wb") as fb:
    for start in range(0, n, block):
        i = np.arange(start, min(n, start + block), dtype=np.int64)
        (i % 1000).astype(np.float32).tofile(fa)
        ((i * 7) % 1000 * 0.5).astype(np.float32).tofile(fb)
EOF
fi

C=$DIR/c.f32
if [ "${FORMULA:-}" = 1 ] && [ "$(stat -c %s "$C" 2>/dev/null || echo 0)" != $((N * 4)) ]; then
    cp "$A" "$C"
fi

NP_SCRIPT=$(mktemp)
trap 'rm -f "$NP_SCRIPT"' EXIT
cat > "$NP_SCRIPT" <<'EOF'
import sys, time
import numpy as np
a_p, b_p, out_p = sys.argv[1:4]
t = time.perf_counter()
a = np.memmap(a_p, dtype=np.float32, mode="r")
b = np.memmap(b_p, dtype=np.float32, mode="r")
if len(sys.argv) > 4:  # the formula: a b c out
    c3 = np.memmap(out_p, dtype=np.float32, mode="r")
    d = np.memmap(sys.argv[4], dtype=np.float32, mode="w+", shape=a.shape)
    d[:] = a * 2 + b * 3 + c3
    d.flush()
else:
    c = np.memmap(out_p, dtype=np.float32, mode="w+", shape=a.shape)
    np.add(a, b, out=c)
    c.flush()
print(f"add_s {time.perf_counter() - t:.4f}")
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(f"vmhwm_mib {int(line.split()[1]) / 1024:.1f}")
EOF

RESULTS=$DIR/results.tsv
: > "$RESULTS"
run() { # tool limit cmd...
    local tool=$1 limit=$2; shift 2
    rm -f "$OUT"
    local log
    if ! log=$(DROP_CACHES=1 CG_QUIET=1 "$MEMLIMIT" "$limit" -- "$@" 2>&1); then
        echo "$tool failed:"; echo "$log"
        # numpy's formula needs whole-array temporaries: under a small limit the OOM killer
        # ends it; that is a result, not a broken benchmark.
        [ "$tool" = numpy ] && return 0
        exit 1
    fi
    local inner
    inner=$(awk '$1 == "add_s" {print $2}' <<< "$log")
    local hwm
    hwm=$(awk '$1 == "vmhwm_mib" {print $2}' <<< "$log")
    local res
    res=$(grep CGROUP_RESULT <<< "$log")
    printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$limit" "${inner:-NA}" "${hwm:-NA}" "$res" >> "$RESULTS"
    printf '  %-12s limit %4s MiB: %s (inner %s s, VmHWM %s MiB)\n' "$tool" "$limit" "$(sed 's/CGROUP_RESULT //; s/failcnt=[^ ]* //; s/memsw=.*//' <<< "$res")" "${inner:-NA}" "${hwm:-NA}"
}

DD_CMD="dd if=$A of=/dev/null bs=8M status=none && dd if=$B of=/dev/null bs=8M status=none && dd if=/dev/zero of=$OUT bs=8M count=$((SIZE_MIB / 8)) conv=fdatasync status=none"
# The same transfers at once (reads and the write overlap, as a streaming add's do): the
# fastest this disk moves these bytes.
DDP_CMD="dd if=$A of=/dev/null bs=8M status=none & dd if=$B of=/dev/null bs=8M status=none & dd if=/dev/zero of=$OUT bs=8M count=$((SIZE_MIB / 8)) conv=fdatasync status=none; wait"
if [ "${FORMULA:-}" = 1 ]; then
    DD_CMD="dd if=$C of=/dev/null bs=8M status=none && $DD_CMD"
    DDP_CMD="dd if=$C of=/dev/null bs=8M status=none & $DDP_CMD"
fi
for limit in $LIMITS; do
    echo "== limit $limit MiB, $SIZE_MIB MiB per array, $REPEAT runs each"
    for r in $(seq "$REPEAT"); do
        if [ "${FORMULA:-}" = 1 ]; then
            run ndarray-mmap "$limit" "$BIN" --machine --bounded --formula ${CHUNK:+--chunk "$CHUNK"} "$A" "$B" "$C" "$OUT"
            run numpy "$limit" python3 "$NP_SCRIPT" "$A" "$B" "$C" "$OUT"
        else
            run ndarray-mmap "$limit" "$BIN" --machine --bounded ${CHUNK:+--chunk "$CHUNK"} "$A" "$B" "$OUT"
            run numpy "$limit" python3 "$NP_SCRIPT" "$A" "$B" "$OUT"
        fi
        run dd "$limit" sh -c "$DD_CMD"
        run dd-parallel "$limit" sh -c "$DDP_CMD"
    done
done
rm -f "$OUT"

echo "== medians ($SIZE_MIB MiB per array)"
echo "   wall: the whole process under memlimit (numpy's includes starting python and importing numpy"
echo "   from a cold cache); inner: map + add + flush timed inside the process; cgroup peak counts"
echo "   page cache and so sits at the limit; VmHWM: the process's own peak resident memory;"
echo "   re-read: workingset_refault_file (pages read twice); disk read: machine-wide"
python3 - "$RESULTS" "$SIZE_MIB" <<'EOF'
import sys, statistics as st
rows = {}
size = int(sys.argv[2])
for line in open(sys.argv[1]):
    tool, limit, inner, hwm, res = line.rstrip("\n").split("\t")
    kv = dict(f.split("=", 1) for f in res.split()[1:])
    rows.setdefault((int(limit), tool), []).append((float(kv["wall_s"]), inner, kv, hwm))
for limit in sorted({l for l, _ in rows}, reverse=True):
    med, med_in = {}, {}
    print(f"limit {limit} MiB")
    print(f"  {'tool':<13}{'wall s':>8}{'inner s':>9}{'wall s/GiB':>11}{'cgroup peak':>12}{'VmHWM MiB':>10}{'re-read MiB':>12}{'disk read MiB':>14}")
    for tool in ("ndarray-mmap", "numpy", "dd", "dd-parallel"):
        rs = rows.get((limit, tool))
        if not rs:
            continue
        wall = st.median(r[0] for r in rs)
        inner = [float(r[1]) for r in rs if r[1] != "NA"]
        inner_m = f"{st.median(inner):.3f}" if inner else "-"
        if inner:
            med_in[tool] = st.median(inner)
        hwms = [float(r[3]) for r in rs if r[3] != "NA"]
        hwm = f"{st.median(hwms):.1f}" if hwms else "-"
        peak = st.median(int(r[2]["peak_bytes"]) for r in rs) / 2**20
        reread = st.median(int(r[2]["refault_file"]) for r in rs) * 4096 / 2**20
        dread = st.median(int(r[2]["disk_read_mib"]) for r in rs)
        med[tool] = wall
        print(f"  {tool:<13}{wall:>8.3f}{inner_m:>9}{wall / (size / 1024):>11.3f}{peak:>12.1f}{hwm:>10}{reread:>12.1f}{dread:>14}")
    if "ndarray-mmap" in med:
        o = med["ndarray-mmap"]
        if "numpy" in med_in and "ndarray-mmap" in med_in:
            print(f"  numpy / ndarray-mmap (inner) = {med_in['numpy'] / med_in['ndarray-mmap']:.2f}x")
        if "numpy" in med:
            print(f"  numpy / ndarray-mmap (wall)  = {med['numpy'] / o:.2f}x")
        if "dd" in med:
            print(f"  ndarray-mmap / dd floor (wall) = {o / med['dd']:.2f}x")
        if "dd-parallel" in med:
            print(f"  ndarray-mmap / parallel dd (wall) = {o / med['dd-parallel']:.2f}x")
EOF
