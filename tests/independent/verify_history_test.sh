#!/usr/bin/env bash
# The independent history-bundle verifier (verify_history.py, written from
# services/history/HISTORY_BUNDLE.md and the specs it names) and `ledgerctl
# verify-history` must agree on every bundle: both accept the intact ones, and
# both refuse each damaged copy with the same status code and, where the
# failure is a record's, the same seq.
set -euo pipefail

PY=/usr/bin/python3  # Debian's python3 with python3-cryptography and python3-protobuf
DIR=tests/independent
LEDGERCTL=tools/ledgerctl
T="${TEST_TMPDIR:-$(mktemp -d)}"
export TMPDIR="$T"  # protoc's generated modules go here
KEY='caseledger.test+79b6595a+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS'
ORIGIN='caseledger.test/log'
failed=0

# verdict of one output: OK, CODE, or CODE@seq
py_verdict() {
  if [[ $1 == OK* ]]; then echo OK; return; fi
  local code seq
  code=$(sed -n 's/^FAIL \([A-Z_]*\):.*/\1/p' <<<"$1" | head -1)
  seq=$(grep -o 'records\[[0-9]*\] (seq [0-9]*)' <<<"$1" | head -1 | sed 's/.*seq \([0-9]*\))/\1/' || true)
  echo "${code:-?}${seq:+@$seq}"
}
lc_verdict() {  # STATUS OUTPUT
  if [[ $1 == 0 ]]; then echo OK; return; fi
  local code seq
  code=$(sed -n 's/^ledgerctl verify-history: \([A-Z_]*\):.*/\1/p' <<<"$2" | head -1)
  seq=$(grep -o 'records\[[0-9]*\] (seq [0-9]*)' <<<"$2" | head -1 | sed 's/.*seq \([0-9]*\))/\1/' || true)
  echo "${code:-?}${seq:+@$seq}"
}

check() {  # check NAME BUNDLE WANT [FLAGS...]   WANT: OK, CODE or CODE@seq
  local name=$1 bundle=$2 want=$3 py lc st=0 pv lv
  shift 3
  py=$($PY $DIR/verify_history.py "$bundle" --key="$KEY" --origin="$ORIGIN" "$@" || true)
  lc=$($LEDGERCTL verify-history "$bundle" --key="$KEY" --origin="$ORIGIN" "$@" 2>&1) || st=$?
  pv=$(py_verdict "$py")
  lv=$(lc_verdict "$st" "$lc")
  # WANT may list alternatives (A|B); both verifiers must then say the same one.
  if [[ $pv != "$lv" || "|$want|" != *"|$pv|"* ]]; then
    echo "FAIL $name: want $want; verify_history.py says $pv; ledgerctl says $lv"
    echo "    verify_history.py: $py"
    echo "$lc" | tail -3 | sed 's/^/    ledgerctl: /'
    failed=1
  else
    echo "ok   $name: both say $want  | ${py:0:160}"
  fi
}

$DIR/make_history "$T"

# The golden bundle, rebuilt in Python from the inputs HISTORY_BUNDLE.md states.
if ! $PY $DIR/make_golden_history.py services/history/HISTORY_BUNDLE.md "$T/golden-py.pb"; then
  echo "FAIL golden-inputs: the rebuilt golden bundle is not the one HISTORY_BUNDLE.md pins"
  failed=1
elif ! cmp -s "$T/golden-py.pb" "$T/golden.pb"; then
  echo "FAIL golden-inputs: the server's golden bundle differs from the one rebuilt from the spec"
  failed=1
else
  echo "ok   golden-inputs: HISTORY_BUNDLE.md's inputs rebuild the golden bundle byte for byte"
fi

check golden "$T/golden.pb" OK --subject=client-a
check story "$T/story-0.pb" OK --subject=client-0
check story-since "$T/story-0.pb" OK --subject=client-0 --since="$T/early.note"
check story-other-client "$T/story-1.pb" OK --subject=client-1
check old-checkpoint "$T/old-0.pb" OK --subject=client-0 --since="$T/early.note"
check erased-with-other "$T/enc-0.pb" OK --subject=client-0   # reason 4
check erased "$T/enc-1.pb" OK --subject=client-1              # reason 2, by_seq
check disposed "$T/enc-2.pb" OK --subject=client-2            # reason 3, by_seq
check keys-destroyed "$T/enc-3.pb" OK --subject=client-3      # reason 5
check suspended "$T/susp.pb" OK --subject=client-0              # reason 6, by_seq
check suspension-ended "$T/susp-after.pb" OK --subject=client-0
# Record format 2 (ledger/BLINDING.md): tags opened with the bundle's salts.
check blinded "$T/blind-0.pb" OK --subject=client-0
check blinded-other-erased "$T/blind-0-after.pb" OK --subject=client-0   # reason 4
check blinded-erased-unlinked "$T/blind-1-after.pb" OK --subject=client-1
check blinded-another-subject "$T/blind-0.pb" FAILED_PRECONDITION --subject=client-1
if $PY - "$T/blind-0.pb" <<'PYEOF'
import sys
data = open(sys.argv[1], "rb").read()
sys.exit(0 if b"client-1" not in data else 1)
PYEOF
then echo "ok   blinded-no-other-client: client-0's bundle never names client-1"
else echo "FAIL blinded-no-other-client: client-0's bundle names client-1"; failed=1
fi

