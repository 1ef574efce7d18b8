#!/usr/bin/env bash
# kill -9 of `cohort serve` while 2 tasks run on each of N hosts, then a restart: how long the
# new server takes to take them over (listening again, its recovery done), how late it records
# each adopted task after the task's own end (written by the first server's agents), whether
# any ran twice, and the CPU the watching costs (server and agents) while they run on.
#
#   bash benchmarks/cluster/run-adoption.sh [hosts=32] [seconds=20]
set -euo pipefail
cd "$(dirname "$0")/../.."
hosts=${1:-32}
seconds=${2:-20}
bash scripts/setup.sh >/dev/null 2>&1
for product in cohort cohort-spawner cohort-rank-env cohort-rsh; do swift build -c release --product "$product" >/dev/null 2>&1; done
bin=$(swift build -c release --show-bin-path)
export COHORT_VC_DIR=/tmp/cohort-vc-bench
bash scripts/virtual-cluster.sh up "$hosts" >/dev/null 2>&1
work=$(mktemp -d)
trap 'kill -9 $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; bash scripts/virtual-cluster.sh down >/dev/null 2>&1; rm -rf "$work"' EXIT
export COHORT_HOME="$work/home"
"$bin/cohort" pool add vc --hostfile "$COHORT_VC_DIR/hostfile" --ssh-config "$COHORT_VC_DIR/ssh_config" --network 10.77.0.0/24 >/dev/null 2>&1
tasks=$((2 * hosts))

serve() { "$bin/cohort" serve --listen 127.0.0.1:0 2>>"$work/serve.log" & echo $! > "$work/pid"; }
serve
python3 - "$bin" "$work" "$tasks" "$seconds" <<'PY'
import json, os, signal, subprocess, sys, time
bin, work, tasks, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
home = os.environ["COHORT_HOME"]

def listening(pid):
    for _ in range(600):
        try:
            endpoint = json.load(open(f"{home}/serve.json"))
            if endpoint["pid"] == pid: return
        except Exception: pass
        time.sleep(0.05)
    sys.exit("cohort serve did not start: " + open(f"{work}/serve.log").read())

def cohort(*args):
    return subprocess.run([f"{bin}/cohort", *args], capture_output=True, text=True, check=True).stdout

def running():
    # The sleeps themselves, not the shells that run them.
    out = subprocess.run(["pgrep", "-c", "-f", f"^sleep {seconds}.5$"], capture_output=True, text=True).stdout.strip()
    return int(out or 0)

def cpu(pids):
    total = 0
    for pid in pids:
        try: fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError: continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")

def agents():
    out = subprocess.run(["pgrep", "-f", "cohort agent --stdio"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]

listening(int(open(f"{work}/pid").read()))
job = "\n".join(["id: adopt", "pool: vc", "tasks:"] +
                [f"  - {{ id: t{i}, commandLine: \"sh -c 'sleep {seconds}.5; hostname >> {work}/ran-t{i}'\" }}" for i in range(tasks)])
open(f"{work}/adopt.yaml", "w").write(job + "\n")
cohort("submit", f"{work}/adopt.yaml")
deadline = time.time() + 120
while running() < tasks and time.time() < deadline: time.sleep(0.1)
if running() < tasks: sys.exit(f"only {running()} of {tasks} tasks started")
first = int(open(f"{work}/pid").read())
os.kill(first, signal.SIGKILL)
killed = time.time()
time.sleep(1)
restart = time.time()
server = subprocess.Popen([f"{bin}/cohort", "serve", "--listen", "127.0.0.1:0"], stderr=open(f"{work}/serve.log", "a"))
open(f"{work}/pid", "w").write(str(server.pid))
listening(server.pid)
up = time.time() - restart
while "job adopt recovered" not in open(f"{work}/serve.log").read() and time.time() < deadline + 60: time.sleep(0.05)
recovered = time.time() - restart
log = open(f"{work}/serve.log").read()
line = next((l for l in log.splitlines() if "job adopt recovered" in l), "")
# CPU while the adopted tasks run on: the server and every agent, over 5 s.
time.sleep(2)
watchers = [server.pid] + agents()
before, t0 = cpu(watchers), time.time()
time.sleep(5)
watching = (cpu(watchers) - before) / (time.time() - t0)
def state(): return next(j["state"] for j in json.loads(cohort("job", "list", "--output", "json")) if j["id"] == "adopt")
while state() != "completed" and time.time() < deadline + 300: time.sleep(0.2)
records = json.loads(cohort("job", "show", "adopt", "--output", "json"))
lags, twice, succeeded, adopted = [], 0, 0, 0
from datetime import datetime
def when(text): return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
for task in records:
    attempts = task["attempts"]
    if task.get("result") == "success": succeeded += 1
    if len(attempts) != 1 or len(open(f"{work}/ran-{task['taskId']}").read().splitlines()) != 1: twice += 1
    a = attempts[-1]
    if any(p["name"] == "adopted" for p in a.get("phases", [])): adopted += 1
    status = open(f"{a['directory']}/exit-status").read().split()
    lags.append(when(a["end"]) - float(status[3]))
lags.sort()
print(f"# {tasks} tasks of {seconds}.5 s on {len(open(os.environ['COHORT_VC_DIR'] + '/hostfile').read().split(chr(10))) - 1} virtual hosts; cohort serve killed -9 {restart - killed:.1f} s before the restart")
print(f"restarted server listening                  {up:.2f} s")
print(f"its recovery done (every task adopted)      {recovered:.2f} s   [{line.split(': ', 1)[-1]}]")
print(f"tasks adopted / succeeded / run twice       {adopted} / {succeeded} / {twice}")
print(f"recorded after the task's own end           p50 {lags[len(lags) // 2]:.2f} s, max {lags[-1]:.2f} s")
print(f"CPU while watching them (server + agents)   {watching * 100:.1f} % of a core")
PY
