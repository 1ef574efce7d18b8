#!/usr/bin/env bash
# The batch service, measured end to end against a real `cohort serve` (release build,
# SQLite in WAL mode, tasks through cohort-spawner), with references from the same run:
#
#   1. submissions/s of single-task jobs through the API (wrk, 8 connections), against
#      GET /v1/health on the same server (the HTTP floor);
#   2. end-to-end tasks/s of trivial tasks with persistence on (submit → completed), against
#      xargs -P 2;
#   3. start latency of a dependent task after its dependency ended (a chain), against the
#      cost of starting `true` from Python (subprocess.run) in the same run;
#   4. tasks/s stored when one job brings 10,000 tasks (JSON and YAML bodies);
#   5. server memory (RSS, peak) with 1,000,000 tasks stored;
#   6. GET /metrics (a Prometheus scrape) with them stored, beside GET /v1/health;
#   7. the dashboard's overview and a 10,000-task job's page, beside the API's JSON of the
#      same, and the first load's weight;
#   and a follower of GET /v1/events through the end-to-end runs (every end reaches it).
#   The runs come before the million stored tasks: the store's writeback slows this
#   machine's disk for minutes after, and that would be measured instead.
#
#   bash benchmarks/service/run-service.sh [million=1]   (0: stop at 100,000 stored tasks)
set -euo pipefail
cd "$(dirname "$0")/../.."
million=${1:-1}
bash scripts/setup.sh
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
swift build -c release --product cohort >/dev/null
swift build -c release --product cohort-spawner >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
export COHORT_HOME="$work/home"

"$bin/cohort" serve --listen 127.0.0.1:0 2>"$work/serve.log" &
echo $! > "$work/pid"
python3 - "$bin" "$work" "$million" <<'PY'
import http.client, json, os, statistics, subprocess, sys, time
bin, work, million = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
home = os.environ["COHORT_HOME"]
pid = int(open(f"{work}/pid").read())
for _ in range(600):
    try:
        endpoint = json.load(open(f"{home}/serve.json"))
        if endpoint["pid"] == pid: break
    except Exception: pass
    time.sleep(0.05)
else: sys.exit("cohort serve did not start: " + open(f"{work}/serve.log").read())
url = endpoint["url"]
host, port = url.removeprefix("http://").rsplit(":", 1)
token = open(f"{home}/api-token").read().strip()
auth = {"Authorization": f"Bearer {token}"}
conn = http.client.HTTPConnection(host, int(port), timeout=600)

def call(method, path, body=None):
    conn.request(method, path, body=body, headers=auth)
    r = conn.getresponse(); data = r.read()
    if r.status >= 300: sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None

def rss():
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

def wrk(script, path, seconds=5):
    env = dict(os.environ, TOKEN=token)
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{seconds}s", "-s", script, url + path], capture_output=True, text=True, env=env).stdout
    rate = float(next(l for l in out.splitlines() if l.startswith("Requests/sec")).split()[1])
    bad = next((l for l in out.splitlines() if "Non-2xx" in l), None)
    if bad: sys.exit(f"wrk: {bad}\n{out}")
    return rate

rows = []
# 1. Submissions of single-task jobs (stored disabled: the API and the store, not the runs).
open(f"{work}/health.lua", "w").write('wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")\n')
open(f"{work}/submit.lua", "w").write('''
counter = 0
request = function()
  counter = counter + 1
  local body = '{"id": "w' .. counter .. '", "tasks": [{"id": "a", "commandLine": "true"}]}'
  return wrk.format("POST", "/v1/jobs?disabled=true", {["Authorization"] = "Bearer " .. os.getenv("TOKEN")}, body)
end
''')
health = wrk(f"{work}/health.lua", "/v1/health")
submits = wrk(f"{work}/submit.lua", "/v1/jobs")
rows.append(("GET /v1/health (HTTP floor)", f"{health:,.0f} req/s", ""))
rows.append(("POST /v1/jobs, 1-task jobs", f"{submits:,.0f} jobs/s", "≥ 2,000 jobs/s"))

