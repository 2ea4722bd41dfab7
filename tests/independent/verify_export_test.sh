#!/usr/bin/env bash
# The independent verifier (verify_export.py, written from the markdown specs
# alone) and ledger_verify must agree on every bundle: both accept the intact
# ones, and both reject each damaged copy naming the same first bad seq.
set -euo pipefail

PY=/usr/bin/python3  # Debian's python3 with python3-cryptography (tools/setup.sh)
DIR=tests/independent
VERIFY="$PY $DIR/verify_export.py"
LEDGER_VERIFY=tools/ledger_verify
MAKE=$DIR/make_bundle
T="${TEST_TMPDIR:-$(mktemp -d)}"
# The golden inputs (BUNDLE.md "Golden vector"): key seed 32 x 0x42, name caseledger.test.
KEY='caseledger.test+79b6595a+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS'
ORIGIN='caseledger.test/log'
failed=0

# verdict BUNDLE -> "OK" or "FAIL <seq>" for each verifier, and checks they agree.
check() {  # check NAME BUNDLE WANT   (WANT: OK or the first bad seq)
  local name=$1 bundle=$2 want=$3 py lv py_v lv_v
  py=$($VERIFY "$bundle" --key="$KEY" --origin="$ORIGIN" || true)
  lv=$($LEDGER_VERIFY --bundle="$bundle" --key="$KEY" --origin="$ORIGIN" --progress=false || true)
  if [[ $py == OK* ]]; then py_v=OK; else py_v=$(sed -n 's/.*(first bad seq \([0-9]*\))$/\1/p' <<<"$py"); fi
  if grep -q '^OK: the ledger verifies' <<<"$lv"; then lv_v=OK
  else lv_v=$(sed -n 's/^FAIL at seq \([0-9]*\):.*/\1/p' <<<"$lv" | head -1); fi
  if [[ $py_v != "$want" || $lv_v != "$want" ]]; then
    echo "FAIL $name: want $want; verify_export.py says ${py_v:-?} ($py); ledger_verify says ${lv_v:-?}"
    echo "$lv" | sed 's/^/    ledger_verify: /'
    failed=1
  else
    echo "ok   $name: both say $want  | $py"
  fi
}

# The golden bundle, rebuilt from the inputs BUNDLE.md lists, byte for byte.
if [[ $($PY $DIR/make_golden_bundle.py ledger/BUNDLE.md | tr -d ' \n') != $(tr -d ' \n' < tests/testdata/bundle_golden.hex) ]]; then
  echo "FAIL golden-inputs: make_golden_bundle.py (BUNDLE.md \"Golden vector\") does not give bundle_golden.hex"
  failed=1
else
  echo "ok   golden-inputs: BUNDLE.md's inputs rebuild bundle_golden.hex byte for byte"
fi

# The golden bundle's synthetic checkpoints carry no subjects line, so the
# auditor's subjects check refuses its first checkpoint (size 2 -> seq 1).
xxd -r -p tests/testdata/bundle_golden.hex > "$T/golden.bundle"
check golden "$T/golden.bundle" 1

# A larger export with subjects lines: 1000 records, checkpoints every 64.
$MAKE "$T/full.bundle" 1000 64 0 full subjects
check full "$T/full.bundle" OK
$MAKE "$T/lean.bundle" 1000 64 0 lean subjects
check commitments-only "$T/lean.bundle" OK
$MAKE "$T/range.bundle" 1000 64 320 full subjects
check range-at-checkpoint "$T/range.bundle" OK
$MAKE "$T/range2.bundle" 1000 64 333 full subjects
check range-mid "$T/range2.bundle" OK
$MAKE "$T/nosubj.bundle" 1000 64 0 full nosubjects
check no-subjects-lines "$T/nosubj.bundle" 63
$MAKE "$T/nosubj-range.bundle" 1000 64 333 full nosubjects
check no-subjects-lines-range "$T/nosubj-range.bundle" OK

m() {  # m NAME SOURCE WANT KIND [N]
  local name=$1 src=$2 want=$3; shift 3
  $PY $DIR/mutate.py "$src" "$T/$name.bundle" "$@"
  check "$name" "$T/$name.bundle" "$want"
}
# Event type changed in record 500: the record itself still decodes, so the
# chain breaks at 501 (its prev_hash no longer matches).
m flip-500 "$T/full.bundle" 501 flip-record 500
m flip-999 "$T/full.bundle" 999 flip-record 999     # the last: the trailer's chain_head
m drop-500 "$T/full.bundle" 500 drop-record 500
m dup-500 "$T/full.bundle" 500 dup-record 500   # the copy is out of order
m swap-500 "$T/full.bundle" 500 swap-records 500
m truncate "$T/full.bundle" 999 truncate
m note-3 "$T/full.bundle" 255 alter-note 3          # the checkpoint at 256
# Records past the last checkpoint verify but are reported unanchored: 1000 - 960.
m unanchored "$T/full.bundle" OK drop-last-checkpoint
if ! $VERIFY "$T/unanchored.bundle" --key="$KEY" --origin="$ORIGIN" | grep -q ", 40 records after it unanchored$" ||
   ! $LEDGER_VERIFY --bundle="$T/unanchored.bundle" --key="$KEY" --origin="$ORIGIN" --progress=false |
     grep -q "the last 40 records are chained but no checkpoint covers them yet"; then
  echo "FAIL unanchored: both verifiers must report 40 unanchored records"
  failed=1
fi
m range-moved-consistency "$T/range.bundle" OK move-consistency
m range-flip "$T/range2.bundle" 401 flip-record 400
m range-drop "$T/range2.bundle" 333 drop-record 333
m range-note "$T/range2.bundle" 383 alter-note 0    # the checkpoint at 384

exit $failed
