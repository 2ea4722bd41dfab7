#!/usr/bin/env bash
# Validates the pinned FHIR exports against the R4 StructureDefinitions
# offline (validate.js, @medplum/core), and checks that the validator
# refuses broken resources, so that this test can fail.
#
# node_modules is installed by tools/setup.sh (npm ci in tests/fhir, from the
# committed package-lock.json). This test finds it beside the real
# package.json: its runfile is a symlink into the source tree.
set -euo pipefail
here=$(dirname "$(readlink -f "$1")")  # tests/fhir in the source tree
shift
if [ ! -d "$here/node_modules/@medplum/core" ]; then
  echo "FAIL: $here/node_modules is missing: run bash tools/setup.sh (npm ci in tests/fhir)" >&2
  exit 1
fi
export NODE_PATH="$here/node_modules"
valid=()
invalid=()
for f in "$@"; do
  case "$f" in
    */broken_*) invalid+=("$f") ;;
    *) valid+=("$f") ;;
  esac
done
[ "${#valid[@]}" -gt 0 ] && [ "${#invalid[@]}" -gt 0 ] || { echo "FAIL: want valid and broken files" >&2; exit 1; }
node "$here/validate.js" "${valid[@]}"
node "$here/validate.js" --expect-invalid "${invalid[@]}"
echo PASS