# 2. End to end: 5,000 trivial tasks, submit → completed, with everything recorded.
n = 5000
xargs = []
for _ in range(3):
    start = time.perf_counter()
    subprocess.run(["xargs", "-P", "2", "-n", "1", "true"], input="x\n" * n, text=True, check=True)
    xargs.append(n / (time.perf_counter() - start))
ends = []
# A follower of the event stream all along: every task's end must reach it (none missed).
import threading
seen = {"ended": 0, "missed": 0, "last": 0.0}
def follow():
    stream = http.client.HTTPConnection(host, int(port), timeout=600)
    stream.request("GET", "/v1/events?follow=true", headers=auth)
    response = stream.getresponse()
    kind = None
    while True:
        line = response.readline()
        if not line: return
        if line.startswith(b"event: "):
            kind = line[7:].strip()
            if kind == b"attempt.ended": seen["ended"] += 1; seen["last"] = time.perf_counter()
            if kind == b"missed": seen["missed"] += 1
threading.Thread(target=follow, daemon=True).start()
time.sleep(0.5)
for round in range(3):
    body = json.dumps({"id": f"e2e{round}", "tasks": [{"id": f"t{i}", "commandLine": "/bin/true"} for i in range(n)]})
    start = time.perf_counter()
    job = call("POST", "/v1/jobs", body)["id"]
    while call("GET", f"/v1/jobs/{job}?tasks=false")["job"]["state"] != "completed": time.sleep(0.02)
    ends.append(n / (time.perf_counter() - start))
    summary = call("GET", f"/v1/jobs/{job}?tasks=false")["job"]
    if summary["succeeded"] != n: sys.exit(f"end to end: {summary}")
rows.append(("xargs -P 2, 5,000 × true (reference)", f"{statistics.median(xargs):,.0f} tasks/s", ""))
rows.append(("serve, 5,000 × true, submit → completed", f"{statistics.median(ends):,.0f} tasks/s", "≥ 1,000 tasks/s"))
deadline = time.time() + 10
while seen["ended"] < 3 * n and time.time() < deadline: time.sleep(0.05)
rows.append(("GET /v1/events follower, those 15,000 ends", f"{seen['ended']:,} attempt.ended, {seen['missed']} missed", "all, none missed"))

# 3. Dependent start latency: a chain of 200 tasks.
chain = 200
body = json.dumps({"id": "chain", "tasks": [{"id": f"c{i}", "commandLine": "/bin/true", **({"dependsOn": [f"c{i-1}"]} if i else {})} for i in range(chain)]})
job = call("POST", "/v1/jobs", body)["id"]
while call("GET", f"/v1/jobs/{job}?tasks=false")["job"]["state"] != "completed": time.sleep(0.05)
tasks = call("GET", f"/v1/jobs/{job}/tasks")
attempts = [t["attempts"][-1] for t in tasks]
from datetime import datetime
def when(text): return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()  # the API's ISO 8601
gaps = sorted((when(b["start"]) - when(a["end"])) * 1000 for a, b in zip(attempts, attempts[1:]))
spawn = []
for _ in range(chain):
    start = time.perf_counter(); subprocess.run(["/bin/true"]); spawn.append((time.perf_counter() - start) * 1000)
rows.append(("start `true` from Python (reference)", f"p50 {statistics.median(spawn):.2f} ms", ""))
rows.append(("dependent task start after its dependency", f"p50 {statistics.median(gaps):.2f} ms, p90 {gaps[int(len(gaps) * 0.9)]:.2f} ms", "p50 ≤ 20 ms"))
# 4. Jobs of 10,000 tasks.
def big(n, k, yaml=False):
    if yaml:
        return "id: big%d\ntasks:\n" % k + "".join(f"  - {{ id: t{i}, commandLine: /bin/true }}\n" for i in range(n))
    return json.dumps({"id": f"big{k}", "tasks": [{"id": f"t{i}", "commandLine": "/bin/true"} for i in range(n)]})
