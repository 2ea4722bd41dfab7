#!/usr/bin/env bash
# Sets up this machine (once), builds everything and runs every test.
# Ends with one line "N passed, N failed", counting test cases from each test
# target's results (a target that fails to build or crashes counts as failed).
set -uo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Optional arguments replace //... (e.g. tools/test.sh //ledger/...).
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(//...)
bazel test --keep_going --test_summary=short -- "${targets[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

passed=0
failed=0
testlogs=$(bazel info bazel-testlogs 2>/dev/null)
while read -r target status; do
  xml="$testlogs/${target#//}"
  xml="${xml/://}/test.xml"
  tests=0 failures=0
  if [ -f "$xml" ]; then
    # The first <testsuites ...> line carries the totals for the target.
    line=$(grep -m1 '<testsuites' "$xml")
    tests=$(sed -n 's/.* tests="\([0-9]*\)".*/\1/p' <<<"$line")
    fail=$(sed -n 's/.* failures="\([0-9]*\)".*/\1/p' <<<"$line")
    errs=$(sed -n 's/.* errors="\([0-9]*\)".*/\1/p' <<<"$line")
    skip=$(sed -n 's/.* disabled="\([0-9]*\)".*/\1/p' <<<"$line")
    tests=${tests:-0}
    failures=$(( ${fail:-0} + ${errs:-0} ))
    tests=$(( tests - ${skip:-0} ))
  fi
  if [ "$status" = PASSED ]; then
    passed=$(( passed + tests - failures ))
  else
    # Failed, timed out, crashed or never built: at least one failure.
    [ "$failures" -gt 0 ] || failures=1
    failed=$(( failed + failures ))
    passed=$(( passed + (tests > failures ? tests - failures : 0) ))
  fi
done < <(awk '/^\/\/[^ ]+ +/ && /(PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE)/ {
                status = ($0 ~ /PASSED/ && $0 !~ /FAILED/) ? "PASSED" : "FAILED"; print $1, status }' "$log")

if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$rc" -ne 0 ]; then
  failed=1  # the build failed before any test ran
fi
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
