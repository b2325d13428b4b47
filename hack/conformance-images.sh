# shellcheck shell=bash
# Container images for running the conformance suite in pods, built offline.
# A library for hack/conformance (`images` and `sonobuoy` modes); source it
# after hack/conformance has defined REPO_ROOT, BUILD_DIR, HARNESS_DIR,
# go_env and k8s_version.
#
# No registry is reachable from the machines this runs on, so every image is
# packed here from local files by conformance/imagetools/cmd/ocipack (one
# reproducible layer per staged directory, the `docker save` layout) and
# imported into containerd's k8s.io namespace, the one the CRI (and so a
# kubelet) reads. The names are exactly those the suite or sonobuoy asks for;
# the test image tags come from `e2e.test --list-images`.
#
# What each image holds, against upstream's:
#
#   registry.k8s.io/e2e-test-images/agnhost:<tag>   agnhost built from
#       k8s.io/kubernetes/test/images/agnhost at the pinned release (static);
#       entrypoint, cmd, ports, /agnhost-2, /uploads, porter's localhost
#       certificate and the image-defined user/group as upstream. Stand-in
#       part: the base is the busybox layer below, not Alpine, so bash, dig,
#       iperf, iproute2 and coredns are missing, and /usr/bin/curl is a
#       STAND-IN (conformance/imagetools/cmd/curl, static Go): the curl
#       options the suite's exec hooks and `kubectl exec` commands use, over
#       HTTP/1.1 and HTTPS, with curl's output, -w and exit codes.
#   registry.k8s.io/pause:<tag>    a static pause of our own
#       (conformance/imagetools/cmd/pause); /pause, user 65535 as upstream.
#   registry.k8s.io/e2e-test-images/busybox:<tags>  Debian's busybox-static
#       (a 1.35 release, whatever the tag says): /bin/busybox, an applet
#       symlink per applet in /bin, /etc/passwd and /etc/group, /tmp.
#   registry.k8s.io/e2e-test-images/httpd:<tags>    STAND-IN: busybox's httpd
#       applet serving /usr/local/apache2/htdocs on port 80 (upstream: Apache
#       httpd 2.4 from Docker Hub), started by /usr/local/bin/httpd-foreground
#       as upstream's CMD is.
#   registry.k8s.io/e2e-test-images/nginx:<tags>    STAND-IN: busybox's httpd
#       applet serving /usr/share/nginx/html on port 80, started by
#       /usr/sbin/nginx (a script that ignores nginx's flags).
#   registry.k8s.io/e2e-test-images/nonewprivs:<tag>   a static nnp of our
#       own (conformance/imagetools/cmd/nnp) printing "Effective uid: N" as
#       upstream's does, at /usr/local/bin/nnp, setuid root (4755, 0:0), CMD
#       ["nnp"], no entrypoint or user, Alpine's PATH, as upstream. Stand-in
#       part: the base is the busybox layer, not Alpine.
#   docker.io/sonobuoy/sonobuoy:<version>   the sonobuoy pinned in
#       conformance/sonobuoy, built here; /sonobuoy, user 65532, CMD as
#       upstream. Stand-in part: a few files instead of distroless/static.
#   docker.io/sonobuoy/systemd-logs:v0.4    STAND-IN: busybox plus a
#       /get_systemd_logs.sh that collects `journalctl` output from the node
#       (when the node has it) the way the sonobuoy plugin expects.
#   registry.k8s.io/conformance:<k8s version>   upstream's conformance image
#       layout: e2e.test, ginkgo and kubectl from conformance/_build, go-runner
#       as /usr/local/bin/kubeconformance, /run_e2e.sh and /gorunner, the
#       release's cluster/ tree in /kubernetes/cluster, upstream's ENV and
#       ENTRYPOINT. Stand-in part: the base is the busybox layer, not
#       debian-base.
#
# Every image carries the label ironkube.dev/image-source saying which of the
# above it is. Products are cached in conformance/_build/images: a binary or
# image tarball is rebuilt only when its inputs changed (stamps), and an image
# is re-imported only when containerd does not hold that exact build.

