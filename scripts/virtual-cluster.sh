#!/usr/bin/env bash
# A multi-node cluster on one machine, for tests and demos: N network namespaces, each a
# "host" with its own address, hostname and sshd, on a bridge in the root namespace.
# The filesystem is shared, as with NFS on a real cluster. Needs root.
#
#   bash scripts/virtual-cluster.sh up [N=4]   # prints the state directory's files
#   bash scripts/virtual-cluster.sh down
#
# Hosts are node1..nodeN at 10.77.0.11.. on 10.77.0.0/24; the root namespace is 10.77.0.1.
# Files (key pair, ssh config, hostfile) live in $COHORT_VC_DIR (default /tmp/cohort-vc).
# Test traffic goes only to these addresses.
set -euo pipefail
dir=${COHORT_VC_DIR:-/tmp/cohort-vc}
bridge=cohortbr0
subnet=10.77.0
action=${1:-up}
count=${2:-4}

[ "$(id -u)" -eq 0 ] || { echo "virtual-cluster: needs root (network namespaces, sshd)" >&2; exit 1; }
for tool in ip sshd ssh ssh-keygen unshare; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "virtual-cluster: $tool missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
done

down() {
  for ns in $(ip netns list 2>/dev/null | awk '/^cohort-node/ {print $1}'); do
    # Every process in the namespace: sshd and whatever a test left there.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '/cvh-/ {print $2}' | cut -d@ -f1); do ip link delete "$link" 2>/dev/null || true; done
  ip link delete "$bridge" 2>/dev/null || true
}

if [ "$action" = down ]; then down; exit 0; fi
[ "$action" = up ] || { echo "usage: $0 up [N] | down" >&2; exit 2; }

down
mkdir -p "$dir" /run/sshd
chmod 700 "$dir"
[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519"
cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"

ip link add "$bridge" type bridge
ip addr add "$subnet.1/24" dev "$bridge"
ip link set "$bridge" up

{
  echo "Host *"
  echo "  IdentityFile $dir/id_ed25519"
  echo "  User root"
  echo "  StrictHostKeyChecking no"
  echo "  UserKnownHostsFile /dev/null"
  echo "  LogLevel ERROR"
  echo "  ConnectTimeout 5"
} > "$dir/ssh_config"
: > "$dir/hostfile"

for i in $(seq 1 "$count"); do
  ns=cohort-node$i
  address=$subnet.$((10 + i))
  ip netns add "$ns"
  ip link add "cvh-$i" type veth peer name "cvn-$i"
  ip link set "cvn-$i" netns "$ns"
  ip link set "cvh-$i" master "$bridge"
  ip link set "cvh-$i" up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "cvn-$i" name eth0
  ip -n "$ns" addr add "$address/24" dev eth0
  ip -n "$ns" link set eth0 up
  # Its own hostname, or Open MPI takes every daemon for the same host.
  ip netns exec "$ns" unshare --uts sh -c "hostname node$i; exec /usr/sbin/sshd \
      -o ListenAddress=$address -o PidFile=$dir/sshd-node$i.pid -o HostKey=$dir/host_ed25519 \
      -o AuthorizedKeysFile=$dir/authorized_keys -o StrictModes=no -o UsePAM=no -o UseDNS=no \
      -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no -o MaxStartups=100:30:200 -o MaxSessions=100"
  printf 'Host node%s\n  HostName %s\n' "$i" "$address" >> "$dir/ssh_config"
  echo "node$i slots=2" >> "$dir/hostfile"
done

# Wait until every node answers over ssh.
for i in $(seq 1 "$count"); do
  for try in $(seq 1 50); do
    if [ "$(ssh -F "$dir/ssh_config" -o BatchMode=yes "node$i" hostname 2>/dev/null)" = "node$i" ]; then break; fi
    [ "$try" = 50 ] && { echo "virtual-cluster: node$i does not answer over ssh" >&2; exit 1; }
    sleep 0.1
  done
done
echo "virtual cluster: $count nodes on $subnet.0/24"
echo "ssh config: $dir/ssh_config"
echo "hostfile:   $dir/hostfile"
