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
  python3 python3-cryptography python3-protobuf
)

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
