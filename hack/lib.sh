#!/usr/bin/env bash
# Shared helpers for the hack/install-*.sh scripts. Source it, don't run it:
#
#   # shellcheck source=hack/lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides:
#   TOOLS_DIR            where downloaded tools live (env IRONKUBE_TOOLS_DIR,
#                        default /opt/ironkube-tools); TOOLS_BIN=$TOOLS_DIR/bin
#   log / warn / die     quiet, prefixed logging to stderr
#   ensure_apt PKG...    install the Debian packages that are missing
#   apt_missing PKG...   print the packages of PKG... that are not installed
#   run_quiet CMD...     run CMD with output captured; show it only on failure
#   need_root            die unless running as root

if [[ -n "${_IRONKUBE_LIB_SH:-}" ]]; then
  return 0
fi
_IRONKUBE_LIB_SH=1

TOOLS_DIR="${IRONKUBE_TOOLS_DIR:-/opt/ironkube-tools}"
TOOLS_BIN="${TOOLS_DIR}/bin"
export TOOLS_DIR TOOLS_BIN

# --- logging ---------------------------------------------------------------

_log_prefix() {
  local name
  name="$(basename "${0:-ironkube}")"
  printf '[%s]' "${name%.sh}"
}

log() {
  printf '%s %s\n' "$(_log_prefix)" "$*" >&2
}

warn() {
  printf '%s WARNING: %s\n' "$(_log_prefix)" "$*" >&2
}

die() {
  printf '%s ERROR: %s\n' "$(_log_prefix)" "$*" >&2
  exit 1
}

# Only log when IRONKUBE_VERBOSE is set (e.g. "already present" messages).
debug() {
  if [[ -n "${IRONKUBE_VERBOSE:-}" ]]; then
    log "$@"
  fi
}

# run_quiet CMD...: run CMD, capturing stdout+stderr; print the capture only
# when CMD fails (and return its exit status).
run_quiet() {
  local out rc=0
  out="$(mktemp "${TMPDIR:-/tmp}/ironkube-log.XXXXXX")"
  "$@" >"$out" 2>&1 || rc=$?
  if ((rc != 0)); then
    printf '%s command failed (exit %d): %s\n' "$(_log_prefix)" "$rc" "$*" >&2
    tail -n 50 "$out" >&2
  fi
  rm -f "$out"
  return "$rc"
}

need_root() {
  if [[ "$(id -u)" -ne 0 ]]; then
    die "must run as root"
  fi
}

# --- Debian packages -------------------------------------------------------

# apt_missing PKG...: print (one per line) the packages that are not fully
# installed. One dpkg-query call for all of them, so it stays fast.
apt_missing() {
  (($# > 0)) || return 0
  local installed
  installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null |
    awk '$2 == "installed" { print $1 }' || true)"
  local pkg
  for pkg in "$@"; do
    # dpkg-query prints names without an ":arch" suffix; strip it from ours.
    if ! grep -qxF -- "${pkg%%:*}" <<<"$installed"; then
      printf '%s\n' "$pkg"
    fi
  done
}

# apt-get update at most once per run. The marker is exported so that child
# scripts (install-deps.sh -> install-*.sh) share it.
_apt_update_once() {
  if [[ -n "${IRONKUBE_APT_UPDATED:-}" ]]; then
    return 0
  fi
  log "apt-get update"
  run_quiet apt-get -qq -o DPkg::Lock::Timeout=300 update
  IRONKUBE_APT_UPDATED=1
  export IRONKUBE_APT_UPDATED
}

# ensure_apt PKG...: install whichever of PKG... is missing (no recommends).
ensure_apt() {
  local -a missing
  mapfile -t missing < <(apt_missing "$@")
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  need_root
  _apt_update_once
  log "apt-get install ${missing[*]}"
  run_quiet env DEBIAN_FRONTEND=noninteractive apt-get -qq -y \
    -o DPkg::Lock::Timeout=300 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    install --no-install-recommends "${missing[@]}"
}
