#!/usr/bin/env bash
# Issue 19's matrix: the default options (Paging::Auto) against each forced policy (Cached,
# Bounded, each with and without write_through) and numpy, for c = a + b (ops::add_into) and
# d = 2a + 3b + c (ops::Zip), f32 files on disk, in interleaved runs; medians printed with
# their ratios to the baselines measured in the same run.
#  1. warm: the inputs in the page cache (WARM_MIB each), no flush; vs numpy's
#     np.add(a, b, out=c) / the formula on np.memmap (mode w+);
#  2. warm + close(): the same, the output flushed and closed; vs numpy with c.flush();
#  3. cold: caches dropped, COLD_MIB each, close(); peak resident memory against the bytes
#     touched (inputs + output);
#  4. cold under a LIMIT_MIB cgroup (root, cgroup v1, benches/memlimit), WARM_MIB each, close():
#     against the disk's all-at-once floor (one dd per file at once: the inputs read, the
#     output written and synced), peak cgroup memory, bytes read;
#  and in every cell the share of `a` still cached after the op (a warm input stays warm).
# usage: bash benches/policy_matrix.sh   env: WARM_MIB=512 COLD_MIB=1024 LIMIT_MIB=128 REPS=3
#        CELLS="1 2 3 4" KINDS="add formula" SETTLE=2 (seconds before each run)
#        DIR=target/policy (must be on a disk, not tmpfs)
#        QUIET=1: turn this VM's DAMON reclaim and free page reporting off for the run and
#        back on after (benches/quiet.sh says why); DAMON_OFF=1: DAMON only. The engine sees
#        the reporting (room::fresh_memory_dear) and decides differently with it off.
set -euo pipefail
cd "$(dirname "$0")/.."
WARM_MIB=${WARM_MIB:-512}; COLD_MIB=${COLD_MIB:-1024}; LIMIT_MIB=${LIMIT_MIB:-128}
REPS=${REPS:-3}; SETTLE=${SETTLE:-2}; CELLS=${CELLS:-1 2 3 4}; KINDS=${KINDS:-add formula}; DIR=${DIR:-target/policy}
POLICIES="default cached cached_wt bounded bounded_wt"
[ "$(id -u)" = 0 ] || { echo "$0: needs root (drop_caches, cgroups)" >&2; exit 2; }
mkdir -p "$DIR"
. benches/quiet.sh
cargo build --release --bench stream -q
BIN=$(ls -t target/release/deps/stream-* | grep -v '\.d$' | head -1)
python3 -c 'import numpy' 2>/dev/null || python3 -m pip install --quiet numpy
ROWS=$DIR/rows.tsv; : > "$ROWS"
make() { # path MiB seed
    [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" = $(($2 << 20)) ] && return
    python3 - "$@" <<'PY'
import sys, numpy as np
n, k = int(sys.argv[2]) << 18, int(sys.argv[3])
with open(sys.argv[1], "wb") as f:
    for s in range(0, n, 1 << 24):
        ((np.arange(s, min(n, s + (1 << 24))) * k) % 1000).astype(np.float32).tofile(f)
PY
}
NP=$DIR/np.py
cat > "$NP" <<'PY'
import sys, time, numpy as np
kind, close, out, *ins = sys.argv[1:]
a, b, *rest = [np.memmap(p, dtype=np.float32, mode="r") for p in ins]
t = time.perf_counter()
c = np.memmap(out, dtype=np.float32, mode="w+", shape=a.shape)
if kind == "add":
    np.add(a, b, out=c)
else:  # numpy's natural spelling, with one temporary per step
    np.multiply(a, 2, out=c); c += 3 * b; c += rest[0]
if close == "1":
    c.flush(); del c
print(f"seconds {time.perf_counter() - t:.4f}")
PY
cached_share() { fincore -b -n -o RES,SIZE "$1" | awk '{printf "%.2f", ($2 > 0 ? $1 / $2 : 0)}'; }
# one run: cell kind tool size close limit -> a row in $ROWS
run() {
    local cell=$1 kind=$2 tool=$3 mib=$4 close=$5 limit=$6
    local a=$DIR/a$mib.f32 b=$DIR/b$mib.f32 c3=$DIR/c$mib.f32 out=$DIR/out.f32
    local ins=("$a" "$b"); [ "$kind" = formula ] && ins+=("$c3")
    rm -f "$out"; sync
    # Every run starts from the same page cache: empty (cold), or holding the inputs only (warm).
    echo 3 > /proc/sys/vm/drop_caches
    [ "$cell" -ge 3 ] || cat "${ins[@]}" > /dev/null
    # Let the memory freed above settle first: in a VM that hands freed pages back to its
    # host (virtio-balloon free page reporting), that work otherwise lands in the next run.
    sleep "$SETTLE"
    local cmd
    case $tool in
        numpy) cmd=(python3 "$NP" "$kind" "$close" "$out" "${ins[@]}") ;;
        dd) cmd=(bash -c 'for f in "${@:2}"; do dd if="$f" of=/dev/null bs=8M status=none & done
                 dd if=/dev/zero of="$1" bs=8M count='$((mib / 8))' conv=fdatasync status=none; wait' _ "$out" "${ins[@]}") ;;
        *) cmd=("$BIN" policy "$kind" "$tool" "$close" "${ins[@]}" "$out") ;;
    esac
    local o secs peak="" readm="" chose=- rss=-
    if [ "$limit" -gt 0 ]; then
        o=$(CG_QUIET=1 benches/memlimit "$limit" -- /usr/bin/time -f "elapsed %e" "${cmd[@]}" 2>&1)
        peak=$(grep -o 'peak_bytes=[0-9]*' <<< "$o" | cut -d= -f2)
        readm=$(grep -o 'disk_read_mib=[0-9]*' <<< "$o" | cut -d= -f2)
    else
        o=$(/usr/bin/time -f "elapsed %e" "${cmd[@]}" 2>&1)
    fi
    secs=$(awk '/^seconds /{print $2; exit}' <<< "$o"); [ -n "$secs" ] || secs=$(awk '/^elapsed /{print $2}' <<< "$o")
    chose=$(awk '/^chose /{print $2}' <<< "$o" | cut -d: -f1); [ -n "$chose" ] || chose=-
    rss=$(awk '/^vmhwm_mib /{print $2}' <<< "$o"); [ -n "$rss" ] || rss=-
    [ -n "$readm" ] || readm=$(awk '/^read_mib /{print $2}' <<< "$o"); [ -n "$readm" ] || readm=-
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cell" "$kind" "$tool" "$secs" "$rss" "${peak:--}" \
        "$readm" "$(cached_share "$a")" "$chose" "$mib" | tee -a "$ROWS" >&2
}
for mib in $WARM_MIB $COLD_MIB; do
    make "$DIR/a$mib.f32" "$mib" 1; make "$DIR/b$mib.f32" "$mib" 7; make "$DIR/c$mib.f32" "$mib" 13
