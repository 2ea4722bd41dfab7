#!/usr/bin/env python3
"""Derives the golden vectors of ledger/SUBJECT_INDEX.md from that text alone.

Shares no code with the C++; ledger/subject_index_test.cc pins what this prints.
Run: python3 tests/testdata/subject_index_golden.py
"""
import hashlib
import struct

ZERO = bytes(32)


def h(*parts):
    return hashlib.sha256(b"".join(parts)).digest()


def subject_key(sid):
    return h(b"\x10", sid.encode())


def chain_next(head, seq, leaf_hash):
    return h(b"\x11", head, struct.pack(">Q", seq), leaf_hash)


def map_leaf(key, count, head):
    return h(b"\x12", key, struct.pack(">Q", count), head)


def map_node(left, right):
    return h(b"\x13", left, right)


def bit(key, depth):
    return (key[depth // 8] >> (7 - depth % 8)) & 1


def subtree(items, depth):
    """items: list of (key, leaf hash) under one path prefix of `depth` bits."""
    if not items:
        return ZERO
    if len(items) == 1:
        return items[0][1]
    left = [i for i in items if bit(i[0], depth) == 0]
    right = [i for i in items if bit(i[0], depth) == 1]
    return map_node(subtree(left, depth + 1), subtree(right, depth + 1))


def proof(items, key, depth=0):
    """(siblings root side first, end leaf key or None)."""
    if not items:
        return [], None
    if len(items) == 1:
        return [], items[0][0]
    b = bit(key, depth)
    same = [i for i in items if bit(i[0], depth) == b]
    other = [i for i in items if bit(i[0], depth) != b]
    sib, end = proof(same, key, depth + 1)
    return [subtree(other, depth + 1)] + sib, end


# Three records; leaf hashes stand in for real records' leaf hashes.
records = [
    (0, h(b"golden leaf 0"), ["client-1"]),
    (1, h(b"golden leaf 1"), ["client-2", "client-1"]),
    (2, h(b"golden leaf 2"), ["client-3"]),
]
state = {}
for seq, lh, subjects in records:
    for s in subjects:
        count, head = state.get(s, (0, ZERO))
        state[s] = (count + 1, chain_next(head, seq, lh))

print("empty map root", ZERO.hex())
for s in sorted(state):
    k = subject_key(s)
    count, head = state[s]
    print("subject", s, "key", k.hex())
    print("  count", count, "head", head.hex())
    print("  map leaf", map_leaf(k, count, head).hex())
items = [(subject_key(s), map_leaf(subject_key(s), *state[s])) for s in state]
root = subtree(items, 0)
print("map root", root.hex())
import base64
print("extension line", "subjects " + base64.b64encode(root).decode())
for s in ["client-1", "client-9"]:
    sib, end = proof(items, subject_key(s))
    print("proof", s, "siblings", [x.hex() for x in sib], "end", end.hex() if end else None)
