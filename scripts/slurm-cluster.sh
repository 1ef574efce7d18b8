#!/usr/bin/env bash
# A real Slurm cluster on the virtual cluster (scripts/virtual-cluster.sh, which must be up):
# munged and slurmctld on this machine, one slurmd in each node's network namespace, PMIx
# for MPI ranks. Needs root and Debian's slurm-wlm and munge (scripts/setup.sh).
#
#   bash scripts/slurm-cluster.sh up [N=4]   # writes $COHORT_VC_DIR/slurm/env (SLURM_CONF=…)
#   bash scripts/slurm-cluster.sh down
#   bash scripts/slurm-cluster.sh node-up I  # (re)starts node I's slurmd, after a test killed it
#
# Every Slurm command needs SLURM_CONF pointing at this cluster's slurm.conf: without it the
# client looks for DNS SRV records and fails. Partitions: `debug` (every node, default) and
# `pair` (node1, node2).
set -euo pipefail
vc=${COHORT_VC_DIR:-/tmp/cohort-vc}
dir=$vc/slurm
action=${1:-up}
count=${2:-4}
subnet=10.77.0
controller_port=16817
node_port=16818

[ "$(id -u)" -eq 0 ] || { echo "slurm-cluster: needs root" >&2; exit 1; }

stop_pidfile() {
  local file=$1
  [ -f "$file" ] || return 0
  local pid
  pid=$(cat "$file" 2>/dev/null || true)
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
}

down() {
  for file in "$dir"/slurmd-*.pid; do [ -e "$file" ] && stop_pidfile "$file"; done
  stop_pidfile "$dir/slurmctld.pid"
  # slurmstepd outlives a killed slurmd; so may a test's ranks.
  pkill -9 -f "slurmstepd.*" 2>/dev/null || true
  stop_pidfile "$dir/munged.pid"
  rm -rf "$dir/state" "$dir"/spool
}

# Runs a daemon's starter with no descriptor above stderr: munged keeps every one it
# inherits, so whoever ran this script and waits for its descriptors to close (Foundation's
# Process waits so for a child's end) would wait for ever.
without_our_descriptors() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    exec "$@"
  )
}

start_node() {
  local i=$1
  mkdir -p "$dir/spool/node$i"
  # nsenter, not `ip netns exec` (which remounts /sys and hides the cgroup filesystem); a
  # UTS namespace for the node's hostname and a mount namespace for its private PMIx tmpfs.
  without_our_descriptors env SLURM_CONF="$dir/slurm.conf" nsenter --net=/var/run/netns/cohort-node$i unshare --uts --mount --propagation private \
    sh -c "hostname node$i; mount -t tmpfs tmpfs /var/tmp/pmix-node; exec /usr/sbin/slurmd -N node$i"
}

if [ "$action" = down ]; then down; exit 0; fi
if [ "$action" = node-up ]; then
  [ -f "$dir/slurm.conf" ] || { echo "slurm-cluster: not up" >&2; exit 1; }
  stop_pidfile "$dir/slurmd-node$2.pid"
  start_node "$2"
  for try in $(seq 1 100); do
    state=$(SLURM_CONF=$dir/slurm.conf sinfo -h -N -n "node$2" -o %T 2>/dev/null | head -1)
    case "$state" in idle|mixed|allocated) exit 0 ;; esac
    sleep 0.2
  done
  echo "slurm-cluster: node$2 is $state after its slurmd restarted" >&2; exit 1
fi
[ "$action" = up ] || { echo "usage: $0 up [N] | down | node-up I" >&2; exit 2; }
for tool in slurmctld slurmd munged nsenter; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "slurm-cluster: $tool missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
done
[ -e "/var/run/netns/cohort-node1" ] || { echo "slurm-cluster: the virtual cluster is not up (bash scripts/virtual-cluster.sh up $count)" >&2; exit 1; }

down
# Another cluster's daemons on these ports (one of another COHORT_VC_DIR, left running) would
# answer in this one's place: end them.
for pid in $(ss -Hltnp "sport = :$controller_port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do kill -9 "$pid" 2>/dev/null || true; done
for ns in $(ip netns list 2>/dev/null | awk '/^cohort-node/ {print $1}'); do
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    case "$(cat "/proc/$pid/comm" 2>/dev/null)" in slurmd|slurmstepd) kill -9 "$pid" 2>/dev/null || true ;; esac
  done
done
mkdir -p "$dir/state" "$dir/log" /var/tmp/pmix-node
chmod 755 "$dir"

