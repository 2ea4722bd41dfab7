#!/usr/bin/env bash
# Makes a local CA and mutual-TLS certificates for a development setup (and
# for the tests, which run it at test time; no private key is checked in).
#
#   bash tools/make_dev_certs.sh DIR [ROLE/ID ...]
#
# Writes into DIR:
#   ca.pem, ca.key                  the dev CA (--tls_client_ca=DIR/ca.pem)
#   server.pem, server.key          the server (--tls_cert, --tls_key); SANs
#                                   DNS:localhost, IP:127.0.0.1, IP:::1 and
#                                   $SERVER_SANS (e.g. "DNS:ledger.internal")
#   ROLE-ID.pem, ROLE-ID.key        one client per ROLE/ID argument, named by
#                                   the URI SAN caseledger://ROLE/ID
# Default clients: producer/intake case_manager/cm-1 client/client-1
# auditor/aud-1 admin/ops-1. Certificates are valid for $DAYS days (default 30).
#
# With TEST_EXTRAS=1 it also writes, for the tests that must see them refused:
#   expired.pem/.key     from the dev CA, valid only in January 2020
#   wrong-ca.pem/.key    from a second, unrelated CA (other-ca.pem)
#   no-uri.pem/.key      from the dev CA, with no caseledger:// URI SAN
set -euo pipefail
dir=${1:?usage: make_dev_certs.sh DIR [ROLE/ID ...]}
shift
days=${DAYS:-30}
clients=("$@")
if [ ${#clients[@]} -eq 0 ]; then
  clients=(producer/intake case_manager/cm-1 client/client-1 auditor/aud-1 admin/ops-1)
fi
mkdir -p "$dir"
cd "$dir"
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# make_ca NAME CN
make_ca() {
  newkey "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days "$days" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem"
}

# issue CA NAME CN SAN EKU
issue() {
  local ca=$1 name=$2 cn=$3 san=$4 eku=$5
  newkey "$name.key"
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

make_ca ca "caseledger dev CA"
issue ca server localhost "DNS:localhost,IP:127.0.0.1,IP:::1${SERVER_SANS:+,$SERVER_SANS}" \
  serverAuth
for c in "${clients[@]}"; do
  role=${c%%/*}
  id=${c#*/}
  issue ca "$role-$id" "$id" "URI:caseledger://$role/$id" clientAuth
done

if [ "${TEST_EXTRAS:-0}" = 1 ]; then
  make_ca other-ca "unrelated CA"
  issue other-ca wrong-ca intake "URI:caseledger://producer/intake" clientAuth
  issue ca no-uri intake "DNS:intake.example" clientAuth
  # `openssl x509 -req` cannot backdate; `openssl ca` can.
  mkdir -p expired-ca
  : >expired-ca/index.txt
  echo 01 >expired-ca/serial
  cat >expired-ca/ca.cnf <<EOF
[ ca ]
default_ca = dev
[ dev ]
dir = expired-ca
database = expired-ca/index.txt
new_certs_dir = expired-ca
serial = expired-ca/serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:caseledger://producer/intake
EOF
  newkey expired.key
  openssl req -new -key expired.key -subj "/CN=intake" -out expired.csr
  openssl ca -batch -config expired-ca/ca.cnf -extensions ext -notext \
    -startdate 20200101000000Z -enddate 20200102000000Z -in expired.csr -out expired.pem \
    2>/dev/null
  rm -rf expired.csr expired-ca
fi
rm -f ./*.srl
echo "wrote $(ls "$PWD" | tr '\n' ' ')in $PWD"
