#!/usr/bin/env bash
# Builds the Swift OSU benchmarks (release) and their C twins (mpicc -O2), runs them
# interleaved C/Swift for several rounds on 2 ranks, and prints a side-by-side table of
# medians with the Swift/C ratio per size.
#
#   bash benchmarks/run-osu.sh [rounds=5] [tests="latency bw bibw allreduce io put get iallreduce"]
#   (put: osu_put_latency, get: osu_get_bw, one-sided with a shared lock and flushes)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
tests=${2:-"latency bw bibw allreduce io put get iallreduce"}
out=benchmarks/out
mkdir -p "$out"

bash scripts/setup.sh
for t in $tests; do swift build -c release --product "osu-$t" >/dev/null; done
bin=$(swift build -c release --show-bin-path)
for t in $tests; do mpicc -O2 -o "$out/osu_$t" "benchmarks/osu/c/osu_$t.c"; done

flags=(-np 2 --bind-to core --map-by core)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
# Shared memory only, chosen up front, as an HPC user would for an on-node comparison.
flags+=(--mca pml ob1 --mca btl self,vader)

for t in $tests; do
  for r in $(seq 1 "$rounds"); do
    # Each goes first every other round: what one leaves behind (the io test's dirty pages
    # being written back) must not always fall on the other.
    if (( r % 2 )); then
      mpirun "${flags[@]}" "$out/osu_$t" > "$out/c-$t-$r.txt"
      mpirun "${flags[@]}" "$bin/osu-$t" > "$out/swift-$t-$r.txt"
    else
      mpirun "${flags[@]}" "$bin/osu-$t" > "$out/swift-$t-$r.txt"
      mpirun "${flags[@]}" "$out/osu_$t" > "$out/c-$t-$r.txt"
    fi
  done
done

python3 - "$out" "$rounds" $tests <<'PY'
import statistics, sys
out, rounds, tests = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def read(path):
    rows = {}
    for line in open(path):
        if line.startswith("#") or not line.strip(): continue
        size, value = line.split()
        rows[int(size)] = float(value)
    return rows
higher_is_better = {"bw": True, "bibw": True, "io": True, "get": True}
for t in tests:
    c = [read(f"{out}/c-{t}-{r}.txt") for r in range(1, rounds + 1)]
    s = [read(f"{out}/swift-{t}-{r}.txt") for r in range(1, rounds + 1)]
    unit = "MB/s" if t in higher_is_better else "us"
    print(f"# osu_{t}: medians of {rounds} interleaved runs, 2 ranks, {unit}")
    print(f"{'# Size':<10}{'C':>14}{'Swift':>14}{'Swift/C':>10}")
    for size in sorted(c[0]):
        cm = statistics.median(r[size] for r in c if size in r)
        sm = statistics.median(r[size] for r in s if size in r)
        print(f"{size:<10}{cm:>14.2f}{sm:>14.2f}{(sm / cm if cm else float('nan')):>10.3f}")
    print()
PY
