#!/usr/bin/env bash
# Issue 20's targets in one run: Zarr v3 c = a + b and sum(a) against the field's libraries.
#
# Inputs: two 2-d float32 arrays of MIB MiB each (a smooth field, and Poisson counts stored as
# float32), written by zarr-python with 64 MiB and 1 MiB chunks, uncompressed, zstd (zarr-python's
# default: level 0) and blosc-lz4 with shuffle (numcodecs' default settings). Per set:
#   - warm (page cache): `c = a + b` by ndarray-mmap (`ops::add_into`, default options; codecs
#     run on a thread per array beside the stream), zarrs (its chunk loop, every core: benches/peers), tensorstore (blocks of rows read
#     and written through its futures) and dask.array + zarr-python (`da.store`, threads); the
#     output has the inputs' chunks and codec. Whole-array sum: ndarray-mmap against zarrs.
#   - cold (caches dropped, a LIMIT MiB cgroup; root): the add by ndarray-mmap and zarrs, and the
#     same add on raw files (the baseline of the 1 MiB uncompressed target); peak and bytes read.
# Medians of REPS runs, tools interleaved; each figure is printed as a ratio to its baseline.
# zarrs and zarr-python do not sync what they write, tensorstore and a raw file's close do: ours
# is timed both ways (`add_s`, `add_flush_s`) and compared like with like.
# usage: bash benches/zarr_peers.sh   env: MIB=512 REPS=3 LIMIT=128 DIR=target/zarr_peers
#        SETS="64:none 64:zstd 64:blosc-lz4 1:none 1:zstd 1:blosc-lz4" COLD=1
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-512}; REPS=${REPS:-3}; LIMIT=${LIMIT:-128}; COLD=${COLD:-1}
source benches/quiet.sh  # QUIET=1 (root): DAMON and free page reporting off for the run
DIR=$(realpath -m "${DIR:-target/zarr_peers}")
SETS=${SETS:-"64:none 64:zstd 64:blosc-lz4 1:none 1:zstd 1:blosc-lz4"}
MEMLIMIT=$(pwd)/benches/memlimit
python3 -c 'import zarr, dask, tensorstore' 2>/dev/null ||
    python3 -m pip install --quiet 'zarr>=3' 'dask[array]' tensorstore
cargo build --release --features zarr --bench zarr -q
OURS=$(ls -t target/release/deps/zarr-* | grep -v '\.d$' | head -1)
cargo build --release -q --manifest-path benches/peers/Cargo.toml --target-dir target/peers
ZARRS=target/peers/release/zarrs-peer
mkdir -p "$DIR"
PY="$DIR/peers.py"
cat > "$PY" <<'PYEOF'
import sys, time, numpy as np, zarr

def codecs(name):
    if name == "none":
        return None
    if name == "zstd":
        return "auto"  # zarr-python's default: zstd, level 0
    return [zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]

def make(dir, mib, chunk_mib, codec):
    rows, cols = mib * 2**18 // 8192, 8192
    chunks = (chunk_mib * 2**18 // 8192, 8192) if chunk_mib >= 4 else (512, 512 * chunk_mib)
    rng = np.random.default_rng(7)
    a = zarr.create_array(f"{dir}/a.zarr", shape=(rows, cols), chunks=chunks, dtype="f4",
                          compressors=codecs(codec), overwrite=True)
    b = zarr.create_array(f"{dir}/b.zarr", shape=(rows, cols), chunks=chunks, dtype="f4",
                          compressors=codecs(codec), overwrite=True)
    raw_a, raw_b = open(f"{dir}/a.f32", "wb"), open(f"{dir}/b.f32", "wb")
    j = np.arange(cols, dtype=np.float64)
    step = max(chunks[0], 2048)
    for r in range(0, rows, step):
        i = np.arange(r, min(r + step, rows), dtype=np.float64)[:, None]
        field = (100 * np.sin(i / 700) * np.cos(j / 300) + 0.5 * np.sin(i * j / 5e6)).astype("f4")
        counts = rng.poisson(5.0, size=field.shape).astype("f4")
        a[r:r + len(i)] = field
        b[r:r + len(i)] = counts
        field.tofile(raw_a); counts.tofile(raw_b)
    raw_a.close(); raw_b.close()

def tensorstore_add(dir):
    import tensorstore as ts
    t = time.perf_counter()
    spec = lambda n: {"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{dir}/{n}"}}
    a = ts.open(spec("a.zarr")).result()
    b = ts.open(spec("b.zarr")).result()
    c = ts.open({**spec("c.zarr"), "metadata": a.spec().to_json()["metadata"]},
                create=True, delete_existing=True).result()
    rows = a.shape[0]
    step = max(a.chunk_layout.read_chunk.shape[0], 2048)
    pending = None
    for r in range(0, rows, step):
        fa, fb = a[r:r + step].read(), b[r:r + step].read()
        x = fa.result() + fb.result()
        if pending is not None:
            pending.result()
        pending = c[r:r + step].write(x)
    pending.result()
    print(f"add_s {time.perf_counter() - t:.4f}")

