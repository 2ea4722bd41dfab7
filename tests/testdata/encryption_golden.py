#!/usr/bin/env python3
"""Derives the golden vectors of ledger/ENCRYPTION.md from its text alone.

Shares no code with the C++: it uses Python's `cryptography` package for
AES-256-GCM and HKDF-SHA256 and hashlib for SHA-256. ledger/key_store_test.cc
pins the values this prints.
"""
import hashlib
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def str16(b):
    return struct.pack(">H", len(b)) + b


def hkdf(ikm, info):
    return HKDF(hashes.SHA256(), 32, None, info).derive(ikm)


master = bytes(range(0x00, 0x20))
k1 = bytes(range(0x20, 0x40))
k2 = bytes(range(0x40, 0x60))
id1 = bytes(range(0xA0, 0xB0))
id2 = bytes(range(0xB0, 0xC0))
wrap_nonce = bytes(range(0x10, 0x1C))
openings_nonce = bytes(range(0x20, 0x2C))
subject, stream = b"client-1", b"case-1"

master_key_id = hashlib.sha256(b"caseledger/v1 master key id" + master).digest()[:8].hex()
print("master_key_id", master_key_id)

wrap_aad = b"\x01" + b"caseledger/v1 data key" + id1 + str16(subject) + str16(stream)
print("wrap_aad", wrap_aad.hex())
sealed_key = wrap_nonce + AESGCM(master).encrypt(wrap_nonce, k1, wrap_aad)
entry = b"\x01" + str16(master_key_id.encode()) + str16(subject) + str16(stream) + sealed_key
print("wrapped_entry", entry.hex())

# One field "text" = "hello MARKER" with salt 0x55 * 32 (FORMAT.md).
salt = b"\x55" * 32
name, value = b"text", b"hello MARKER"
fc = hashlib.sha256(b"\x02" + salt + str16(name) + struct.pack(">I", len(value)) + value).digest()
commitment = hashlib.sha256(b"\x03" + struct.pack(">H", 1) + str16(name) + b"\x00" + fc).digest()
print("payload_commitment", commitment.hex())
openings = salt + struct.pack(">I", len(value)) + value

for label, keys, ids in (("one", [k1], [id1]), ("two", [k1, k2], [id1, id2])):
    key_id = "+".join(i.hex() for i in ids).encode()
    okey = hkdf(b"".join(keys), b"caseledger/v1 openings key " + key_id)
    aad = b"\x01" + str16(key_id) + commitment
    sealed = openings_nonce + AESGCM(okey).encrypt(openings_nonce, openings, aad)
    print(label, "key_id", key_id.decode())
    print(label, "openings_key", okey.hex())
    print(label, "openings_aad", aad.hex())
    print(label, "sealed_openings", sealed.hex())

# The read models' value key (ENCRYPTION.md "Read models") and its id.
projections_key = hkdf(master, b"caseledger/v1 projections key")
print("projections_key", projections_key.hex())
print("projections_key_id",
      hashlib.sha256(b"caseledger/v1 projections key id" + projections_key).digest()[:8].hex())