# One munged for every node: its socket is on the shared filesystem.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0400 /etc/munge/munge.key
# Asked, not looked for: a munged just ended may linger as a zombie that pgrep still finds.
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  without_our_descriptors runuser -u munge -- /usr/sbin/munged --force
  cp /run/munge/munged.pid "$dir/munged.pid"
fi

host=$(hostname)
{
  echo "ClusterName=cohortvc"
  echo "SlurmctldHost=$host($subnet.1)"
  echo "SlurmctldPort=$controller_port"
  echo "SlurmdPort=$node_port"
  echo "SlurmUser=root"
  echo "SlurmdUser=root"
  echo "AuthType=auth/munge"
  echo "StateSaveLocation=$dir/state"
  echo "SlurmctldPidFile=$dir/slurmctld.pid"
  echo "SlurmctldLogFile=$dir/log/slurmctld.log"
  echo "SlurmdSpoolDir=$dir/spool/%n"
  echo "SlurmdPidFile=$dir/slurmd-%n.pid"
  echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
  echo "ProctrackType=proctrack/linuxproc"
  echo "TaskPlugin=task/none"
  echo "SelectType=select/cons_tres"
  echo "SelectTypeParameters=CR_CPU"
  echo "SlurmdParameters=config_overrides"
  echo "MpiDefault=none"
  echo "ReturnToService=2"
  # A lost node is seen in seconds, not Slurm's default five minutes; time limits end
  # work at once rather than after Slurm's 30 s grace.
  echo "SlurmdTimeout=6"
  echo "KillWait=2"
  echo "OverTimeLimit=0"
  echo "InactiveLimit=0"
  echo "MinJobAge=30"
  echo "JobAcctGatherType=jobacct_gather/none"
  echo "AccountingStorageType=accounting_storage/none"
  # A job of a partition of a higher PriorityTier (urgent) ends what holds its nodes in a
  # lower one (CANCEL: srun and salloc jobs cannot be requeued): the tests' preemption.
  echo "PreemptType=preempt/partition_prio"
  echo "PreemptMode=CANCEL"
  echo "SlurmctldDebug=info"
  echo "SlurmdDebug=info"
  first=$((10 + 1)); last=$((10 + count))
  addresses=$(seq -s, -f "$subnet.%g" "$first" "$last")
  echo "NodeName=node[1-$count] NodeAddr=$addresses CPUs=2 State=UNKNOWN"
  echo "PartitionName=debug Nodes=node[1-$count] Default=YES MaxTime=INFINITE State=UP PriorityTier=1"
  echo "PartitionName=pair Nodes=node[1-2] MaxTime=INFINITE State=UP PriorityTier=1"
  echo "PartitionName=urgent Nodes=node[1-2] MaxTime=INFINITE State=UP PriorityTier=10"
} > "$dir/slurm.conf"
# Each node's PMIx server gets its own directory (a tmpfs mounted per node below): in one
# shared /tmp they collide ("Cannot create directory /tmp/spmix_appdir_…: File exists").
echo "PMIxCliTmpDirBase=/var/tmp/pmix-node" > "$dir/mpi.conf"
echo "SLURM_CONF=$dir/slurm.conf" > "$dir/env"
export SLURM_CONF=$dir/slurm.conf

without_our_descriptors /usr/sbin/slurmctld -i
for try in $(seq 1 50); do
  pid=$(cat "$dir/slurmctld.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ss -Hltnp "sport = :$controller_port" | grep -q "pid=$pid,"; then break; fi
  [ "$try" = 50 ] && { echo "slurm-cluster: slurmctld is not listening on $controller_port:" >&2; tail -5 "$dir/log/slurmctld.log" >&2; exit 1; }
  sleep 0.1
done
for i in $(seq 1 "$count"); do start_node "$i"; done

# Until every node is idle and responding (`idle`, not `idle*`), then one job on all of them:
# the cluster works end to end before anything is measured or tested on it.
for try in $(seq 1 100); do
  idle=$(sinfo -h -N -p debug -o %T 2>/dev/null | grep -cx idle || true)
  [ "$idle" -ge "$count" ] && break
  [ "$try" = 100 ] && { echo "slurm-cluster: only $idle of $count nodes idle:" >&2; sinfo -N >&2 || true; tail -5 "$dir"/log/*.log >&2; exit 1; }
  sleep 0.2
done
timeout 60 srun --nodes="$count" --ntasks-per-node=1 --job-name=slurm-cluster-check true \
  || { echo "slurm-cluster: a job on every node did not run:" >&2; sinfo -N >&2 || true; tail -5 "$dir"/log/*.log >&2; exit 1; }
echo "slurm cluster: $count nodes (slurmctld on $host at $subnet.1:$controller_port)"
echo "env: $dir/env"
