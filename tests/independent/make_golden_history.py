#!/usr/bin/python3
"""Rebuilds the golden history bundle from the inputs HISTORY_BUNDLE.md
"Golden bundle" states, with the encodings of FORMAT.md, MERKLE.md,
CHECKPOINT.md and SUBJECT_INDEX.md, and checks it against the spec:

    make_golden_history.py HISTORY_BUNDLE.md OUT

Writes the bundle's bytes to OUT; exits 1 if its checkpoint note or SHA-256
is not the one the spec prints. Shares no code with the C++.
"""
import base64
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verify_history as vh  # noqa: E402  (protobuf modules only)


def sha(*p):
    return hashlib.sha256(b"".join(p)).digest()


def str16(b):
    return struct.pack(">H", len(b)) + b


def mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha(b"\x01", mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):  # RFC 9162 2.1.3.1 PATH(m, D[n]), leaf side first
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def bit(k, d):
    return (k[d // 8] >> (7 - d % 8)) & 1


def smt(state, keys, d):
    if not keys:
        return bytes(32)
    if len(keys) == 1:
        c, h = state[keys[0]]
        return sha(b"\x12", keys[0], struct.pack(">Q", c), h)
    return sha(b"\x13", smt(state, [k for k in keys if not bit(k, d)], d + 1),
               smt(state, [k for k in keys if bit(k, d)], d + 1))


def smt_proof(state, key):
    keys, sib, d = sorted(state), [], 0
    while len(keys) > 1 or (keys and keys[0] != key):
        if len(keys) == 1:
            break
        mine = [k for k in keys if bit(k, d) == bit(key, d)]
        other = [k for k in keys if bit(k, d) != bit(key, d)]
        sib.append(smt(state, other, d + 1))
        keys, d = mine, d + 1
    return sib, (keys[0] if keys else None)


def main():
    spec_path, out = sys.argv[1], sys.argv[2]
    spec = open(spec_path, encoding="utf-8").read()
    access_pb2, _, _ = vh.load_protos(os.path.join(os.path.dirname(spec_path), "..", "..", "proto"))

    # --- the inputs, as "Golden bundle" states them
    seed, key_name, origin = bytes([0x42] * 32), b"caseledger.test", b"caseledger.test/log"
    t0 = 1767225600000000
    for want in ("32-byte seed `42 42 … 42`", "`caseledger.test/log`", "1767225600000000 + i",
                 "`golden-0`", "`case-g`", "producer `golden`", "`1a 06` + `note i`",
                 "`22 08` + `J. Smith`", "`00…00`, `01…01`, `02…02`"):
        if want not in spec:
            sys.exit("HISTORY_BUNDLE.md \"Golden bundle\" no longer says %r" % want)
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_hash = sha(key_name, b"\n\x01", pub)[:4]

    salt = iter(range(256))
    leaves, recs, state, prev = [], [], {}, bytes(32)
    for i in range(3):
        subject = b"client-b" if i == 1 else b"client-a"
        fields = [(b"text", 0, b"\x1a\x06note %d" % i), (b"third_party_mentions", 1,
                                                         b"\x22\x08J. Smith")]
        opened = []
        for name, flags, value in fields:
            s = bytes([next(salt)] * 32)
            fc = sha(b"\x02", s, str16(name), struct.pack(">I", len(value)), value)
            opened.append((name, flags, value, s, fc))
        pc = sha(b"\x03", struct.pack(">H", 2), *[str16(n) + bytes([f]) + c
                                                 for n, f, _, _, c in opened])
        # Gap (see the spec): the records' commit_time is the clock's, 2026-01-01T00:00:00Z.
        leaf = (b"\x01" + struct.pack(">Q", i) + prev + struct.pack(">q", t0) + str16(b"case-g")
                + struct.pack(">Q", i) + str16(b"golden-%d" % i) + str16(b"golden")
                + str16(b"record_entry_written") + struct.pack(">q", t0 + i)
                + struct.pack(">H", 1) + str16(subject) + pc)
        lh = sha(b"\x00", leaf)
        k = sha(b"\x10", subject)
        c, h = state.get(k, (0, bytes(32)))
        state[k] = (c + 1, sha(b"\x11", h, struct.pack(">Q", i), lh))
        payload = (b"\x01" + str16(b"") + struct.pack(">H", 2)
                   + b"".join(str16(n) + bytes([f]) + c for n, f, _, _, c in opened)
                   + struct.pack(">I", 0))
        recs.append((i, subject, leaf, payload, opened))
        leaves.append(lh)
        prev = lh

    body = (origin + b"\n3\n" + base64.b64encode(mth(leaves)) + b"\nsubjects "
            + base64.b64encode(smt(state, sorted(state), 0)) + b"\n")
    note = (body + b"\n" + "— ".encode() + key_name + b" "
            + base64.b64encode(key_hash + sk.sign(body)) + b"\n")

    b = access_pb2.HistoryBundle()
    b.format_version = 2
    b.subject_id = "client-a"
    b.checkpoint_note = note.decode()
    key = sha(b"\x10", b"client-a")
    sib, end = smt_proof(state, key)
    b.map_proof.siblings.extend(sib)
    if end is not None:
        b.map_proof.leaf.key = end
        b.map_proof.leaf.count, b.map_proof.leaf.head = state[end]
    for seq, subject, leaf, payload, opened in recs:
        if subject != b"client-a":
            continue
        r = b.records.add()
        r.seq, r.leaf, r.payload_commitments = seq, leaf, payload
        for idx, (name, flags, value, s, _) in enumerate(opened):
            if flags:
                w = r.withheld.add()
                w.index, w.reason = idx, access_pb2.WITHHELD_PROTECTED_DETAIL
            else:
                x = r.revealed.add()
                x.index, x.salt, x.value = idx, s, value
        r.inclusion_proof.extend(path(seq, leaves))
    # Gap (see the spec): the JSON's layout, with no disclosure.
    b.accounting_json = ('{\n  "client_id": "client-a",\n  "window": {"from": '
                         '"2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},\n'
                         '  "includes_excluded": false,\n  "disclosures": []\n}\n')
    b.produced_at.seconds = 1767225600
    data = b.SerializeToString(deterministic=True)
    open(out, "wb").write(data)

    ok = True
    if note.decode() not in spec:
        print("FAIL: the rebuilt note is not the one HISTORY_BUNDLE.md prints:\n" + note.decode())
        ok = False
    digest = hashlib.sha256(data).hexdigest()
    if digest not in spec:
        print("FAIL: the rebuilt bundle's SHA-256 %s is not the one HISTORY_BUNDLE.md prints"
              % digest)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
