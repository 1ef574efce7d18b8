#!/usr/bin/env bash
# Runs a command (the test suite) and ends it if its output stays silent too long, after
# printing what hangs: the last test that started, the process tree, and the stacks of every
# thread of the test process. Without it a hung test shows only as CI running out of time.
#
#   bash scripts/watchdog.sh SECONDS COMMAND [ARGS...]
set -uo pipefail
silence=$1; shift
log=$(mktemp /tmp/cohort-watchdog.XXXXXX)
trap 'rm -f "$log"' EXIT

"$@" > >(tee -a "$log") 2>&1 &
command_pid=$!

diagnose() {
  echo "watchdog: no output for ${silence} s; the last test that started:"
  grep "' started at " "$log" | tail -1
  echo "watchdog: processes:"
  ps --ppid 2 -p 2 --deselect -o pid,ppid,stat,etime,args --forest | cut -c1-240
  for pid in $(pgrep -f '\.xctest'); do
    echo "watchdog: the stacks of test process $pid:"
    if command -v gdb >/dev/null; then
      stacks=$(timeout 120 gdb -p "$pid" -batch -ex "thread apply all bt 30" 2>/dev/null | grep -E '^(Thread|#)' | cut -c1-240)
      # The test's own frames first (its output is block-buffered: the last test printed may be an earlier one).
      echo "watchdog: frames in the tests:"
      grep -E '/Tests/' <<<"$stacks" || echo "(none)"
      echo "$stacks"
    else
      echo "(gdb missing: bash scripts/setup.sh installs it)"
    fi
  done
}

while kill -0 "$command_pid" 2>/dev/null; do
  sleep 10
  quiet=$(( $(date +%s) - $(stat -c %Y "$log") ))
  if [ "$quiet" -ge "$silence" ]; then
    diagnose
    echo "watchdog: ending the test processes"
    pkill -9 -f '\.xctest' || true
    sleep 5
    kill -9 "$command_pid" 2>/dev/null || true
    wait "$command_pid" 2>/dev/null
    exit 124
  fi
done
wait "$command_pid"