# Refusals.
check another-subject "$T/story-1.pb" FAILED_PRECONDITION --subject=client-0
check stale-checkpoint "$T/old-0.pb" FAILED_PRECONDITION --subject=client-0 --since="$T/late.note"

m() {  # m NAME SOURCE WANT-CODE MUTATION [ARGS...] -- [FLAGS...]; WANT gets @seq when the mutation names one
  local name=$1 src=$2 want=$3 seq
  shift 3
  local margs=() flags=()
  while [[ $# -gt 0 && $1 != -- ]]; do margs+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  flags=("$@")
  seq=$($PY $DIR/mutate_history.py "$src" "$T/$name.pb" "${margs[@]}")
  [[ $want == *@ ]] && want="$want$seq"
  check "$name" "$T/$name.pb" "$want" "${flags[@]}"
}
m reveal-protected "$T/story-0.pb" DATA_LOSS@ reveal-protected "$T/story-0-full.pb"
m withhold-own "$T/story-0.pb" DATA_LOSS@ withhold-own
m rewrite-accounting "$T/story-0.pb" DATA_LOSS rewrite-accounting
m drop-accounting-entry "$T/story-0.pb" DATA_LOSS drop-accounting-entry
m drop-record "$T/story-0.pb" DATA_LOSS drop-record 5
m swap-records "$T/story-0.pb" DATA_LOSS@ swap-records 5
# Steps 5 and 6 run record by record: a bad payload in records[3] is found
# before the swap of records[5] and records[6].
$PY $DIR/mutate_history.py "$T/swap-records.pb" "$T/swap-then-payload.pb" copy-payload 3 >/dev/null
check payload-before-later-swap "$T/swap-then-payload.pb" \
  "DATA_LOSS@$($PY $DIR/mutate_history.py "$T/story-0.pb" /dev/null copy-payload 3)"
# A client re-checking a bundle with the note it saved from it: at equal
# sizes the roots are compared and the bundle's proof (since_size 30) is not
# read, so both pass.
$LEDGERCTL verify-history "$T/story-0.pb" --key="$KEY" --origin="$ORIGIN" --save_note="$T/story-0.note" >/dev/null
$LEDGERCTL verify-history "$T/golden.pb" --key="$KEY" --origin="$ORIGIN" --save_note="$T/golden.note" >/dev/null
check since-same-checkpoint-with-proof "$T/story-0.pb" OK --since="$T/story-0.note"
check since-same-checkpoint "$T/golden.pb" OK --since="$T/golden.note"
m version-1 "$T/story-0.pb" INVALID_ARGUMENT version-1
m since-proof "$T/story-0.pb" DATA_LOSS flip-consistency -- --since="$T/early.note"
m erased-as-unexplained "$T/enc-1.pb" DATA_LOSS@ reason 5        # the history prescribes 2
m erased-by-wrong-seq "$T/enc-1.pb" DATA_LOSS@ by-seq 3
m disposed-as-erased "$T/enc-2.pb" DATA_LOSS@ reason 2
m one-subject-as-with-other "$T/enc-3.pb" DATA_LOSS@ reason 4
m reason-0 "$T/enc-3.pb" INVALID_ARGUMENT@ reason 0
m suspended-past-its-end "$T/susp.pb" DATA_LOSS@ produced-at-of "$T/susp-after.pb"
m suspend-a-note "$T/susp.pb" DATA_LOSS@ suspend-first record_entry_written
m suspended-as-unexplained "$T/susp.pb" DATA_LOSS@ reason 5    # never sealed
m blinded-no-stream-salt "$T/blind-0.pb" DATA_LOSS@ drop-stream-salts
# A wrong salt gives a random wrong key: its proof is for another key
# (INVALID_ARGUMENT) or, when the wrong key falls under the proven leaf's
# prefix, it proves the wrong key absent and the records are too many
# (DATA_LOSS). The salts are random per run, so either; refused both ways.
m blinded-wrong-subject-salt "$T/blind-0.pb" 'INVALID_ARGUMENT|DATA_LOSS' flip-subject-salt

# Witnesses: W1 and W2 cosign (the test's own keys); W3 does not.
W1=$($PY $DIR/mutate_history.py "$T/story-0.pb" "$T/cos1.pb" cosign "$(printf '11%.0s' {1..32})" w1.test 1767225700)
W2=$($PY $DIR/mutate_history.py "$T/cos1.pb" "$T/cos2.pb" cosign "$(printf '22%.0s' {1..32})" w2.test 1767225701)
W3=$($PY $DIR/mutate_history.py "$T/story-0.pb" "$T/unused.pb" cosign "$(printf '33%.0s' {1..32})" w3.test 1767225702)
check quorum-all "$T/cos2.pb" OK --witness_keys="$W1,$W2"
check quorum-2-of-3 "$T/cos2.pb" OK --witness_keys="$W1,$W2,$W3" --quorum=2
check quorum-short "$T/cos2.pb" FAILED_PRECONDITION --witness_keys="$W1,$W2,$W3"
check quorum-none "$T/story-0.pb" FAILED_PRECONDITION --witness_keys="$W1" --quorum=1

exit $failed
