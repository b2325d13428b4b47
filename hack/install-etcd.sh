#!/usr/bin/env bash
# Install etcd (server + etcdctl) from Debian: etcd-server, etcd-client
# (bookworm: 3.4.23) -> /usr/bin/etcd, /usr/bin/etcdctl.
#
# The tests start their own etcd processes, so the system etcd service that
# the package sets up must not be running or enabled:
#   - while installing, service starts are denied through policy-rc.d (a
#     temporary one is created if the machine has none), so the package's
#     postinst never starts etcd, with or without systemd;
#   - afterwards (and on every run) the service is disabled for systemd and
#     SysV init, and a package-started etcd, if any, is stopped.
# Idempotent and fast (a few dpkg-query/file checks) when all is in place.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

ETCD_PKGS=(etcd-server etcd-client)
POLICY_RC=/usr/sbin/policy-rc.d

systemd_running() {
  [[ -d /run/systemd/system ]]
}

install_packages() {
  local -a missing
  mapfile -t missing < <(apt_missing "${ETCD_PKGS[@]}")
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  need_root

  local temp_policy=""
  if [[ ! -e "$POLICY_RC" ]]; then
    temp_policy=1
    trap 'rm -f "$POLICY_RC"' EXIT
    printf '#!/bin/sh\n# ironkube hack/install-etcd.sh: deny service starts while installing\nexit 101\n' >"$POLICY_RC"
    chmod 0755 "$POLICY_RC"
  fi

  ensure_apt "${missing[@]}"

  if [[ -n "$temp_policy" ]]; then
    rm -f "$POLICY_RC"
    trap - EXIT
  fi
}

# Stop an etcd that the init script started (pid file written by
# start-stop-daemon --make-pidfile), checking that the pid really is etcd.
stop_sysv_etcd() {
  local pidfile pid
  for pidfile in /run/etcd.pid /var/run/etcd.pid; do
    [[ -r "$pidfile" ]] || continue
    pid="$(<"$pidfile")"
    if [[ "$pid" =~ ^[0-9]+$ && "$(cat "/proc/${pid}/comm" 2>/dev/null)" == "etcd" ]]; then
      log "stopping the system etcd service (pid ${pid})"
      if [[ -x /etc/init.d/etcd ]]; then
        run_quiet /etc/init.d/etcd stop || kill "$pid" 2>/dev/null || true
      else
        kill "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$pidfile"
  done
}

disable_service() {
  # systemd: unit enablement symlinks exist even when systemd isn't running.
  if systemd_running; then
    if systemctl is-active --quiet etcd.service 2>/dev/null; then
      log "stopping etcd.service"
      run_quiet systemctl stop etcd.service || warn "could not stop etcd.service"
    fi
    if systemctl is-enabled --quiet etcd.service 2>/dev/null; then
      log "disabling etcd.service"
      run_quiet systemctl disable etcd.service || warn "could not disable etcd.service"
    fi
  elif compgen -G '/etc/systemd/system/*.wants/etcd.service' >/dev/null; then
    # No running systemd: systemctl edits the symlinks offline.
    debug "disabling etcd.service (offline)"
    if ! { command -v systemctl >/dev/null && run_quiet systemctl disable etcd.service; }; then
      rm -f /etc/systemd/system/*.wants/etcd.service /etc/systemd/system/etcd2.service
    fi
  fi

  # SysV init: S links in the runlevel directories.
  if compgen -G '/etc/rc[2-5].d/S[0-9][0-9]etcd' >/dev/null; then
    debug "disabling the etcd init script"
    run_quiet update-rc.d etcd disable || warn "could not disable /etc/init.d/etcd"
  fi

  stop_sysv_etcd
}

main() {
  install_packages
  command -v etcd >/dev/null || die "etcd not found after installing ${ETCD_PKGS[*]}"
  command -v etcdctl >/dev/null || die "etcdctl not found after installing ${ETCD_PKGS[*]}"
  disable_service
  debug "etcd ready: $(command -v etcd), $(command -v etcdctl)"
}

main "$@"
