#!/usr/bin/env bash
# Remote work through the node agents, on a virtual cluster of N hosts (network namespaces
# with real sshd; needs root), each pair interleaved and measured in the same run:
#   1. `hello` on N hosts × 1 rank: `cohort run` against bare mpirun with the same flags (ssh launch),
#      with and without the flag that spares mpirun its name lookups;
#   2. the same on 4 hosts;
#   3. T `true` tasks on the N-host pool against the local pool (tasks/s, ratio);
#   4. node loss detection: a running 2-node task, its agent killed (-9), then a link cut;
#   5. 1–3 again through `cohort serve` (its agents already up), and its CPU while it keeps
#      N idle agents, then 8 N (8 agents per host, each its own node).
# `cohort run` starts the agents each time (one ssh each, all at once); a server keeps them.
#
#   bash benchmarks/cluster/run-agents.sh [hosts=32] [rounds=3] [tasks=3200]
set -euo pipefail
cd "$(dirname "$0")/../.."
hosts=${1:-32}
rounds=${2:-3}
tasks=${3:-3200}
bash scripts/setup.sh >/dev/null
for product in cohort cohort-spawner cohort-rank-env cohort-rsh hello; do swift build -c release --product "$product" >/dev/null; done
bin=$(swift build -c release --show-bin-path)
export COHORT_VC_DIR=/tmp/cohort-vc-bench
bash scripts/virtual-cluster.sh up "$hosts" >/dev/null
trap 'bash scripts/virtual-cluster.sh down' EXIT
work=$(mktemp -d)
export COHORT_HOME="$work/home"
head -4 "$COHORT_VC_DIR/hostfile" > "$work/hostfile4"
pool_flags=(--ssh-config "$COHORT_VC_DIR/ssh_config" --network 10.77.0.0/24 --mca mpi_yield_when_idle=1)
"$bin/cohort" pool add vc --hostfile "$COHORT_VC_DIR/hostfile" "${pool_flags[@]}" >/dev/null
"$bin/cohort" pool add vc4 --hostfile "$work/hostfile4" "${pool_flags[@]}" >/dev/null
for pool in vc local; do
  { echo "id: tasks-$pool"; echo "pool: $pool"; echo "tasks:"
    for i in $(seq 1 "$tasks"); do echo "  - { id: t$i, commandLine: /bin/true }"; done; } > "$work/tasks-$pool.yaml"
done
python3 - "$hosts" "$rounds" "$tasks" "$bin" "$work" "$COHORT_VC_DIR" <<'PY'
import json, os, signal, statistics, subprocess, sys, time
hosts, rounds, tasks, bin, work, vc = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
cohort, hello = f"{bin}/cohort", f"{bin}/hello"
root = ["--allow-run-as-root"] if os.getuid() == 0 else []

def mpirun(hostfile, n, resolve=True):
    # The flags Cohort's tcp transport gives mpirun on this pool, with ssh as the launcher;
    # without `resolve`, also the one that spares mpirun its name lookups (each lost DNS
    # answer costs 5 s here), which Cohort gives when every node's agent is another host.
    return ["mpirun", "--hostfile", hostfile, "-np", str(n), "--map-by", "ppr:1:node", *root, "--mca", "pml", "ob1",
            "--mca", "btl", "self,vader,tcp", "--mca", "plm_rsh_agent", f"ssh -F {vc}/ssh_config",
            "--mca", "btl_tcp_if_include", "10.77.0.0/24", "--mca", "oob_tcp_if_include", "10.77.0.0/24",
            "--mca", "mpi_yield_when_idle", "1", *([] if resolve else ["--mca", "if_base_do_not_resolve", "1"]), hello]

def timed(argv):
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0: sys.exit(f"{' '.join(argv[:6])} … failed with {result.returncode}: {result.stderr[-2000:]}")
    return time.perf_counter() - start

pairs = {
    f"hello, {hosts} hosts": ((mpirun(f"{vc}/hostfile", hosts), mpirun(f"{vc}/hostfile", hosts, resolve=False)),
                              [cohort, "run", "--quiet", "--pool", "vc", "-N", str(hosts), "--transport", "tcp", "--", hello]),
    "hello, 4 hosts": ((mpirun(f"{work}/hostfile4", 4), mpirun(f"{work}/hostfile4", 4, resolve=False)),
                       [cohort, "run", "--quiet", "--pool", "vc4", "-N", "4", "--transport", "tcp", "--", hello]),
}