done
echo "cell kind tool seconds vmhwm_mib cgroup_peak read_mib a_cached_after chose mib" >&2
# The tools' order turns by one each repetition, so that none always runs first.
rotate() { local k=$1; shift; local a=("$@"); local n=${#a[@]}; for i in $(seq 0 $((n - 1))); do echo "${a[$(((i + k) % n))]}"; done; }
for r in $(seq "$REPS"); do
    for cell in $CELLS; do for kind in $KINDS; do
        case $cell in
            1|2) for t in $(rotate "$r" $POLICIES numpy); do run "$cell" "$kind" "$t" "$WARM_MIB" $((cell - 1)) 0; done ;;
            3) for t in $(rotate "$r" $POLICIES); do run 3 "$kind" "$t" "$COLD_MIB" 1 0; done ;;
            4) for t in $(rotate "$r" default bounded dd); do run 4 "$kind" "$t" "$WARM_MIB" 1 "$LIMIT_MIB"; done ;;
        esac
    done; done
done
rm -f "$DIR/out.f32"
python3 - "$ROWS" "$LIMIT_MIB" <<'PY'
import sys, statistics as st
rows = {}
for l in open(sys.argv[1]):
    cell, kind, tool, secs, rss, peak, readm, warm, chose, mib = l.rstrip("\n").split("\t")
    rows.setdefault((cell, kind, tool), []).append((float(secs), rss, peak, readm, float(warm), chose, int(mib)))
