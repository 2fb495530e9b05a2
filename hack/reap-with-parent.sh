#!/usr/bin/env bash
# reap-with-parent.sh PARENT_PID CMD [ARGS...]
#
# Runs CMD so that it dies with PARENT_PID, even when the parent is killed with SIGKILL
# (the test bed's children must not outlive a test binary).
#
# CMD is exec'd: it keeps this script's pid, so the caller's process handle *is* CMD (SIGTERM,
# SIGKILL and the exit status reach and come from CMD itself, nothing needs forwarding). A
# background watcher polls every 0.5 s; once PARENT_PID is gone it sends CMD SIGTERM, then
# SIGKILL after 5 s. The watcher exits on its own when CMD is gone.
#
# REAP_RM_DIR=DIR: after the parent is gone and CMD has ended, the watcher also removes DIR
# (for scratch directories of processes that a test binary never gets to clean up).
set -u
if [[ $# -lt 2 ]]; then
  echo "usage: $0 PARENT_PID CMD [ARGS...]" >&2
  exit 2
fi
parent="$1"
shift
me=$$
rm_dir="${REAP_RM_DIR:-}"
unset REAP_RM_DIR
(
  trap '' TERM INT HUP
  while kill -0 "$me" 2>/dev/null; do
    if ! kill -0 "$parent" 2>/dev/null; then
      kill -TERM "$me" 2>/dev/null
      for _ in $(seq 1 10); do
        kill -0 "$me" 2>/dev/null || break
        sleep 0.5
      done
      kill -KILL "$me" 2>/dev/null
      if [[ -n "$rm_dir" ]]; then
        sleep 0.5
        rm -rf -- "$rm_dir"
      fi
      exit 0
    fi
    sleep 0.5
  done
) </dev/null >/dev/null 2>&1 &
exec "$@"