def measure_pairs():
    times = {name: ([], [], []) for name in pairs}
    for name, ((plain, unresolved), ours) in pairs.items():
        times[name][0].append(timed(plain))
        times[name][1].append(timed(unresolved))
        times[name][2].append(timed(ours))
    return times

def merge(into, more):
    for name in more:
        for column in range(3): into.setdefault(name, ([], [], []))[column].extend(more[name][column])

def report(title, times):
    print(f"{title:<22}{'bare mpirun (s)':>17}{'+ no lookups (s)':>18}{'cohort (s)':>12}{'vs bare':>9}{'vs + no lookups':>17}")
    for name, (plain, unresolved, ours) in times.items():
        a, b, c = statistics.median(plain), statistics.median(unresolved), statistics.median(ours)
        print(f"{name:<22}{a:>17.2f}{b:>18.2f}{c:>12.2f}{c / a:>9.2f}{c / b:>17.2f}")

times = {}
rates = {"remote": [], "local": []}
for _ in range(rounds):
    merge(times, measure_pairs())
    rates["remote"].append(tasks / timed([cohort, "run", "--quiet", f"{work}/tasks-vc.yaml"]))
    rates["local"].append(tasks / timed([cohort, "run", "--quiet", f"{work}/tasks-local.yaml"]))

print(f"# node agents on {hosts} virtual hosts ({os.cpu_count()} cores), medians of {rounds} interleaved rounds")
report("cohort run", times)
remote, local = statistics.median(rates["remote"]), statistics.median(rates["local"])
print(f"{tasks} true tasks: {hosts}-host pool {remote:.0f} tasks/s, local pool {local:.0f} tasks/s, ratio {remote / local:.2f} "
      f"(each cohort run starts its {hosts} agents: one ssh each, at once)")

