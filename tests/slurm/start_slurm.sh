#!/usr/bin/env bash
# Start a private single-node SLURM cluster for the workflow's SLURM test.
#
#   tests/slurm/start_slurm.sh STATE_DIR     # prints `export SLURM_CONF=...` on success
#   tests/slurm/stop_slurm.sh STATE_DIR      # stops exactly the daemons started here
#
# Needs root (Debian's packages are installed with apt-get when missing; the daemons run as
# root). Everything lives under STATE_DIR: slurm.conf, gres.conf, the munge key and socket,
# the daemons' state, logs and pid files. The daemons are started directly (no systemd).
#
# Facts this relies on (SLURM 22.05 on a 2-core Debian 12 machine):
# - NodeAddr and the controller's address are 127.0.0.1: the host name need not resolve.
# - RealMemory is ~90 % of what `slurmd -C` reports; asking for more drains the node.
# - proctrack/linuxproc and task/none: no cgroups needed.
# - select/cons_tres with CR_Core_Memory (CR_Memory alone stops slurmctld), and
#   OverSubscribe=FORCE:4 on the partition so 4 jobs share the 2 cores.
# - No slurmdbd (AccountingStorageType=accounting_storage/none): `sacct` exists but fails,
#   so the workflow's test queries job states with `squeue`, which sees finished jobs for
#   MinJobAge=300 s.
# - The executor plugin's job step removes SLURM_CONF before `srun`, so
#   /etc/slurm/slurm.conf is made a symbolic link to our slurm.conf (stop_slurm.sh removes
#   it). An existing regular /etc/slurm/slurm.conf is never replaced.
# - Four fake GPUs (null device nodes as their device files) let GPU rules' `--gres=gpu:1`
#   be scheduled.
set -euo pipefail

STATE=${1:?usage: start_slurm.sh STATE_DIR}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
log() { echo "start_slurm: $*" >&2; }
HERE=$(cd "$(dirname "$0")" && pwd)
# Daemons left by an earlier start in the same STATE_DIR (a killed test) are stopped first.
bash "$HERE/stop_slurm.sh" "$STATE"

if [ "$(id -u)" != 0 ]; then
  log "needs root (to install packages and run the daemons)"
  exit 3
fi

missing=()
for pkg in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$STATE/apt.log" 2>&1 || {
    apt-get update -qq >>"$STATE/apt.log" 2>&1
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1
  } || {
    tail -20 "$STATE/apt.log" >&2
    exit 4
  }
fi

LINK=/etc/slurm/slurm.conf
if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
  log "$LINK is a real file (a configured cluster?); refusing to replace it"
  exit 5
fi

HOST=$(hostname -s)
CTLD_PORT=${NEUROBOLT_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${NEUROBOLT_SLURMD_PORT:-6818}
# shellcheck disable=SC2046
eval $(slurmd -C | head -1 | tr ' ' '\n' | grep -E '^(CPUs|RealMemory)=')
MEM=$((RealMemory * 9 / 10))

# munge: key 0600 in a 0700 directory, socket directory 0755.
mkdir -p "$STATE/munge/etc" "$STATE/munge/run" "$STATE/munge/lib" "$STATE/munge/log"
chmod 0700 "$STATE/munge/etc" "$STATE/munge/lib" "$STATE/munge/log"
chmod 0755 "$STATE" "$STATE/munge" "$STATE/munge/run"
if [ ! -s "$STATE/munge/etc/munge.key" ]; then
  dd if=/dev/urandom of="$STATE/munge/etc/munge.key" bs=1024 count=1 status=none
fi
chmod 0600 "$STATE/munge/etc/munge.key"
SOCKET="$STATE/munge/run/munge.socket.2"

rm -rf "$STATE/ctld" "$STATE/d" # a fresh cluster: no jobs of an earlier start
mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/log"
cat >"$STATE/slurm.conf" <<EOF
# Written by tests/slurm/start_slurm.sh: a private one-node cluster for tests.
ClusterName=neurobolt-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUs RealMemory=$MEM Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
mkdir -p "$STATE/dev"
for i in 0 1 2 3; do # null devices (c 1 3) as the GPUs' device files; else plain files
  [ -e "$STATE/dev/gpu$i" ] || mknod -m 0666 "$STATE/dev/gpu$i" c 1 3 2>/dev/null \
    || touch "$STATE/dev/gpu$i"
done
cat >"$STATE/gres.conf" <<EOF
AutoDetect=off
NodeName=$HOST Name=gpu File=$STATE/dev/gpu[0-3]
EOF
export SLURM_CONF="$STATE/slurm.conf"

mkdir -p "$(dirname "$LINK")"
ln -sfn "$SLURM_CONF" "$LINK"

munged --force --socket="$SOCKET" --key-file="$STATE/munge/etc/munge.key" \
  --pid-file="$STATE/munged.pid" --log-file="$STATE/munge/log/munged.log" \
  --seed-file="$STATE/munge/lib/munged.seed"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

# Wait until the node takes jobs.
for _ in $(seq 60); do
  state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
  if [ "$state" = idle ]; then
    log "node $HOST idle ($CPUs CPUs, ${MEM} MB) in $STATE"
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
log "the node did not become idle (state '${state:-none}'); logs in $STATE/log"
tail -n 5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
exit 6
