#!/usr/bin/env bash
# Two out-of-core figures of issue 10, in one run, under a LIMIT MiB cgroup (root; benches/memlimit):
# 1. A file cached before the op stays cached: the page cache is dropped, a.f32 is read whole
#    (outside the cgroup), then c = a + b runs under the limit; `fincore` tells how much of a,
#    b and c is cached after. ndarray-mmap (examples/add_files, Paging::Bounded: it drops only
#    the pages it brought in) against numpy (np.add(a, b, out=c) on np.memmap + flush).
# 2. sum_axis(0) and sum_axis(1) of a SIZE_MIB C-order f32 matrix (COLS columns), caches
#    dropped: wall time and bytes read from the disk, against a sequential read of the file
#    (dd, 8 MiB blocks) in the same run.
# 3. c = a + b into an EXISTING dense c (SIZE_MIB each) under the limit, caches dropped: bytes read
#    from the disk, ours (the output is written through pwrite, not read first) against numpy's
#    np.add(a, b, out=c) on an r+ memmap, which reads every page of c before overwriting it.
# usage: bash benches/residency.sh   env: SIZE_MIB=512 MATRIX_MIB=1024 COLS=1024 LIMIT=128 REPEAT=3 DIR=target/ooc
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-512}; MATRIX_MIB=${MATRIX_MIB:-1024}; COLS=${COLS:-1024}
LIMIT=${LIMIT:-128}; REPEAT=${REPEAT:-3}; DIR=${DIR:-target/ooc}
MEMLIMIT=$(pwd)/benches/memlimit
mkdir -p "$DIR"
cargo build --release --example add_files -q
cargo build --release --bench stream -q
STREAM_BIN=$(ls -t target/release/deps/stream-* | grep -v '\.d$' | head -1)
python3 -c 'import numpy' 2>/dev/null || python3 -m pip install --quiet numpy
A=$DIR/a.f32; B=$DIR/b.f32; OUT=$DIR/res_out.f32; M=$DIR/matrix.f32
make() { # path MiB
    [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" = $(($2 << 20)) ] && return
    python3 - "$1" "$2" <<'PY'
import sys, numpy as np
n = int(sys.argv[2]) << 18
with open(sys.argv[1], "wb") as f:
    for s in range(0, n, 1 << 24):
        (np.arange(s, min(n, s + (1 << 24))) % 1000).astype(np.float32).tofile(f)
PY
}
make "$A" "$SIZE_MIB"; make "$B" "$SIZE_MIB"; make "$M" "$MATRIX_MIB"
pct() { fincore -b -n -o RES,SIZE "$1" | awk '{printf "%.1f", ($2 > 0 ? 100 * $1 / $2 : 0)}'; }
NP=$(mktemp); trap 'rm -f "$NP"' EXIT
cat > "$NP" <<'PY'
import sys, numpy as np
a = np.memmap(sys.argv[1], dtype=np.float32, mode="r")
b = np.memmap(sys.argv[2], dtype=np.float32, mode="r")
c = np.memmap(sys.argv[3], dtype=np.float32, mode="w+", shape=a.shape)
np.add(a, b, out=c); c.flush()
PY
echo "== 1. a.f32 cached before c = a + b ($SIZE_MIB MiB each) under $LIMIT MiB: cached after (a / b / c)"
RES=$DIR/residency.tsv; : > "$RES"
for r in $(seq "$REPEAT"); do
    for tool in ndarray-mmap numpy; do
        rm -f "$OUT"; sync; echo 3 > /proc/sys/vm/drop_caches
        cat "$A" > /dev/null
        before=$(pct "$A")
        if [ $tool = numpy ]; then cmd=(python3 "$NP" "$A" "$B" "$OUT"); else cmd=(target/release/examples/add_files --machine --bounded "$A" "$B" "$OUT"); fi
        res=$(CG_QUIET=1 "$MEMLIMIT" "$LIMIT" -- "${cmd[@]}" 2>&1 | grep CGROUP_RESULT)
        wall=$(grep -o 'wall_s=[0-9.]*' <<< "$res" | cut -d= -f2)
        line="$tool $before $(pct "$A") $(pct "$B") $(pct "$OUT") $wall"
        echo "  $line" | awk '{printf "  %-13s a before %5s%%  after: a %5s%%  b %5s%%  c %5s%%  (%s s)\n", $1, $2, $3, $4, $5, $6}'
        echo "$line" >> "$RES"
    done
done
python3 - "$RES" <<'PY'
import sys, statistics as st
rows = {}
for l in open(sys.argv[1]):
    t, *v = l.split(); rows.setdefault(t, []).append([float(x) for x in v])
for t, vs in rows.items():
    med = [st.median(v[k] for v in vs) for k in range(5)]
    print(f"  median {t:<13} a cached after {med[1]:.1f}% (before {med[0]:.1f}%), b {med[2]:.1f}%, c {med[3]:.1f}%, wall {med[4]:.3f} s")
PY
rm -f "$OUT"
echo "== 2. sum_axis of a $MATRIX_MIB MiB C-order f32 matrix ($COLS columns) under $LIMIT MiB, caches dropped"
AX=$DIR/axis.tsv; : > "$AX"
for r in $(seq "$REPEAT"); do
    for kind in dd axis0 axis1; do
        case $kind in
            dd) cmd=(dd if="$M" of=/dev/null bs=8M status=none) ;;
            axis0) cmd=("$STREAM_BIN" sum_axis "$M" "$COLS" 0) ;;
            axis1) cmd=("$STREAM_BIN" sum_axis "$M" "$COLS" 1) ;;
        esac
        res=$(DROP_CACHES=1 CG_QUIET=1 "$MEMLIMIT" "$LIMIT" -- "${cmd[@]}" 2>&1 | grep CGROUP_RESULT)
        wall=$(grep -o 'wall_s=[0-9.]*' <<< "$res" | cut -d= -f2)
        read_mib=$(grep -o 'disk_read_mib=[0-9]*' <<< "$res" | cut -d= -f2)
        peak=$(grep -o 'peak_bytes=[0-9]*' <<< "$res" | cut -d= -f2)
        echo "$kind $wall $read_mib $peak" | tee -a "$AX" | awk '{printf "  %-6s %s s, read %s MiB, cgroup peak %.1f MiB\n", $1, $2, $3, $4 / 1048576}'
    done