# Node loss: a 2-node task that sleeps; its second node's agent killed, then (another run) its link cut.
def namespace_pids(node):
    out = subprocess.run(["ip", "netns", "pids", f"cohort-{node}"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]

def cmdline(pid):
    try: return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError: return ""

def loss(how):
    job = f"{work}/loss-{how}.yaml"
    open(job, "w").write("id: loss\npool: vc4\ntasks:\n  - id: solve\n    commandLine: sleep 60\n"
                         "    multiInstance: { instances: 2, transport: tcp }\n"
                         "    constraints: { maxTaskRetryCount: 0 }\n")
    run = subprocess.Popen([cohort, "run", "--quiet", "--output", "json", job], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 60
    group = []
    while time.time() < deadline and len(group) < 2:
        group = [node for node in ("node1", "node2", "node3", "node4") if any("sleep 60" in cmdline(p) for p in namespace_pids(node))]
        time.sleep(0.1)
    if len(group) < 2: sys.exit("loss: the task did not start on two nodes")
    survivor, victim = group
    time.sleep(1)
    start = time.perf_counter()
    if how == "agent killed":
        for pid in namespace_pids(victim):
            if "agent --stdio" in cmdline(pid) and "ssh" not in cmdline(pid): os.kill(pid, signal.SIGKILL)
    else:
        subprocess.run(["ip", "link", "set", f"cvh-{victim[4:]}", "down"], check=True)
    # Counted lost once the survivor's rank is ended (the group's processes end on a loss).
    while any("sleep 60" in cmdline(p) for p in namespace_pids(survivor)) and time.perf_counter() - start < 60:
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    out, _ = run.communicate(timeout=120)
    if how != "agent killed": subprocess.run(["ip", "link", "set", f"cvh-{victim[4:]}", "up"], check=True)
    text = json.dumps(json.loads(out))
    if "was lost" not in text: sys.exit(f"loss ({how}): the failure does not name a lost node: {text[:500]}")
    return victim, elapsed

for how in ("agent killed", "link down"):
    node, seconds = loss(how)
    print(f"node loss ({how}): {node} counted lost and its group's rank on the other node ended {seconds:.2f} s after (target <= 3 s)")
# The lost nodes are unusable (stored); they answer again, and a check heals them.
subprocess.run([cohort, "node", "check", "--pool", "vc4"], check=True, stdout=subprocess.DEVNULL)

# Through a server: `cohort run` hands the job to `cohort serve`, whose agents are already up
# (a first job used every node), so no ssh at all; then its CPU while its agents are idle.
serve = subprocess.Popen([cohort, "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    time.sleep(2)
    for pool, count in (("vc", hosts), ("vc4", 4)):
        job = f"{work}/all-{pool}.yaml"
        open(job, "w").write(f"id: all-{pool}\npool: {pool}\ntasks:\n  - id: all\n    commandLine: /bin/true\n"
                             f"    multiInstance: {{ instances: {count}, transport: tcp }}\n")
        subprocess.run([cohort, "submit", job], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([cohort, "wait", "--timeout", "300", f"all-{pool}"], check=True, stdout=subprocess.DEVNULL)
    served = {}
    served_rates = []
    for _ in range(rounds):
        merge(served, measure_pairs())
        served_rates.append(tasks / timed([cohort, "run", "--quiet", f"{work}/tasks-vc.yaml"]))
    report("through cohort serve", served)
    served_rate = statistics.median(served_rates)
    print(f"{tasks} true tasks through the server on the {hosts}-host pool: {served_rate:.0f} tasks/s ({served_rate / local:.2f} x the local pool's cohort run)")
    def cpu():
        fields = open(f"/proc/{serve.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    time.sleep(3)
    before, start = cpu(), time.perf_counter()
    time.sleep(10)
    share = (cpu() - before) / (time.perf_counter() - start)
    agents = sum(1 for p in os.listdir("/proc") if p.isdigit() and "agent --stdio" in cmdline(p) and not cmdline(p).startswith("ssh"))
    print(f"cohort serve with {agents} idle agents: {share * 100:.2f} % of a core (target <= 1 %)")

    # 8 agents per host (256 on 32 hosts): a pool of aliases, each its own node and channel.
    per_host = 8
    with open(f"{work}/ssh_config_many", "w") as config:
        config.write(open(f"{vc}/ssh_config").read())
        for host in range(1, hosts + 1):
            for k in range(1, per_host + 1):
                config.write(f"Host node{host}-{k}\n  HostName 10.77.0.{10 + host}\n")
    with open(f"{work}/hostfile_many", "w") as hostfile:
        hostfile.writelines(f"node{host}-{k} slots=1\n" for host in range(1, hosts + 1) for k in range(1, per_host + 1))
    subprocess.run([cohort, "pool", "add", "many", "--hostfile", f"{work}/hostfile_many", "--ssh-config", f"{work}/ssh_config_many",
                    "--network", "10.77.0.0/24"], check=True, stdout=subprocess.DEVNULL)
    count = hosts * per_host
    job = f"{work}/many.yaml"
    # A raw multi-instance task: every node of the group is checked (its agent started), the
    # command runs once.
    open(job, "w").write(f"id: many\npool: many\ntasks:\n  - id: all\n    commandLine: /bin/true\n"
                         f"    multiInstance: {{ instances: {count}, launch: raw }}\n")
    started = time.perf_counter()
    subprocess.run([cohort, "submit", job], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([cohort, "wait", "--timeout", "600", "many"], stdout=subprocess.DEVNULL)
    print(f"{count} agents (for a {count}-node raw task) came up and the task ran in {time.perf_counter() - started:.1f} s")
    time.sleep(3)
    before, start = cpu(), time.perf_counter()
    time.sleep(10)
    share = (cpu() - before) / (time.perf_counter() - start)
    agents = sum(1 for p in os.listdir("/proc") if p.isdigit() and "agent --stdio" in cmdline(p) and not cmdline(p).startswith("ssh"))
    rss = int(open(f"/proc/{serve.pid}/status").read().split("VmRSS:")[1].split()[0]) / 1024
    print(f"cohort serve with {agents} idle agents: {share * 100:.2f} % of a core (target <= 5 %), RSS {rss:.0f} MB")
finally:
    serve.send_signal(signal.SIGTERM)
    serve.wait(timeout=30)
PY
