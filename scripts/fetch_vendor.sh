#!/usr/bin/env bash
# Fetch the vendored front-end libraries into static/vendor/.
#
# Usage: bash scripts/fetch_vendor.sh
#
# Downloads pinned tarballs from the npm registry with `npm pack` (nothing is
# installed, no node_modules is created; all work happens in a temporary
# directory), verifies each tarball against the sha512 integrity and sha1
# shasum that `npm view` reports, and copies the unmodified distributable
# files, the LICENSE and a VERSION record into static/vendor/<name>/.
# Running it again with the same pins produces byte-identical output.
set -euo pipefail

# --- Pinned versions ---------------------------------------------------------
# htmx.org: latest 2.x release. htmx-ext-ws: latest 2.x (depends on htmx.org ^2.0.2).
readonly HTMX_VERSION="2.0.11"
readonly HTMX_WS_VERSION="2.0.4"

# Each entry: npm-package|version|file-inside-tarball|vendor-dir|target-file
readonly PACKAGES=(
  "htmx.org|${HTMX_VERSION}|package/dist/htmx.min.js|htmx|htmx.min.js"
  "htmx-ext-ws|${HTMX_WS_VERSION}|package/dist/ws.js|htmx-ext-ws|ws.js"
)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly VENDOR_DIR="${ROOT}/static/vendor"

die() {
  printf 'fetch_vendor: error: %s\n' "$*" >&2
  exit 1
}

log() {
  printf 'fetch_vendor: %s\n' "$*"
}

for tool in npm node tar sha1sum sha256sum; do
  command -v "${tool}" >/dev/null 2>&1 || die "required tool not found: ${tool}"
done

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/fetch_vendor.XXXXXX")"
readonly WORK_DIR
cleanup() {
  rm -rf -- "${WORK_DIR}"
}
trap cleanup EXIT

# sha512 of a file in npm's Subresource-Integrity form: "sha512-<base64>".
sri_sha512() {
  node -e '
    const crypto = require("crypto");
    const fs = require("fs");
    const digest = crypto.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64");
    process.stdout.write("sha512-" + digest);
  ' "$1"
}

fetch_package() {
  local name="$1" version="$2" src="$3" dir="$4" target="$5"
  local spec="${name}@${version}"
  local pkg_work="${WORK_DIR}/${dir}"
  mkdir -p "${pkg_work}/extract" "${pkg_work}/out"

  log "resolving ${spec}"
  local integrity shasum tarball_url
  integrity="$(npm view "${spec}" dist.integrity)"
  shasum="$(npm view "${spec}" dist.shasum)"
  tarball_url="$(npm view "${spec}" dist.tarball)"
  [[ "${integrity}" == sha512-* ]] || die "${spec}: unexpected integrity from npm view: '${integrity}'"
  [[ "${shasum}" =~ ^[0-9a-f]{40}$ ]] || die "${spec}: unexpected shasum from npm view: '${shasum}'"

  log "packing ${spec}"
  local tarball_name
  tarball_name="$(cd "${pkg_work}" && npm pack "${spec}" --ignore-scripts --silent --pack-destination "${pkg_work}")"
  tarball_name="${tarball_name##*$'\n'}"
  local tarball="${pkg_work}/${tarball_name}"
  [[ -f "${tarball}" ]] || die "${spec}: npm pack did not produce ${tarball}"

  local actual_integrity actual_shasum
  actual_integrity="$(sri_sha512 "${tarball}")"
  actual_shasum="$(sha1sum "${tarball}" | cut -d' ' -f1)"
  [[ "${actual_integrity}" == "${integrity}" ]] \
    || die "${spec}: integrity mismatch (npm: ${integrity}, tarball: ${actual_integrity})"
  [[ "${actual_shasum}" == "${shasum}" ]] \
    || die "${spec}: shasum mismatch (npm: ${shasum}, tarball: ${actual_shasum})"
  log "verified ${spec} ${integrity}"

  tar -xzf "${tarball}" -C "${pkg_work}/extract" --no-same-owner --no-same-permissions
  [[ -f "${pkg_work}/extract/${src}" ]] || die "${spec}: ${src} not found in tarball"
  [[ -f "${pkg_work}/extract/package/LICENSE" ]] || die "${spec}: LICENSE not found in tarball"

  cp -- "${pkg_work}/extract/${src}" "${pkg_work}/out/${target}"
  cp -- "${pkg_work}/extract/package/LICENSE" "${pkg_work}/out/LICENSE"
  chmod 0644 "${pkg_work}/out/${target}" "${pkg_work}/out/LICENSE"

  local file_sha256
  file_sha256="$(sha256sum "${pkg_work}/out/${target}" | cut -d' ' -f1)"
  {
    printf 'name: %s\n' "${name}"
    printf 'version: %s\n' "${version}"
    printf 'integrity: %s\n' "${integrity}"
    printf 'shasum: %s\n' "${shasum}"
    printf 'tarball: %s\n' "${tarball_url}"
    printf 'file: %s (copied unmodified from %s)\n' "${target}" "${src}"
    printf 'file-sha256: %s\n' "${file_sha256}"
  } >"${pkg_work}/out/VERSION"
  chmod 0644 "${pkg_work}/out/VERSION"

  # Replace the vendor directory wholesale so stale files never linger.
  local dest="${VENDOR_DIR}/${dir}"
  local staging="${VENDOR_DIR}/.${dir}.staging"
  rm -rf -- "${staging}"
  mkdir -p "${VENDOR_DIR}"
  cp -R -- "${pkg_work}/out" "${staging}"
  rm -rf -- "${dest}"
  mv -- "${staging}" "${dest}"
  log "wrote ${dest#"${ROOT}/"}/{${target},LICENSE,VERSION}"
}

for entry in "${PACKAGES[@]}"; do
  IFS='|' read -r p_name p_version p_src p_dir p_target <<<"${entry}"
  fetch_package "${p_name}" "${p_version}" "${p_src}" "${p_dir}" "${p_target}"
done

log "done"
