#!/usr/bin/env python3
"""Derives the golden vectors in ledger/record_test.cc from ledger/FORMAT.md alone.

Run: python3 tests/testdata/record_golden.py
It shares no code with the C++ encoder; if the two disagree, one of them does not
follow FORMAT.md.
"""
import hashlib
import struct


def str16(b):
    return struct.pack(">H", len(b)) + b


def field_commitment(salt, name, value):
    return hashlib.sha256(b"\x02" + salt + str16(name) + struct.pack(">I", len(value)) + value).digest()


def payload_commitment(fields):
    buf = b"\x03" + struct.pack(">H", len(fields))
    for name, flags, c in fields:
        buf += str16(name) + bytes([flags]) + c
    return hashlib.sha256(buf).digest()


salt_a = bytes([0xA1] * 32)
salt_b = bytes([0xB2] * 32)
fa = field_commitment(salt_a, b"note", b"Client attended intake.")
fb = field_commitment(salt_b, b"third_party.name", b"Jane Roe")
pc = payload_commitment([(b"note", 0, fa), (b"third_party.name", 1, fb)])

leaf = (b"\x01" + struct.pack(">Q", 7) + bytes([0x11] * 32) + struct.pack(">q", 1767225600000000)
        + str16(b"case-42") + struct.pack(">Q", 3) + str16(b"evt-0007") + str16(b"intake-svc")
        + str16(b"record_entry_written") + struct.pack(">q", 1767225599000000)
        + struct.pack(">H", 2) + str16(b"client-1") + str16(b"client-2") + pc)
leaf_hash = hashlib.sha256(b"\x00" + leaf).digest()

payload = (b"\x01" + str16(b"") + struct.pack(">H", 2)
           + str16(b"note") + b"\x00" + fa + str16(b"third_party.name") + b"\x01" + fb)
openings = salt_a + struct.pack(">I", 23) + b"Client attended intake." + salt_b + struct.pack(">I", 8) + b"Jane Roe"
payload += struct.pack(">I", len(openings)) + openings

print("field_commitment note       ", fa.hex())
print("field_commitment third_party", fb.hex())
print("payload_commitment          ", pc.hex())
print("leaf                        ", leaf.hex())
print("leaf_hash                   ", leaf_hash.hex())
print("payload                     ", payload.hex())

# Record format 2 (FORMAT.md "Record, format 2"): the same record, identifiers blinded.


def tag(domain, salt, ident):
    return hashlib.sha256(bytes([domain]) + salt + str16(ident)).digest()


def box(domain, salt, version, x):
    stream = b"".join(hashlib.sha256(bytes([domain]) + salt + struct.pack(">Q", version)
                                     + bytes([i])).digest() for i in range(4))
    return bytes(a ^ b for a, b in zip(x, stream))


r_stream = bytes([0xC3] * 32)
r_client1 = bytes([0xD4] * 32)
r_client2 = bytes([0xE5] * 32)
leaf2 = (b"\x02" + struct.pack(">Q", 7) + bytes([0x11] * 32) + struct.pack(">q", 1767225600000000)
         + tag(0x21, r_stream, b"case-42") + struct.pack(">Q", 3)
         + str16(box(0x22, r_stream, 3, b"evt-0007")) + str16(box(0x23, r_stream, 3, b"intake-svc"))
         + str16(b"record_entry_written") + struct.pack(">q", 1767225599000000)
         + struct.pack(">H", 2) + tag(0x20, r_client1, b"client-1") + tag(0x20, r_client2, b"client-2")
         + pc)
print("v2 stream_tag                ", tag(0x21, r_stream, b"case-42").hex())
print("v2 subject_tag client-1      ", tag(0x20, r_client1, b"client-1").hex())
print("v2 leaf                      ", leaf2.hex())
print("v2 leaf_hash                 ", hashlib.sha256(b"\x00" + leaf2).digest().hex())