done
python3 - "$AX" "$MATRIX_MIB" <<'PY'
import sys, statistics as st
rows = {}
for l in open(sys.argv[1]):
    k, w, r, p = l.split(); rows.setdefault(k, []).append((float(w), float(r), float(p)))
size = float(sys.argv[2])
dd = st.median(w for w, _, _ in rows["dd"])
for k in ("axis0", "axis1"):
    w = st.median(x[0] for x in rows[k]); r = st.median(x[1] for x in rows[k])
    print(f"  {k}: median {w:.3f} s = {w / dd:.2f}x the sequential read ({dd:.3f} s); read {r:.0f} MiB = {r / size:.2f}x the file")
PY
echo "== 3. c = a + b into an existing dense c ($SIZE_MIB MiB each) under $LIMIT MiB, caches dropped"
NP3=$(mktemp)
cat > "$NP3" <<'PY'
import sys, numpy as np
a = np.memmap(sys.argv[1], dtype=np.float32, mode="r")
b = np.memmap(sys.argv[2], dtype=np.float32, mode="r")
c = np.memmap(sys.argv[3], dtype=np.float32, mode="r+")
np.add(a, b, out=c); c.flush()
PY
EX=$DIR/existing.tsv; : > "$EX"
for r in $(seq "$REPEAT"); do
    for tool in ndarray-mmap numpy; do
        cp "$A" "$OUT"; sync
        if [ $tool = numpy ]; then cmd=(python3 "$NP3" "$A" "$B" "$OUT"); else cmd=("$STREAM_BIN" add_into "$A" "$B" "$OUT"); fi
        res=$(DROP_CACHES=1 CG_QUIET=1 "$MEMLIMIT" "$LIMIT" -- "${cmd[@]}" 2>&1 | grep CGROUP_RESULT)
        wall=$(grep -o 'wall_s=[0-9.]*' <<< "$res" | cut -d= -f2)
        read_mib=$(grep -o 'disk_read_mib=[0-9]*' <<< "$res" | cut -d= -f2)
        echo "$tool $wall $read_mib" | tee -a "$EX" | awk '{printf "  %-13s %s s, read %s MiB\n", $1, $2, $3}'
    done
done
rm -f "$OUT" "$NP3"
python3 - "$EX" "$SIZE_MIB" <<'PY'
import sys, statistics as st
rows = {}
for l in open(sys.argv[1]):
    t, w, r = l.split(); rows.setdefault(t, []).append((float(w), float(r)))
inputs = 2 * float(sys.argv[2])
for t, v in rows.items():
    w = st.median(x[0] for x in v); r = st.median(x[1] for x in v)
    print(f"  median {t:<13} {w:.3f} s, read {r:.0f} MiB = {r / inputs:.2f}x the inputs")
o = st.median(x[0] for x in rows["ndarray-mmap"]); n = st.median(x[0] for x in rows["numpy"])
print(f"  numpy / ndarray-mmap (wall) = {n / o:.2f}x")
PY
