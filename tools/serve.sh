#!/usr/bin/env bash
# Sets up this machine (once), builds the server and starts it on an embedded
# RocksDB data directory (default ./data). Extra arguments go to the server:
#   bash tools/serve.sh --listen=127.0.0.1:7171 --data_dir=/var/lib/caseledger
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bazel build //services/api:caseledger_server //tools:ledgerctl
data_dir="$PWD/data"
# Plaintext on loopback for development, unless TLS flags are given
# (tools/make_dev_certs.sh makes a dev CA and certificates).
transport="--insecure_loopback"
for arg in "$@"; do
  case "$arg" in
    --data_dir=*) data_dir="" ;;
    --tls_*|--insecure_loopback*) transport="" ;;
  esac
done
exec bazel-bin/services/api/caseledger_server ${data_dir:+--data_dir="$data_dir"} \
  ${transport} "$@"
