#!/usr/bin/env bash
# Install a container runtime from Debian: containerd (with ctr), runc and the
# CNI plugins (containernetworking-plugins, in /usr/lib/cni). Only what is
# missing is installed, and `apt-get update` runs at most once, only when
# something is missing; with everything in place this is one dpkg-query.
#
# The packages ship a systemd unit only. Without a running systemd nothing
# starts containerd; hack/containerd.sh starts and stops it as a plain
# background process for the scripts that need it (hack/conformance).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

CONTAINERD_PKGS=(containerd runc containernetworking-plugins)

main() {
  ensure_apt "${CONTAINERD_PKGS[@]}"
  local bin
  for bin in containerd ctr runc; do
    command -v "${bin}" >/dev/null || die "${bin} not found after installing ${CONTAINERD_PKGS[*]}"
  done
  [[ -x /usr/lib/cni/bridge ]] || warn "no /usr/lib/cni/bridge: containernetworking-plugins looks incomplete"
  debug "containerd $(containerd --version | awk '{ print $3 }'), runc and CNI plugins are installed"
}

main "$@"