def dask_add(dir):
    import dask, dask.array as da
    t = time.perf_counter()
    a = zarr.open_array(f"{dir}/a.zarr", mode="r")
    b = zarr.open_array(f"{dir}/b.zarr", mode="r")
    c = zarr.create_array(f"{dir}/c.zarr", shape=a.shape, chunks=a.chunks, dtype="f4",
                          compressors=a.compressors or None, overwrite=True)
    x = da.from_zarr(a) + da.from_zarr(b)
    with dask.config.set(scheduler="threads"):
        da.store(x, c, lock=False)
    print(f"add_s {time.perf_counter() - t:.4f}")

def check(dir):
    a = zarr.open_array(f"{dir}/a.zarr", mode="r")
    b = zarr.open_array(f"{dir}/b.zarr", mode="r")
    c = zarr.open_array(f"{dir}/c.zarr", mode="r")
    assert c.compressors == a.compressors, (c.compressors, a.compressors)
    for r in range(0, a.shape[0], 4096):
        if not np.array_equal(c[r:r + 4096], a[r:r + 4096] + b[r:r + 4096]):
            sys.exit(f"c != a + b at rows {r}..")

def stored(dir):
    import os
    total = 0
    for name in ("a.zarr", "b.zarr"):
        for root, _, files in os.walk(f"{dir}/{name}"):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(total)

cmd = sys.argv[1]
if cmd == "make":
    make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
elif cmd == "tensorstore":
    tensorstore_add(sys.argv[2])
elif cmd == "dask":
    dask_add(sys.argv[2])
elif cmd == "check":
    check(sys.argv[2])
elif cmd == "stored":
    stored(sys.argv[2])
PYEOF

secs() { awk -v k="$1" '$1 == k {print $2}'; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
warm() { cat "$1"/a.zarr/c/* "$1"/a.zarr/c/*/* "$1"/b.zarr/c/* "$1"/b.zarr/c/*/* > /dev/null 2>&1 || true; }
RUNS="$DIR/runs"; : > "$RUNS"
for set in $SETS; do
    chunk=${set%%:*}; codec=${set#*:}; D="$DIR/$chunk-$codec"
    if [ ! -f "$D/made-$MIB" ]; then
        rm -rf "$D"; mkdir -p "$D"
        python3 "$PY" make "$D" "$MIB" "$chunk" "$codec"
        touch "$D/made-$MIB"
    fi
    bytes=$(python3 "$PY" stored "$D")
    echo "$set stored - $bytes" >> "$RUNS"
    ratio=$(python3 -c "print(f'{2 * $MIB * 2**20 / $bytes:.2f}')")
    echo "== set $set: 2 x $MIB MiB, $chunk MiB chunks, $codec (stored ratio $ratio)"
    for r in $(seq "$REPS"); do
        # warm: the inputs in the page cache; the tools' order turns each repetition
        tools=(ours zarrs tensorstore dask)
        for k in $(seq 0 3); do
            tool=${tools[$(( (k + r) % 4 ))]}
            rm -rf "$D/c.zarr"; drop; warm "$D"
            case $tool in
                ours) out=$("$OURS" peer_add "$D" a.zarr b.zarr c.zarr "$codec") ;;
                zarrs) out=$("$ZARRS" add "$D" a.zarr b.zarr c.zarr) ;;
                tensorstore) out=$(python3 "$PY" tensorstore "$D") ;;
                dask) out=$(python3 "$PY" dask "$D") ;;
            esac
            [ "$r" = 1 ] && python3 "$PY" check "$D"
            echo "$set warm_add $tool $(secs add_s <<< "$out")" | tee -a "$RUNS"
            [ "$tool" = ours ] && echo "$set warm_add_sync $tool $(secs add_flush_s <<< "$out")" | tee -a "$RUNS"
        done
        warm "$D"
        for tool in ours zarrs; do
            case $tool in
                ours) out=$("$OURS" peer_sum "$D" a.zarr) ;;
                zarrs) out=$("$ZARRS" sum "$D" a.zarr) ;;
            esac
            echo "$set warm_sum $tool $(secs sum_s <<< "$out")" | tee -a "$RUNS"
        done
        [ "$COLD" = 1 ] || continue
        cold=(ours zarrs raw)
        for k in 0 1 2; do
            tool=${cold[$(( (k + r) % 3 ))]}
            [ "$tool" = raw ] && [ "$codec" != none ] && continue
            rm -rf "$D/c.zarr" "$D/c.f32"
            case $tool in
                ours) cmd=("$OURS" peer_add "$D" a.zarr b.zarr c.zarr "$codec") ;;
                zarrs) cmd=("$ZARRS" add "$D" a.zarr b.zarr c.zarr) ;;
                raw) cmd=("$OURS" add_raw "$D") ;;
            esac
            out=$(DROP_CACHES=1 CG_QUIET=1 "$MEMLIMIT" "$LIMIT" -- "${cmd[@]}" 2>&1) || true
            s=$(secs add_s <<< "$out"); s=${s:-OOM}
            echo "$set cold_add $tool $s $(grep -o 'peak_bytes=[0-9]*' <<< "$out" | tail -1) $(grep -o 'disk_read_mib=[0-9]*' <<< "$out" | tail -1)" | tee -a "$RUNS"
            [ "$tool" = ours ] && echo "$set cold_add_sync $tool $(secs add_flush_s <<< "$out")" | tee -a "$RUNS"
        done
    done
