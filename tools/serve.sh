#!/usr/bin/env bash
# Sets up this machine (once), builds the server and starts it on an embedded
# RocksDB data directory (default ./data). Extra arguments go to the server:
#   bash tools/serve.sh --listen=127.0.0.1:7171 --data_dir=/var/lib/caseledger
#
# Payloads are encrypted at rest (ledger/ENCRYPTION.md). Unless you pass
# --master_key_file or set CASELEDGER_MASTER_KEY, a development master key is
# generated once at ${CASELEDGER_DEV_KEY:-~/.config/caseledger/dev-master.key}
# (mode 0600, outside the data directory) and used. Losing that key makes the
# encrypted payloads unreadable. CASELEDGER_PLAINTEXT=1 stores them unencrypted.
#
# CASELEDGER_SERVE_PREBUILT=1 skips setup and build and runs the binaries found
# under this script's tree as Bazel's runfiles lay them out (the README test,
# tests/readme_e2e_test.cc, starts the server through this script that way).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bazel-bin
if [[ -n "${CASELEDGER_SERVE_PREBUILT:-}" ]]; then
  bin=.
else
  bash tools/setup.sh
  bazel build //services/api:caseledger_server //tools:ledgerctl //tools:caseledger_keys
fi
data_dir="$PWD/data"
# The transport: plaintext on loopback for development, unless TLS flags are given
# (tools/make_dev_certs.sh makes a dev CA and certificates).
transport="--insecure_loopback"
key_given=""
for arg in "$@"; do
  case "$arg" in
    --data_dir=*) data_dir="" ;;
    --tls_*|--insecure_loopback*) transport="" ;;
    --master_key_file=*) key_given=1 ;;
  esac
done
# Payloads encrypted at rest under a development master key kept outside the
# data directory, unless a key is given or CASELEDGER_PLAINTEXT is set.
key_flag=""
if [[ -z "$key_given" && -z "${CASELEDGER_MASTER_KEY:-}" && -z "${CASELEDGER_PLAINTEXT:-}" ]]; then
  dev_key="${CASELEDGER_DEV_KEY:-$HOME/.config/caseledger/dev-master.key}"
  if [[ ! -f "$dev_key" ]]; then
    mkdir -p "$(dirname "$dev_key")"
    "$bin"/tools/caseledger_keys generate-master-key --out="$dev_key"
  fi
  echo "serve.sh: development master key $dev_key (keep it; it unlocks the payloads)" >&2
  key_flag="--master_key_file=$dev_key"
fi
exec "$bin"/services/api/caseledger_server ${data_dir:+--data_dir="$data_dir"} \
  ${transport} ${key_flag:+"$key_flag"} "$@"
