#!/usr/bin/env bash
# One-stop setup for building and testing ironkube on Debian 12 (run as root):
#   - build tools from Debian: build-essential, pkg-config, curl,
#     ca-certificates, unzip, protobuf-compiler + libprotobuf-dev (etcd-client build)
#   - kubectl 1.34/1.32 + Helm 4/3 into $TOOLS_DIR (hack/install-kubectl.sh)
#   - etcd + etcdctl from Debian, service disabled (hack/install-etcd.sh)
#   - containerd, runc and the CNI plugins from Debian (hack/install-containerd.sh),
#     and busybox-static (the base of the locally built test images)
# Idempotent; apt-get update runs at most once, and only if something is
# missing. A no-op run takes well under 2 s. Set IRONKUBE_VERBOSE=1 for more
# output, IRONKUBE_TOOLS_DIR to change the tools directory.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

BUILD_PKGS=(build-essential pkg-config curl ca-certificates unzip protobuf-compiler libprotobuf-dev
  busybox-static)

ensure_apt "${BUILD_PKGS[@]}"
# Child scripts inherit IRONKUBE_APT_UPDATED, so apt-get update stays single.
bash "${HACK_DIR}/install-kubectl.sh"
bash "${HACK_DIR}/install-etcd.sh"
bash "${HACK_DIR}/install-containerd.sh"

debug "dependencies ready; kubectl/helm in ${TOOLS_BIN}, etcd in $(dirname "$(command -v etcd)")"