IMAGES_DIR="${BUILD_DIR}/images"
IMAGETOOLS_DIR="${REPO_ROOT}/conformance/imagetools"
SONOBUOY_MOD_DIR="${REPO_ROOT}/conformance/sonobuoy"
# Bump when a recipe below changes in a way the stamps cannot see.
IMAGES_RECIPE=1
# One fixed time for every layer entry and image: reproducible digests.
IMAGE_MTIME=0
CTR=(ctr --address "${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}" -n k8s.io)
SYSTEMD_LOGS_IMAGE=docker.io/sonobuoy/systemd-logs:v0.4

# --- stamps ----------------------------------------------------------------

sha() { sha256sum | cut -d' ' -f1; }

# tree_digest DIR...: a digest of what a layer would hold (paths, types,
# modes, sizes, link targets, and the mtimes of regular files, which staging
# preserves from the sources), without reading the file contents.
tree_digest() {
  find "$@" \( -type f -printf '%P f %m %s %T@\n' \) -o \( ! -type f -printf '%P %y %m %l\n' \) |
    LC_ALL=C sort | sha
}

# up_to_date FILE STAMP: FILE exists and was made from STAMP.
up_to_date() {
  [[ -e "$1" && -r "$1.stamp" && "$(<"$1.stamp")" == "$2" ]]
}

# --- Go binaries -----------------------------------------------------------

# go_bin NAME MODULE_DIR PACKAGE [LDFLAGS]: build PACKAGE (static) in
# MODULE_DIR to IMAGES_DIR/bin/NAME unless the module's pins, its own Go
# sources, the Go version and the flags are those of the last build.
go_bin() {
  local name="$1" mod="$2" pkg="$3" ldflags="${4:--s -w}"
  local out="${IMAGES_DIR}/bin/${name}" stamp
  stamp="$({
    printf '%s\n' "recipe=${IMAGES_RECIPE}" "$(go env GOVERSION)" "${pkg}" "${ldflags}"
    cat "${mod}/go.mod" "${mod}/go.sum"
    find "${mod}" -name '*.go' -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha)"
  if up_to_date "${out}" "${stamp}"; then
    return 0
  fi
  mkdir -p "${IMAGES_DIR}/bin" "${BUILD_DIR}/logs"
  local t blog="${BUILD_DIR}/logs/images-build.log"
  t="$(now)"
  printf '\n=== %s: go build %s\n' "${name}" "${pkg}" >>"${blog}"
  if ! (cd "${mod}" && nice -n 19 go build -trimpath -ldflags "${ldflags}" \
    -o "${out}.part" "${pkg}") >>"${blog}" 2>&1; then
    tail -n 30 "${blog}" >&2
    die "building ${name} (${pkg}) failed; log: ${blog}"
  fi
  mv -f "${out}.part" "${out}"
  printf '%s\n' "${stamp}" >"${out}.stamp"
  log "built ${name}: $(elapsed "${t}") s"
}

# --- staging ---------------------------------------------------------------

# stage_fresh DIR: an empty staging directory (module-cache copies are
# read-only, hence the chmod before removing).
stage_fresh() {
  if [[ -e "$1" ]]; then
    chmod -R u+w "$1"
    rm -rf "$1"
  fi
  mkdir -p "$1"
}

# stage_file SRC DEST [MODE]: put SRC at DEST, keeping its mtime; a hard link
# when possible (the conformance image stages ~170 MB of binaries).
stage_file() {
  local src="$1" dest="$2" mode="${3:-}"
  mkdir -p "$(dirname "${dest}")"
  if [[ -n "${mode}" ]]; then
    cp -p "${src}" "${dest}"
    chmod "${mode}" "${dest}"
  else
    ln -f "${src}" "${dest}" 2>/dev/null || cp -p "${src}" "${dest}"
  fi
}

# stage_text DEST MODE: write stdin to DEST with a fixed mtime, so that the
# stamp only changes when the text does.
stage_text() {
  mkdir -p "$(dirname "$1")"
  cat >"$1"
  chmod "$2" "$1"
  touch -d "@${IMAGE_MTIME}" "$1"
}

