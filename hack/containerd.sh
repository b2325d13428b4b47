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
#   CLUSTER_CIDR        all nodes' pod CIDRs (default 10.244.0.0/16)
#   SERVICE_CIDR        service ClusterIPs (default 10.96.0.0/12)
#
# The config (written to /run/ironkube-containerd/config.toml on each start)
# is Debian's plus a pinned CRI sandbox image: registry.k8s.io/pause:3.10.1,
# the pause image of Kubernetes 1.34, which `hack/conformance images` builds
# and imports; containerd 1.6's default (pause:3.6) would need a registry.
#
# Pod networking is the CRI plugin's CNI with Debian's plugins (/usr/lib/cni):
# a bridge `ironkube0` with host-local IPAM and portmap (the CRI plugin adds
# the loopback itself), no masquerading. The network config is a template:
# the kubelet hands its node's pod CIDR to containerd (CRI
# UpdateRuntimeConfig), which then writes ${STATE_DIR}/net.d/ from it; the
# directory is emptied whenever this script starts containerd. Nothing a pod
# sends may leave the machine: a FORWARD rule (chain IRONKUBE-POD-EGRESS,
# rewritten on every `start`) drops what pods send to addresses outside the
# cluster and service CIDRs.
#
# A containerd this script started with an older config is restarted by
# `start`; one started by someone else is used as it is.
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
CNI_CONF_DIR="${STATE_DIR}/net.d"
CNI_TEMPLATE="${STATE_DIR}/cni-template.conflist"
SANDBOX_IMAGE=registry.k8s.io/pause:3.10.1
CLUSTER_CIDR="${CLUSTER_CIDR:-10.244.0.0/16}"
SERVICE_CIDR="${SERVICE_CIDR:-10.96.0.0/12}"
EGRESS_CHAIN=IRONKUBE-POD-EGRESS

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

# render_config: the containerd config this script runs containerd with.
render_config() {
  cat <<TOML
# Written by hack/containerd.sh; rewritten on every start.
version = 2

[grpc]
  address = "${ADDRESS}"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "${SANDBOX_IMAGE}"
    # Sandboxes this machine runs in may not lower oom_score_adj (the pause
    # container asks for -998): keep containers at or above containerd's.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "${CNI_CONF_DIR}"
      conf_template = "${CNI_TEMPLATE}"
      max_conf_num = 1
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
TOML
}

# The CNI network, {{.PodCIDR}} filled in by containerd from the kubelet's
# pod CIDR. The default route goes through the bridge's gateway address;
# what is not for the cluster is dropped in FORWARD (setup_egress).
render_cni_template() {
  cat <<'JSON'
{
  "cniVersion": "0.4.0",
  "name": "ironkube",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "ironkube0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "{{.PodCIDR}}" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
}

write_config() {
  mkdir -p "${STATE_DIR}"
  render_config >"${CONFIG}.tmp"
  mv -f "${CONFIG}.tmp" "${CONFIG}"
  render_cni_template >"${CNI_TEMPLATE}.tmp"
  mv -f "${CNI_TEMPLATE}.tmp" "${CNI_TEMPLATE}"
  # A fresh containerd takes its pod CIDR from the next kubelet.
  rm -rf "${CNI_CONF_DIR}"
  mkdir -p "${CNI_CONF_DIR}"
}

# config_current: the running containerd was started with today's config.
config_current() {
  [[ -r "${CONFIG}" && -r "${CNI_TEMPLATE}" ]] &&
    [[ "$(render_config)" == "$(<"${CONFIG}")" ]] &&
    [[ "$(render_cni_template)" == "$(<"${CNI_TEMPLATE}")" ]]
}

# setup_egress: drop forwarded packets from pods to anything outside the
# cluster and service CIDRs, so nothing a pod sends leaves the machine.
# Idempotent: the chain is flushed and refilled, the jump added once.
setup_egress() {
  iptables -w -N "${EGRESS_CHAIN}" 2>/dev/null || true
  iptables -w -F "${EGRESS_CHAIN}"
  iptables -w -A "${EGRESS_CHAIN}" -s "${CLUSTER_CIDR}" -d "${CLUSTER_CIDR}" -j RETURN
  iptables -w -A "${EGRESS_CHAIN}" -s "${CLUSTER_CIDR}" -d "${SERVICE_CIDR}" -j RETURN
  iptables -w -A "${EGRESS_CHAIN}" -s "${CLUSTER_CIDR}" -j DROP
  iptables -w -C FORWARD -j "${EGRESS_CHAIN}" 2>/dev/null ||
    iptables -w -I FORWARD 1 -j "${EGRESS_CHAIN}"
}

cmd_start() {
  if answers; then
    if our_pid >/dev/null && ! config_current; then
      log "containerd runs with an older config; restarting it"
      cmd_stop
    else
      debug "containerd already answers on ${ADDRESS}"
      setup_egress
      return 0
    fi
  fi
  need_root
  setup_egress
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
