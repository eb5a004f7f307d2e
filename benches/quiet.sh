# Sourced by the benchmark scripts: with QUIET=1 (root), switch off for the run, and back on at
# exit, the two things in this kind of VM that move pages behind a benchmark's back:
#  - DAMON proactive reclaim (kdamond 0, a `pageout` scheme on physical memory): it pages out
#    cache it thinks cold, 1-2% of a warm input;
#  - free page reporting (virtio-balloon): pages freed by one run (drop_caches, an exiting
#    process) are handed back to the host, and the next run that allocates them pays a host
#    fault each; writing 512 MiB into the page cache took 0.36-0.67 s with it and 0.28-0.38 s
#    without, in one set of runs here.
# DAMON_OFF=1 switches off DAMON only (the VM's memory as it is otherwise).
quiet_restore=()
if [ "${QUIET:-0}" = 1 ] || [ "${DAMON_OFF:-0}" = 1 ]; then
    damon=/sys/kernel/mm/damon/admin/kdamonds/0/state
    if [ "$(cat "$damon" 2>/dev/null)" = on ] && echo off > "$damon"; then
        quiet_restore+=("echo on > $damon")
        echo "(quiet: DAMON reclaim off for this run)"
    fi
    order=/sys/module/page_reporting/parameters/page_reporting_order
    if [ "${QUIET:-0}" = 1 ] && [ -w "$order" ]; then
        old=$(cat "$order")
        # An order above the largest (10) leaves no free block to report.
        if echo 11 > "$order" 2>/dev/null; then
            quiet_restore+=("echo $old > $order")
            echo "(quiet: free page reporting off for this run)"
        else
            echo "(quiet: this kernel would not turn free page reporting off)"
        fi
    fi
    quiet_undo() { local c; for c in "${quiet_restore[@]}"; do eval "$c"; done; }
    trap quiet_undo EXIT
fi
