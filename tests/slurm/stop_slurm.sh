#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_slurm.sh started under STATE_DIR (by their pid files
# only) and remove the /etc/slurm/slurm.conf link when it points at STATE_DIR's config.
set -uo pipefail

STATE=${1:?usage: stop_slurm.sh STATE_DIR}
STATE=$(cd "$STATE" && pwd) || exit 0

stop_pid() { # stop_pid PIDFILE NAME: SIGTERM, then SIGKILL after 10 s
  local file=$1 name=$2 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  # Only a process of that name, so a recycled pid is never hit.
  if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$name" ]; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

stop_pid "$STATE/slurmd.pid" slurmd
stop_pid "$STATE/slurmctld.pid" slurmctld
stop_pid "$STATE/munged.pid" munged

LINK=/etc/slurm/slurm.conf
if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$STATE/slurm.conf" ]; then
  rm -f "$LINK"
fi
exit 0