limit = int(sys.argv[2])
med = lambda k, i=0: st.median(float(x[i]) for x in rows[k])
names = {"1": "warm, no flush", "2": "warm + close()", "3": "cold + close()", "4": f"cold under {limit} MiB + close()"}
ok_all = True
def check(ok, what):
    global ok_all
    ok_all &= ok
    return f"{'ok  ' if ok else 'MISS'} {what}"
for cell in sorted({c for c, _, _ in rows}):
    for kind in sorted({k for c, k, _ in rows if c == cell}):
        tools = [t for c, k, t in rows if c == cell and k == kind]
        print(f"== {names[cell]}: {kind} ({rows[(cell, kind, tools[0])][0][6]} MiB per array; medians of {len(rows[(cell, kind, tools[0])])})")
        d = med((cell, kind, "default"))
        for t in tools:
            x = rows[(cell, kind, t)]
            extra = ""
            if x[0][1] != "-": extra += f"  peak RSS {st.median(float(v[1]) for v in x):.0f} MiB"
            if x[0][2] != "-": extra += f"  cgroup peak {st.median(float(v[2]) for v in x) / 2**20:.0f} MiB"
            if x[0][3] != "-": extra += f"  read {st.median(float(v[3]) for v in x):.0f} MiB"
            chose = ",".join(sorted({v[5] for v in x})) if x[0][5] != "-" else ""
            print(f"  {t:<11} {med((cell, kind, t)):7.3f} s  default/this {d / med((cell, kind, t)):5.2f}x  a cached after {min(v[4] for v in x):.2f}{extra}  {chose}")
        forced = [t for t in ("cached", "cached_wt", "bounded", "bounded_wt") if (cell, kind, t) in rows]
        if forced:
            best = min(forced, key=lambda t: med((cell, kind, t)))
            print("  " + check(d <= 1.1 * med((cell, kind, best)), f"default within 1.1x of the best forced policy ({best}): {d / med((cell, kind, best)):.2f}x"))
        n_arrays = 3 if kind == "add" else 4
        size = rows[(cell, kind, "default")][0][6]
        if cell == "1":
            print("  " + check(med((cell, kind, "numpy")) / d >= 1.0, f"numpy / default >= 1.0: {med((cell, kind, 'numpy')) / d:.2f}x"))
        if cell == "2":
            print("  " + check(med((cell, kind, "numpy")) / d >= 1.3, f"numpy (+ flush) / default >= 1.3: {med((cell, kind, 'numpy')) / d:.2f}x"))
        if cell == "3":
            rss = st.median(float(v[1]) for v in rows[(cell, kind, "default")])
            print("  " + check(rss <= n_arrays * size / 4, f"default peak RSS {rss:.0f} MiB <= 1/4 of {n_arrays * size} MiB touched"))
        if cell == "4":
            dd = med((cell, kind, "dd"))
            peak = st.median(float(v[2]) for v in rows[(cell, kind, "default")]) / 2**20
            readm = st.median(float(v[3]) for v in rows[(cell, kind, "default")])
            print("  " + check(d <= 1.1 * dd, f"default / dd floor {d / dd:.2f}x (<= 1.1)"))
            print("  " + check(peak <= 0.75 * limit, f"cgroup peak {peak:.0f} MiB <= 0.75 x {limit}"))
            print("  " + check(readm <= 1.1 * (n_arrays - 1) * size, f"read {readm:.0f} MiB <= 1.1 x inputs ({(n_arrays - 1) * size} MiB)"))
        if cell in ("1", "2"):
            warm = min(v[4] for t in tools for v in rows[(cell, kind, t)] if t != "numpy")
            print("  " + check(warm >= 0.99, f"a warm before stays warm: {warm:.2f} of it cached after (worst run)"))
print("every cell holds" if ok_all else "some cells MISS (see above)")
PY