done
python3 - "$RUNS" "$LIMIT" "$MIB" <<'PYEOF'
import sys, statistics as st
rows, limit, mib = {}, int(sys.argv[2]), int(sys.argv[3])
extra = {}
for line in open(sys.argv[1]):
    f = line.split() + ["OOM"]  # a run the cgroup killed prints no seconds
    set_, kind, tool, secs = f[:4]
    if kind == "stored":
        extra[(set_, "stored")] = int(secs); continue
    if secs == "OOM" or secs == "":
        rows.setdefault((set_, kind, tool), []).append(float("inf")); continue
    rows.setdefault((set_, kind, tool), []).append(float(secs))
    for kv in f[4:-1]:
        k, v = kv.split("=")
        extra.setdefault((set_, kind, tool, k), []).append(int(v))
med = {k: st.median(v) for k, v in rows.items()}
sets = list(dict.fromkeys(k[0] for k in rows))
def ok(x, target): return "ok" if x >= target else "MISS"
print("\n| set | figure | ndarray-mmap | baseline | ratio (baseline / ours) | target |")
print("|---|---|---|---|---|---|")
for s in sets:
    for tool, target in (("zarrs", 1.0), ("tensorstore", 2.0), ("dask", 3.0)):
        # tensorstore syncs what it writes (file_io_sync): against it, ours with the flush.
        kind = "warm_add_sync" if tool == "tensorstore" else "warm_add"
        ours, b = med.get((s, kind, "ours")), med.get((s, "warm_add", tool))
        if ours and b:
            how = " (+ flush)" if tool == "tensorstore" else ""
            print(f"| {s} | warm add{how} | {ours:.3f} s | {tool} {b:.3f} s | {b / ours:.2f}x {ok(b / ours, target)} | >= {target}x |")
    o, z = med.get((s, "warm_sum", "ours")), med.get((s, "warm_sum", "zarrs"))
    if o and z:
        print(f"| {s} | warm sum | {o:.3f} s | zarrs {z:.3f} s | {z / o:.2f}x {ok(z / o, 1.0)} | >= 1.0x |")
    o, z = med.get((s, "cold_add", "ours")), med.get((s, "cold_add", "zarrs"))
    if o == float("inf"):
        print(f"| {s} | cold add, {limit} MiB | OOM-killed (whole chunks decoded) | zarrs {'OOM-killed' if z == float('inf') else z} | MISS | >= 1.0x |")
    elif o:
        zs = "OOM-killed" if z == float("inf") else f"{z:.3f} s"
        zr = "ok (peer failed)" if z == float("inf") else f"{z / o:.2f}x {ok(z / o, 1.0)}"
        print(f"| {s} | cold add, {limit} MiB | {o:.3f} s | zarrs {zs} | {zr} | >= 1.0x |")
        peak = max(extra.get((s, "cold_add", "ours", "peak_bytes"), [0])) / 2**20
        print(f"| {s} | cold peak (max) | {peak:.0f} MiB | limit {limit} MiB | {peak / limit:.2f} {'ok' if peak <= 0.75 * limit else 'MISS'} | <= 0.75 |")
        rd = st.median(extra.get((s, "cold_add", "ours", "disk_read_mib"), [0]))
        sm = extra.get((s, "stored"), 1) / 2**20
        print(f"| {s} | cold bytes read | {rd} MiB | inputs stored {sm:.0f} MiB | {rd / sm:.2f}x {'ok' if rd <= 1.1 * sm else 'MISS'} | <= 1.1x |")
        r, os_ = med.get((s, "cold_add", "raw")), med.get((s, "cold_add_sync", "ours"))
        if r and os_:
            # The raw add closes its output (a sync): against it, ours with the flush.
            print(f"| {s} | cold add + flush vs raw files | {os_:.3f} s | raw add + close {r:.3f} s | {os_ / r:.2f}x of raw {'ok' if os_ <= 1.2 * r else 'MISS'} | <= 1.2x |")
for s in sets:
    if s.endswith(":blosc-lz4"):
        u = s.split(":")[0] + ":none"
        o, b = med.get((u, "cold_add_sync", "ours")), med.get((s, "cold_add_sync", "ours"))
        if o and b and b != float("inf"):
            print(f"| {s} | cold blosc-lz4 add vs our uncompressed | {b:.3f} s | {o:.3f} s | {b / o:.2f}x {'ok' if b <= o else 'MISS'} | <= 1.0x |")
PYEOF
