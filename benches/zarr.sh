#!/usr/bin/env bash
# Zarr figures (feature zarr), in one run:
# - open cost against chunk count (zarr::open alone; open + mapping every chunk);
# - the seed experiment on Zarr arrays (2 × SIZE_MIB in, 1 out, CHUNK_MIB chunks) against the
#   same add on raw files, under a LIMIT MiB cgroup with caches dropped (root; benches/memlimit),
#   interleaved REPEAT times, medians;
# - zarr-python reading the same array into memory, in the page cache, against our
#   open + map + sum of every chunk.
# usage: bash benches/zarr.sh     env: SIZE_MIB=512 CHUNK_MIB=64 LIMIT=128 REPEAT=3 DIR=target/zarrbench
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-512}; CHUNK_MIB=${CHUNK_MIB:-64}; LIMIT=${LIMIT:-128}; REPEAT=${REPEAT:-3}
DIR=${DIR:-target/zarrbench}
MEMLIMIT=$(pwd)/benches/memlimit
python3 -c 'import zarr' 2>/dev/null || python3 -m pip install --quiet 'zarr>=3'
cargo build --release --features zarr --bench zarr -q
BIN=$(ls -t target/release/deps/zarr-* | grep -v '\.d$' | head -1)
rm -rf "$DIR"; mkdir -p "$DIR"
echo "== open cost (64 MiB f32), medians"
"$BIN" open "$DIR"
"$BIN" make "$DIR" "$SIZE_MIB" "$CHUNK_MIB"
echo "== c = a + b, 2 x $SIZE_MIB MiB, $CHUNK_MIB MiB chunks, ${LIMIT} MiB cgroup, caches dropped"
: > "$DIR/runs"
for r in $(seq "$REPEAT"); do
    for kind in add add_chunks add_raw; do
        rm -rf "$DIR/c.zarr" "$DIR/c.f32"
        out=$(DROP_CACHES=1 CG_QUIET=1 "$MEMLIMIT" "$LIMIT" -- "$BIN" "$kind" "$DIR" 2>&1)
        echo "$kind $(awk '$1 == "add_s" {print $2}' <<< "$out") $(grep -o 'peak_bytes=[0-9]*' <<< "$out") $(grep -o 'disk_read_mib=[0-9]*' <<< "$out")" | tee -a "$DIR/runs"
        grep -q '^flush_s' <<< "$out" && echo "  (of which the final flush: $(awk '$1 == "flush_s" {print $2}' <<< "$out") s)"
    done
done
python3 - "$DIR/runs" <<'PYEOF'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    kind, secs, peak, read = line.split()
    rows.setdefault(kind, []).append(float(secs))
z, k, r = (st.median(rows[x]) for x in ("add", "add_chunks", "add_raw"))
print(f"  zarr add (whole arrays) {z:.3f} s, zarr add (loop over chunks) {k:.3f} s, raw add {r:.3f} s")
print(f"  zarr / raw = {z / r:.2f}x (whole arrays), {k / r:.2f}x (loop over chunks)")
PYEOF
echo "== reading the whole array in the page cache: zarr-python vs ours (open + ops::sum over every chunk)"
python3 - "$DIR/a.zarr" <<'PYEOF'
import sys, time, statistics, zarr
ts = []
for _ in range(5):
    t = time.perf_counter(); a = zarr.open_array(sys.argv[1])[...]; ts.append(time.perf_counter() - t)
print(f"  zarr-python open_array(...)[...]   {statistics.median(ts):.4f} s")
PYEOF
echo "  ours: $("$BIN" read "$DIR")"