# stage_busybox DIR: the base layer of most images: Debian's static busybox,
# an applet symlink per applet in /bin, and the few files a shell-based image
# expects (users, groups, /tmp).
stage_busybox() {
  local dir="$1" applet
  stage_fresh "${dir}"
  stage_file /bin/busybox "${dir}/bin/busybox"
  while read -r applet; do
    [[ -n "${applet}" && "${applet}" != busybox && ! -e "${dir}/bin/${applet}" ]] || continue
    ln -s busybox "${dir}/bin/${applet}"
  done < <(/bin/busybox --list)
  stage_text "${dir}/etc/passwd" 0644 <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  stage_text "${dir}/etc/group" 0644 <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
  mkdir -p "${dir}/tmp" "${dir}/root" "${dir}/usr/bin" "${dir}/usr/sbin" "${dir}/var"
  chmod 1777 "${dir}/tmp"
  chmod 0700 "${dir}/root"
}

# --- packing and importing -------------------------------------------------

# pack_image REF SOURCE LAYER_DIR... -- OCIPACK_FLAG...: build REF's tarball
# from the staged layers unless they and the flags are unchanged; then
# import it. SOURCE says what the image is (the ironkube.dev/image-source label).
pack_image() {
  local ref="$1" source="$2"
  shift 2
  local -a layers=() flags=()
  while (($# > 0)) && [[ "$1" != -- ]]; do
    layers+=("$1")
    shift
  done
  (($# > 0)) && shift
  flags=("$@" -label "ironkube.dev/image-source=${source}")

  local file="${IMAGES_DIR}/tar/${ref//[\/:]/_}.tar" stamp layer
  stamp="$({
    printf '%s\n' "recipe=${IMAGES_RECIPE}" "${ref}" "$(<"${IMAGES_DIR}/bin/ocipack.stamp")" "${flags[@]}"
    for layer in "${layers[@]}"; do tree_digest "${layer}"; done
  } | sha)"
  if ! up_to_date "${file}" "${stamp}"; then
    mkdir -p "${IMAGES_DIR}/tar"
    local -a args=(-ref "${ref}" -out "${file}" -mtime "${IMAGE_MTIME}")
    for layer in "${layers[@]}"; do args+=(-layer "${layer}"); done
    local t
    t="$(now)"
    "${IMAGES_DIR}/bin/ocipack" "${args[@]}" "${flags[@]}" || die "packing ${ref} failed"
    printf '%s\n' "${stamp}" >"${file}.stamp"
    log "packed ${ref}: $(du -h "${file}" | cut -f1), $(elapsed "${t}") s"
  fi
  import_image "${ref}" "${file}"
}

# image_digest REF: the digest containerd holds REF at, if any.
image_digest() {
  "${CTR[@]}" images ls "name==$1" 2>/dev/null | awk -v r="$1" '$1 == r { print $3 }'
}

# import_image REF FILE: import FILE unless containerd holds REF as imported
# from this very file (recorded in FILE.imported: file digest, image digest).
import_image() {
  local ref="$1" file="$2" file_sha held
  file_sha="$(sha256sum "${file}" | cut -d' ' -f1)"
  held="$(image_digest "${ref}")"
  if [[ -n "${held}" && -r "${file}.imported" && "$(<"${file}.imported")" == "${file_sha} ${held}" ]]; then
    debug "${ref} is imported and current"
    return 0
  fi
  local t
  t="$(now)"
  run_quiet "${CTR[@]}" images import "${file}" || die "ctr images import ${file} failed"
  held="$(image_digest "${ref}")"
  [[ -n "${held}" ]] || die "ctr imported ${file} but lists no ${ref}"
  printf '%s %s\n' "${file_sha}" "${held}" >"${file}.imported"
  log "imported ${ref} (${held:0:19}): $(elapsed "${t}") s"
}

# --- what the suite asks for ------------------------------------------------

# listed_images PATTERN: the images of `e2e.test --list-images` whose name
# (without the tag) is PATTERN; dies when there is none, so that a suite
# that renames an image fails loudly instead of silently missing it.
listed_images() {
  local list="${IMAGES_DIR}/list-images.txt"
  if [[ ! -s "${list}" || "${BUILD_DIR}/e2e.test" -nt "${list}" ]]; then
    mkdir -p "${IMAGES_DIR}"
    "${BUILD_DIR}/e2e.test" --list-images >"${list}.part" 2>/dev/null ||
      die "e2e.test --list-images failed"
    mv -f "${list}.part" "${list}"
  fi
  local -a found
  mapfile -t found < <(awk -v n="$1" '{ r = $0; sub(/:[^:\/]*$/, "", r) } r == n' "${list}")
  ((${#found[@]} > 0)) || die "e2e.test --list-images lists no $1"
  printf '%s\n' "${found[@]}"
}

# image_tools: ocipack and pause, and the Debian packages the images need.
image_tools() {
  ensure_apt busybox-static
  [[ -x /bin/busybox ]] || die "busybox-static did not install /bin/busybox"
  go_bin ocipack "${IMAGETOOLS_DIR}" ./cmd/ocipack
  go_bin pause "${IMAGETOOLS_DIR}" ./cmd/pause
}

# --- the test images (hack/conformance images) -------------------------------

build_test_images() {
  local stage="${IMAGES_DIR}/stage" base ref refs
  base="${stage}/busybox"
  stage_busybox "${base}"
  go_bin agnhost "${HARNESS_DIR}" k8s.io/kubernetes/test/images/agnhost
  go_bin curl "${IMAGETOOLS_DIR}" ./cmd/curl
  go_bin nnp "${IMAGETOOLS_DIR}" ./cmd/nnp

  # busybox: every tag the suite lists, all from the one Debian busybox.
  local bb_version
  bb_version="$(/bin/busybox --help 2>&1 | awk 'NR == 1 { print $2 }')"
  refs="$(listed_images registry.k8s.io/e2e-test-images/busybox)"
  for ref in ${refs}; do
    pack_image "${ref}" "busybox-static from Debian (${bb_version})" \
      "${base}" -- -cmd '["sh"]'
  done

  # pause
  local d="${stage}/pause"
  stage_fresh "${d}"
  stage_file "${IMAGES_DIR}/bin/pause" "${d}/pause"
  refs="$(listed_images registry.k8s.io/pause)"
  for ref in ${refs}; do
    pack_image "${ref}" "ironkube imagetools/cmd/pause" "${d}" -- \
      -entrypoint '["/pause"]' -user 65535:65535
  done

  # agnhost, on the busybox base.
  local agn_src
  agn_src="$(cd "${HARNESS_DIR}" && go list -f '{{.Dir}}' k8s.io/kubernetes/test/images/agnhost)"
  d="${stage}/agnhost"
  stage_fresh "${d}"
  stage_file "${IMAGES_DIR}/bin/agnhost" "${d}/agnhost"
  ln -s agnhost "${d}/agnhost-2"
  # The suite runs curl in agnhost containers; Alpine has it, busybox not.
  stage_file "${IMAGES_DIR}/bin/curl" "${d}/usr/bin/curl"
  stage_file "${agn_src}/porter/localhost.crt" "${d}/localhost.crt" 0644
  stage_file "${agn_src}/porter/localhost.key" "${d}/localhost.key" 0600
  mkdir -p "${d}/uploads"
  # The users upstream's Dockerfile adds (tests check an image-defined user).
  stage_text "${d}/etc/passwd" 0644 <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh
EOF
  stage_text "${d}/etc/group" 0644 <<'EOF'
root:x:0:
nogroup:x:65534:
user-defined-in-image:x:1000:
group-defined-in-image:x:50000:user-defined-in-image
EOF
  refs="$(listed_images registry.k8s.io/e2e-test-images/agnhost)"
  for ref in ${refs}; do
    pack_image "${ref}" "agnhost from k8s.io/kubernetes $(k8s_version) on busybox-static, curl stand-in" \
      "${base}" "${d}" -- -entrypoint '["/agnhost"]' -cmd '["pause"]' \
      -port 80 -port 8080 -port 8081 -port 9376 -port 5000
  done

  # httpd and nginx stand-ins: busybox httpd on port 80 with the document
  # roots and start commands of upstream's images.
  d="${stage}/httpd"
  stage_fresh "${d}"
  printf '<html><body><h1>It works!</h1></body></html>\n' |
    stage_text "${d}/usr/local/apache2/htdocs/index.html" 0644
  stage_text "${d}/usr/local/bin/httpd-foreground" 0755 <<'EOF'
#!/bin/sh
# ironkube stand-in for Apache httpd: busybox httpd in the foreground.
exec /bin/busybox httpd -f -v -p 80 -h /usr/local/apache2/htdocs
EOF
  refs="$(listed_images registry.k8s.io/e2e-test-images/httpd)"
  for ref in ${refs}; do
    pack_image "${ref}" "stand-in: busybox httpd (not Apache)" "${base}" "${d}" -- \
      -cmd '["httpd-foreground"]' -workdir /usr/local/apache2 -port 80 \
      -env PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  done

  d="${stage}/nginx"
  stage_fresh "${d}"
  printf '<html><body><h1>Welcome to nginx!</h1></body></html>\n' |
    stage_text "${d}/usr/share/nginx/html/index.html" 0644
  stage_text "${d}/usr/sbin/nginx" 0755 <<'EOF'
#!/bin/sh
# ironkube stand-in for nginx: busybox httpd in the foreground; nginx's
# flags (-g 'daemon off;') are ignored.
exec /bin/busybox httpd -f -v -p 80 -h /usr/share/nginx/html
EOF
  refs="$(listed_images registry.k8s.io/e2e-test-images/nginx)"
  for ref in ${refs}; do
    pack_image "${ref}" "stand-in: busybox httpd (not nginx)" "${base}" "${d}" -- \
      -cmd '["nginx", "-g", "daemon off;"]' -port 80 -env NGINX_VERSION=stand-in \
      -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  done

  # nonewprivs: the allowPrivilegeEscalation tests run it as a non-root user
  # and expect uid 0 from the setuid bit unless no_new_privs is set. Staged
  # as a copy (a hard link would chmod the cached binary too); ocipack keeps
  # the setuid bit and writes every entry owned by 0:0.
  d="${stage}/nonewprivs"
  stage_fresh "${d}"
  stage_file "${IMAGES_DIR}/bin/nnp" "${d}/usr/local/bin/nnp" 4755
  refs="$(listed_images registry.k8s.io/e2e-test-images/nonewprivs)"
  for ref in ${refs}; do
    pack_image "${ref}" "ironkube imagetools/cmd/nnp (setuid root) on busybox-static" \
      "${base}" "${d}" -- -cmd '["nnp"]' \
      -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  done
}

# --- sonobuoy's images (hack/conformance sonobuoy) ---------------------------

# sonobuoy_version: the sonobuoy release pinned in conformance/sonobuoy/go.mod.
sonobuoy_version() {
  # Either `require M V` or `M V` inside a require block.
  awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/vmware-tanzu/sonobuoy" && $(i + 1) ~ /^v/) { print $(i + 1); exit } }' \
    "${SONOBUOY_MOD_DIR}/go.mod"
}

build_sonobuoy_images() {
  local stage="${IMAGES_DIR}/stage" base version sver d
  base="${stage}/busybox"
  version="$(k8s_version)"
  sver="$(sonobuoy_version)"
  [[ -n "${sver}" ]] || die "no sonobuoy version in ${SONOBUOY_MOD_DIR}/go.mod"
  stage_busybox "${base}"
  go_bin sonobuoy "${SONOBUOY_MOD_DIR}" github.com/vmware-tanzu/sonobuoy
  go_bin go-runner "${HARNESS_DIR}" k8s.io/kubernetes/test/conformance/image/go-runner

  # sonobuoy: the aggregator and every plugin's worker sidecar run it.
  # Upstream's base is distroless/static:nonroot; what sonobuoy needs of it
  # is a passwd entry for uid 65532, a writable /tmp and CA certificates.
  d="${stage}/sonobuoy"
  stage_fresh "${d}"
  stage_file "${IMAGES_DIR}/bin/sonobuoy" "${d}/sonobuoy"
  stage_text "${d}/etc/passwd" 0644 <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  stage_text "${d}/etc/group" 0644 <<'EOF'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
EOF
  if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
    stage_file /etc/ssl/certs/ca-certificates.crt "${d}/etc/ssl/certs/ca-certificates.crt" 0644
  fi
  mkdir -p "${d}/tmp" "${d}/home/nonroot"
  chmod 1777 "${d}/tmp"
  pack_image "docker.io/sonobuoy/sonobuoy:${sver}" "sonobuoy ${sver} built from source" "${d}" -- \
    -cmd '["/sonobuoy", "aggregator", "--no-exit", "-v", "3", "--logtostderr"]' \
    -workdir / -user 65532 \
    -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

  # systemd-logs stand-in: the plugin runs /get_systemd_logs.sh with the
  # node's root at CHROOT_DIR and expects the logs in RESULTS_DIR, then a
  # `done` file naming them.
  d="${stage}/systemd-logs"
  stage_fresh "${d}"
  stage_text "${d}/get_systemd_logs.sh" 0755 <<'EOF'
#!/bin/sh
# ironkube stand-in for sonobuoy's systemd-logs plugin: the node's journal
# (as JSON, when the node has journalctl) into RESULTS_DIR, then the done file.
set -u
out="${RESULTS_DIR:-/tmp/results}/${NODE_NAME:-node}"
if [ -x "${CHROOT_DIR:-/node}/bin/journalctl" ] || [ -x "${CHROOT_DIR:-/node}/usr/bin/journalctl" ]; then
  chroot "${CHROOT_DIR:-/node}" journalctl -o json --no-pager >"${out}" 2>&1
else
  echo "journalctl not found on the node" >"${out}"
fi
printf '%s' "${out}" >"${RESULTS_DIR:-/tmp/results}/done"
EOF
  pack_image "${SYSTEMD_LOGS_IMAGE}" "stand-in: busybox and a journalctl script" "${base}" "${d}" -- \
    -cmd '["/get_systemd_logs.sh"]'

  # The conformance image, laid out as upstream's test/conformance/image.
  local k8s_src
  k8s_src="$(cd "${HARNESS_DIR}" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
  [[ -d "${k8s_src}/cluster" ]] || die "no cluster/ in ${k8s_src}"
  d="${stage}/conformance"
  stage_fresh "${d}"
  local bin
  for bin in e2e.test ginkgo kubectl; do
    stage_file "${BUILD_DIR}/${bin}" "${d}/usr/local/bin/${bin}"
  done
  stage_file "${IMAGES_DIR}/bin/go-runner" "${d}/usr/local/bin/kubeconformance"
  stage_file "${IMAGES_DIR}/bin/go-runner" "${d}/run_e2e.sh"
  stage_file "${IMAGES_DIR}/bin/go-runner" "${d}/gorunner"
  mkdir -p "${d}/kubernetes"
  cp -rp "${k8s_src}/cluster" "${d}/kubernetes/cluster"
  chmod -R u+w "${d}/kubernetes"
  pack_image "registry.k8s.io/conformance:${version}" \
    "conformance image of k8s.io/kubernetes ${version}, built from source on busybox-static" \
    "${base}" "${d}" -- \
    -entrypoint '["kubeconformance"]' \
    -env 'E2E_FOCUS=\[Conformance\]' -env E2E_SKIP= -env E2E_PROVIDER=local \
    -env E2E_PARALLEL=1 -env E2E_VERBOSITY=4 -env RESULTS_DIR=/tmp/results -env KUBECONFIG= \
    -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}