rates = {"json": [], "yaml": []}
k = 0
for form in ["json", "yaml"] * 3:
    body = big(10_000, k, form == "yaml"); k += 1
    start = time.perf_counter(); call("POST", "/v1/jobs?disabled=true", body); rates[form].append(10_000 / (time.perf_counter() - start))
rows.append(("POST /v1/jobs, 10,000 tasks, JSON", f"{statistics.median(rates['json']):,.0f} tasks/s", "≥ 20,000 tasks/s"))
rows.append(("POST /v1/jobs, 10,000 tasks, YAML", f"{statistics.median(rates['yaml']):,.0f} tasks/s", ""))

# 5. Memory with 1,000,000 tasks stored.
stored = sum(j["tasks"] for j in call("GET", "/v1/jobs"))
target = 1_000_000 if million else 100_000
while stored < target:
    call("POST", "/v1/jobs?disabled=true", big(10_000, k)); k += 1; stored += 10_000
now, peak = rss()
rows.append((f"server RSS, {stored:,} tasks stored", f"{now:,.0f} MB (peak {peak:,.0f})", "≤ 200 MB"))
# 6. A Prometheus scrape with that many tasks stored, beside the HTTP floor (medians of 30).
def timed(path, headers=auth, runs=30):
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter(); conn.request("GET", path, headers=headers); r = conn.getresponse(); data = r.read()
        times.append((time.perf_counter() - start) * 1000); size = len(data)
        if r.status != 200: sys.exit(f"GET {path}: {r.status}")
    return statistics.median(times), size
floor, _ = timed("/v1/health")
scrape, size = timed("/metrics")
rows.append(("GET /v1/health (reference)", f"p50 {floor:.2f} ms", ""))
rows.append((f"GET /metrics, {stored:,} tasks stored", f"p50 {scrape:.2f} ms, {size:,} bytes", "≤ 50 ms"))
# 7. The dashboard with them stored: the overview (every job) and a page of a 10,000-task
# job, beside the API's JSON of the same (the reference); the first load's weight.
conn.request("POST", "/login", body="token=" + token, headers={"Content-Type": "application/x-www-form-urlencoded"})
r = conn.getresponse(); r.read()
session = {"Cookie": r.getheader("Set-Cookie").split(";")[0]}
def page(path, headers): return timed(path, headers, runs=10)
jobs_json, _ = page("/v1/jobs", auth)
overview, first = page("/", session)
first += page("/assets/dashboard.css", session)[1] + page("/assets/dashboard.js", session)[1]
tasks_json, _ = page("/v1/jobs/big0/tasks", auth)
job_page, _ = page("/jobs/big0", session)
rows.append((f"GET /v1/jobs, {len(call('GET', '/v1/jobs'))} jobs (reference)", f"p50 {jobs_json:.1f} ms", ""))
rows.append(("dashboard overview, same jobs", f"p50 {overview:.1f} ms", ""))
rows.append(("GET /v1/jobs/big0/tasks, 10,000 (reference)", f"p50 {tasks_json:.1f} ms", ""))
rows.append(("dashboard page of that job", f"p50 {job_page:.1f} ms", ""))
rows.append(("dashboard first load (page, CSS, JS)", f"{first / 1024:.1f} KB", "≤ 300 KB"))

now, peak = rss()
rows.append(("server RSS at the end", f"{now:,.0f} MB (peak {peak:,.0f})", "≤ 200 MB"))

print(f"# cohort serve on {os.cpu_count()} cores; the default local pool (4 virtual nodes × 2 slots)")
print(f"{'measure':<44}{'result':<32}{'target'}")
for name, value, goal in rows: print(f"{name:<44}{value:<32}{goal}")
PY
