#!/usr/bin/env bash
# Runs test/ops/haproxy-affinity.test.ts (three replicas behind HAProxy, one SIGKILLed) RUNS times
# in a row while BUSY busy-loop processes keep the cores busy: the replica-kill race (HAProxy still
# holding a connection to the dead replica, the health check not yet run) shows up on a loaded
# machine, not on an idle one. Bounded: each run by PER_RUN_S, the busy loops by the whole budget;
# the busy loops are stopped by PID on exit. Prints one line per run and the totals.
#
#   scripts/haproxy-kill-stress.sh                 # 20 runs, 2 busy loops
#   RUNS=5 BUSY=0 scripts/haproxy-kill-stress.sh   # idle machine
#
# Logs of every run are kept in $OUT (printed at the end).
set -u
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
busy=${BUSY:-2}
per_run=${PER_RUN_S:-180}
out=${OUT:-$(mktemp -d /tmp/haproxy-kill-stress.XXXXXX)}
mkdir -p "$out"

pids=()
stop_busy () { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap stop_busy EXIT
for _ in $(seq 1 "$busy"); do
  timeout $((runs * per_run)) node -e 'for (;;) {}' &
  pids+=($!)
done

pass=0
fail=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  # Own process group, so that whatever a run leaves behind (replicas, HAProxy) is stopped with it.
  TAP_TIMEOUT=$((per_run - 10)) setsid timeout "$per_run" node --import tsx test/ops/haproxy-affinity.test.ts >"$out/run-$i.tap" 2>&1 &
  run_pid=$!
  if wait "$run_pid"; then
    pass=$((pass + 1)); verdict=ok
  else
    fail=$((fail + 1)); verdict=FAIL
  fi
  kill -- -"$run_pid" 2>/dev/null
  inflight=$(grep -o 'in flight at the kill: [^#]*' "$out/run-$i.tap" | head -1)
  failed=$(grep -c '^ *not ok' "$out/run-$i.tap")
  slowest=$(grep -o 'slowest request through HAProxy after the kill: [0-9]* ms' "$out/run-$i.tap" | grep -o '[0-9]* ms')
  echo "run $i: $verdict in $(( $(date +%s) - start )) s, failed assertions: $failed, ${inflight:-in flight at the kill: ?}, slowest after the kill: ${slowest:-?}"
done
echo "runs: $runs, passed: $pass, failed: $fail, busy loops: $busy, logs: $out"
[ "$fail" -eq 0 ]
