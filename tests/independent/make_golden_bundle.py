#!/usr/bin/python3
"""Rebuilds tests/testdata/bundle_golden.hex from the inputs BUNDLE.md "Golden
vector" lists, with the encodings of FORMAT.md, MERKLE.md and CHECKPOINT.md.
Prints the bundle as hex (64 digits a line, as the file holds it). Given the
path of BUNDLE.md, first checks that the spec states these inputs.

Shares no code with the C++ writer; verify_export_test compares its output
with the pinned file byte for byte.
"""
import base64
import hashlib
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def sha(*p):
    return hashlib.sha256(b"".join(p)).digest()


def u8(n):
    return bytes([n])


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def u64(n):
    return struct.pack(">Q", n)


def i64(n):
    return struct.pack(">q", n)


def str16(b):
    return u16(len(b)) + b


def str32(b):
    return u32(len(b)) + b


def mth(leaves):  # RFC 9162 2.1.1, straight from the definition
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha(b"\x01", mth(leaves[:k]), mth(leaves[k:]))


# --- The inputs ---------------------------------------------------------------
SEED = bytes([0x42] * 32)
KEY_NAME = b"caseledger.test"
ORIGIN = b"caseledger.test/log"
RECORDS, CHECKPOINT_EVERY, PAYLOAD_BYTES, STREAMS = 3, 2, 4, 2
T0 = 1767225600000000  # 2026-01-01T00:00:00Z in Unix microseconds

sk = Ed25519PrivateKey.from_private_bytes(SEED)
pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
key_hash = sha(KEY_NAME, b"\n\x01", pub)[:4]
verifier_key = KEY_NAME + b"+" + key_hash.hex().encode() + b"+" + base64.b64encode(b"\x01" + pub)

# The inputs above are the ones BUNDLE.md "Golden vector" states: check the
# spec still says them, so the two cannot drift apart.
spec = open(sys.argv[1]).read() if len(sys.argv) > 1 else None
if spec is not None:
    for want in (verifier_key.decode(), "seed = 32 bytes `0x42`", "`T0 = %d`" % T0,
                 "Origin** `%s`" % ORIGIN.decode(), 'SHA-256("salt-<seq>-0")',
                 "Checkpoints** at sizes 2 and 3"):
        if want not in spec:
            sys.exit("BUNDLE.md \"Golden vector\" no longer says %r" % want)

sizes = list(range(CHECKPOINT_EVERY, RECORDS + 1, CHECKPOINT_EVERY))
if not sizes or sizes[-1] != RECORDS:
    sizes.append(RECORDS)


def entry(t, body):
    return u8(t) + u32(len(body)) + body


out = b"CLBUNDLE" + u16(1)
out += entry(0x01, str16(ORIGIN) + str16(verifier_key) + u64(0) + u64(RECORDS))
versions = [0] * STREAMS
prev = bytes(32)
leaves = []
for seq in range(RECORDS):
    stream = seq % STREAMS
    name, flags = b"note", 0
    value = bytes([ord("a") + seq % 26]) * PAYLOAD_BYTES
    salt = sha(b"salt-%d-0" % seq)
    fc = sha(b"\x02", salt, str16(name), u32(len(value)), value)
    pc = sha(b"\x03", u16(1), str16(name), u8(flags), fc)
    leaf = (u8(1) + u64(seq) + prev + i64(T0 + 10 * seq) + str16(b"case-%d" % stream)
            + u64(versions[stream]) + str16(b"ev-%d" % seq) + str16(b"synthetic")
            + str16(b"record_entry_written") + i64(T0 + seq) + u16(1)
            + str16(b"client-%d" % stream) + pc)
    versions[stream] += 1
    payload = u8(1) + str16(b"") + u16(1) + str16(name) + u8(flags) + fc + str32(salt + str32(value))
    out += entry(0x04, u64(seq) + u8(0x00) + str32(leaf) + str32(payload))
    prev = sha(b"\x00", leaf)
    leaves.append(prev)
    if seq + 1 in sizes:
        size = seq + 1
        body = ORIGIN + b"\n%d\n" % size + base64.b64encode(mth(leaves)) + b"\n"
        sig = sk.sign(body)
        note = (body + b"\n" + "— ".encode() + KEY_NAME + b" "
                + base64.b64encode(key_hash + sig) + b"\n")
        out += entry(0x05, u64(size) + str32(note))
out += entry(0x7F, u64(RECORDS) + u64(len(sizes)) + prev)

h = out.hex()
sys.stdout.write("".join(h[i:i + 64] + "\n" for i in range(0, len(h), 64)))
