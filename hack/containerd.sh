#!/usr/bin/env bash
# Run containerd as a plain background process (this machine has no systemd
# to run the packaged unit):
#
#   hack/containerd.sh start    start containerd unless one already answers
#                               on the socket; returns once `ctr version`
#                               answers (or fails after CONTAINERD_WAIT s)
#   hack/containerd.sh stop     stop the containerd this script started
#   hack/containerd.sh status   exit 0 and print the versions when containerd
#                               answers, exit 1 otherwise
#
# Installs containerd, runc and the CNI plugins first (hack/install-containerd.sh).
# A containerd that answers on the socket is used as it is, whoever started it;
# `stop` only ever stops the process whose pid `start` recorded.
#
# Environment:
#   CONTAINERD_ADDRESS  socket (default /run/containerd/containerd.sock)
#   CONTAINERD_LOG      log file (default /var/log/ironkube-containerd.log)
#   CONTAINERD_WAIT     seconds to wait for it to answer (default 30)
#
# The config (written to /run/ironkube-containerd/config.toml on each start)
# is Debian's plus a pinned CRI sandbox image: registry.k8s.io/pause:3.10.1,
# the pause image of Kubernetes 1.34, which `hack/conformance images` builds
# and imports; containerd 1.6's default (pause:3.6) would need a registry.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

ADDRESS="${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}"
LOG_FILE="${CONTAINERD_LOG:-/var/log/ironkube-containerd.log}"
WAIT_S="${CONTAINERD_WAIT:-30}"
STATE_DIR=/run/ironkube-containerd
PID_FILE="${STATE_DIR}/containerd.pid"
CONFIG="${STATE_DIR}/config.toml"
SANDBOX_IMAGE=registry.k8s.io/pause:3.10.1

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# answers: containerd serves on the socket. Without -S, ctr would spend its
# whole connect timeout dialing a socket that does not exist yet.
answers() {
  [[ -S "${ADDRESS}" ]] &&
    ctr --address "${ADDRESS}" --connect-timeout 1s --timeout 2s version >/dev/null 2>&1
}

# our_pid: the pid recorded by `start`, if that process still is containerd.
our_pid() {
  local pid
  [[ -r "${PID_FILE}" ]] || return 1
  pid="$(<"${PID_FILE}")"
  [[ "${pid}" =~ ^[0-9]+$ && "$(cat "/proc/${pid}/comm" 2>/dev/null)" == containerd ]] || return 1
  printf '%s\n' "${pid}"
}

write_config() {
  mkdir -p "${STATE_DIR}"
  cat >"${CONFIG}.tmp" <<TOML
# Written by hack/containerd.sh; rewritten on every start.
version = 2

[grpc]
  address = "${ADDRESS}"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "${SANDBOX_IMAGE}"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
TOML
  mv -f "${CONFIG}.tmp" "${CONFIG}"
}

cmd_start() {
  if answers; then
    debug "containerd already answers on ${ADDRESS}"
    return 0
  fi
  need_root
  bash "${HACK_DIR}/install-containerd.sh"
  write_config
  mkdir -p "$(dirname "${LOG_FILE}")"
  log "starting containerd (socket ${ADDRESS}, log ${LOG_FILE})"
  # setsid: containerd must outlive this script and not get its signals
  # (a Ctrl-C in the caller's terminal, a job-control kill of its group).
  setsid containerd --config "${CONFIG}" >>"${LOG_FILE}" 2>&1 </dev/null &
  local pid=$!
  printf '%s\n' "${pid}" >"${PID_FILE}"
  local deadline=$((SECONDS + WAIT_S))
  until answers; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      tail -n 20 "${LOG_FILE}" >&2
      die "containerd exited during start-up; log: ${LOG_FILE}"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "${LOG_FILE}" >&2
      die "containerd did not answer on ${ADDRESS} within ${WAIT_S} s"
    fi
    sleep 0.1
  done
  log "containerd ready (pid ${pid})"
}

cmd_stop() {
  local pid
  if ! pid="$(our_pid)"; then
    debug "no containerd started by this script is running"
    rm -f "${PID_FILE}"
    return 0
  fi
  log "stopping containerd (pid ${pid})"
  kill -TERM "${pid}"
  local deadline=$((SECONDS + WAIT_S))
  while kill -0 "${pid}" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      warn "containerd (pid ${pid}) ignored SIGTERM for ${WAIT_S} s; killing it"
      kill -KILL "${pid}" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "${PID_FILE}"
}

cmd_status() {
  if answers; then
    ctr --address "${ADDRESS}" --connect-timeout 1s --timeout 2s version
    return 0
  fi
  printf 'containerd does not answer on %s\n' "${ADDRESS}"
  return 1
}

main() {
  (($# == 1)) || usage
  case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) usage ;;
  esac
}

main "$@"
