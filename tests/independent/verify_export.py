#!/usr/bin/python3
"""An export-bundle verifier written from the markdown specs alone.

It reads ledger/BUNDLE.md, FORMAT.md, CHECKPOINT.md, MERKLE.md and
SUBJECT_INDEX.md as its only sources and shares no code with the C++. It needs
Debian's python3 and python3-cryptography (for Ed25519) and nothing else.

    verify_export.py BUNDLE --key=VERIFIER_KEY --origin=ORIGIN

Exit status 0 and one line "OK ..." when the bundle verifies; 1 and a line
"FAIL ..." otherwise. When the failure is tied to a record the line contains
"first bad seq N"; tests compare N with ledger_verify's verdict.
"""

import argparse
import base64
import hashlib
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ZERO = bytes(32)
MAX_ENTRY = 16 << 20


class Bad(Exception):
    """A verification failure; seq is the first bad record's seq if known."""

    def __init__(self, msg, seq=None):
        super().__init__(msg)
        self.seq = seq


def sha(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def hx(b):
    return b.hex()


# ---------------------------------------------------------------- byte reader
class Reader:
    def __init__(self, data, what):
        self.d = data
        self.i = 0
        self.what = what

    def take(self, n):
        if self.i + n > len(self.d):
            raise Bad("%s: truncated: wanted %d more bytes, got %d"
                      % (self.what, n, len(self.d) - self.i))
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def h(self):
        return self.take(32)

    def str16(self):
        return self.take(self.u16())

    def str32(self):
        return self.take(self.u32())

    def end(self):
        if self.i != len(self.d):
            raise Bad("%s: %d trailing bytes" % (self.what, len(self.d) - self.i))


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def u64(n):
    return struct.pack(">Q", n)


def str16(b):
    return u16(len(b)) + b


# ------------------------------------------------------------- MERKLE.md
def leaf_hash(d):
    return sha(b"\x00", d)


def node_hash(l, r):
    return sha(b"\x01", l, r)


class CompactRange:
    """The right edge of a tree: (size, hash) of its perfect subtrees, largest first."""

    def __init__(self):
        self.parts = []
        self.size = 0

    def append(self, h):
        self.parts.append((1, h))
        self.size += 1
        while len(self.parts) >= 2 and self.parts[-1][0] == self.parts[-2][0]:
            (s, right), (_, left) = self.parts.pop(), self.parts.pop()
            self.parts.append((2 * s, node_hash(left, right)))

    def root(self):
        if not self.parts:
            return sha(b"")
        h = self.parts[-1][1]
        for _, x in reversed(self.parts[:-1]):
            h = node_hash(x, h)
        return h


def frontier_from_last_leaf_path(n, last_leaf, path):
    """MERKLE.md / BUNDLE.md "start": PATH(n-1, D[n]) is the tree's right edge."""
    if n == 0:
        raise Bad("start entry with size 0")
    want = bin(n - 1).count("1")
    if len(path) != want:
        raise Bad("start inclusion proof for leaf %d in size %d: got %d hashes, want %d"
                  % (n - 1, n, len(path), want))
    t = (n & -n).bit_length() - 1  # countr_zero(n)
    h = last_leaf
    for i in range(t):
        h = node_hash(path[i], h)
    rng = CompactRange()
    # Higher frontier nodes, low to high, then the smallest subtree (just built).
    parts = []
    rest = path[t:]
    bits = [l for l in range(64) if (n >> l) & 1 and l > t]
    assert len(bits) == len(rest)
    for l, x in zip(bits, rest):
        parts.append((1 << l, x))
    parts.reverse()  # largest first
    parts.append((1 << t, h))
    rng.parts = parts
    rng.size = n
    return rng


def verify_consistency(m, n, root1, root2, proof):
    """RFC 9162 2.1.4.2 plus the cases MERKLE.md gives to the verifier."""
    if m > n:
        raise Bad("consistency proof from %d to %d: from > to" % (m, n))
    if m == n:
        if proof or root1 != root2:
            raise Bad("consistency %d→%d: equal sizes need an empty proof and equal roots" % (m, n))
        return
    if m == 0:
        if proof or root1 != sha(b""):
            raise Bad("consistency from 0: needs an empty proof and the empty root")
        return
    p = list(proof)
    if m & (m - 1) == 0:
        p.insert(0, root1)
    if not p:
        raise Bad("consistency %d→%d: empty proof" % (m, n))
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = p[0]
    for c in p[1:]:
        if sn == 0:
            raise Bad("consistency %d→%d: proof too long" % (m, n))
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Bad("consistency %d→%d: proof too short" % (m, n))
    if fr != root1:
        raise Bad("consistency %d→%d: old root got %s, want %s" % (m, n, hx(fr), hx(root1)))
    if sr != root2:
        raise Bad("consistency %d→%d: new root got %s, want %s" % (m, n, hx(sr), hx(root2)))


# --------------------------------------------------------- CHECKPOINT.md
def b64_canonical(s, what):
    try:
        raw = base64.b64decode(s, validate=True)
    except Exception:
        raise Bad("%s: not base64: %r" % (what, s))
    if base64.b64encode(raw).decode() != s:
        raise Bad("%s: non-canonical base64: %r" % (what, s))
    return raw


def bad_name(name):
    return (not name or "+" in name
            or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7f for c in name))


class VerifierKey:
    def __init__(self, s):
        parts = s.split("+", 2)
        if len(parts) != 3:
            raise Bad("verifier key %r: want name+hash+key" % s)
        self.name, hexhash, b64 = parts
        if bad_name(self.name):
            raise Bad("verifier key: bad name %r" % self.name)
        if len(hexhash) != 8 or any(c not in "0123456789abcdef" for c in hexhash):
            raise Bad("verifier key: hash %r is not 8 lower-case hex digits" % hexhash)
        raw = b64_canonical(b64, "verifier key")
        if len(raw) != 33 or raw[0] != 1:
            raise Bad("verifier key: want 0x01 || 32-byte key, got %d bytes" % len(raw))
        self.pub = raw[1:]
        self.hash = sha(self.name.encode(), b"\n\x01", self.pub)[:4]
        if hx(self.hash) != hexhash:
            raise Bad("verifier key: hash got %s, want %s" % (hexhash, hx(self.hash)))
        self.key = Ed25519PublicKey.from_public_bytes(self.pub)


def open_note(note, vk):
    """Returns the signed text. CHECKPOINT.md "Opening a note"."""
    if len(note) > 1 << 20:
        raise Bad("note over 1 MiB")
    try:
        s = note.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad("note is not UTF-8")
    if any((ord(c) < 0x20 and c != "\n") or ord(c) == 0x7f for c in s):
        raise Bad("note holds a control character")
    cut = note.rfind(b"\n\n")
    if cut < 0:
        raise Bad("note has no blank line")
    text, sigs = note[:cut + 1], note[cut + 2:]
    if not sigs.endswith(b"\n"):
        raise Bad("note's last line does not end in newline")
    lines = sigs[:-1].split(b"\n")
    if len(lines) > 100:
        raise Bad("note has %d signature lines, at most 100" % len(lines))
    mine = set()
    for line in lines:
        if not line.startswith("— ".encode()):
            raise Bad("signature line %r does not start with an em dash" % line)
        rest = line[len("— ".encode()):].decode()
        f = rest.split(" ")
        if len(f) != 2 or bad_name(f[0]):
            raise Bad("malformed signature line %r" % line)
        raw = b64_canonical(f[1], "signature line")
        if len(raw) < 5:
            raise Bad("signature line shorter than 5 bytes")
        if f[0] == vk.name and raw[:4] == vk.hash:
            mine.add(raw)
    if not mine:
        raise Bad("note has no signature by %s+%s" % (vk.name, hx(vk.hash)))
    for raw in mine:
        try:
            if len(raw) != 68:
                raise InvalidSignature()
            vk.key.verify(raw[4:], text)
        except InvalidSignature:
            raise Bad("note signature by %s+%s does not verify" % (vk.name, hx(vk.hash)))
    return text


def parse_checkpoint(text):
    s = text.decode()
    lines = s[:-1].split("\n")
    if len(lines) < 3:
        raise Bad("checkpoint body has %d lines, want at least 3" % len(lines))
    origin, size_s, root_s = lines[:3]
    if not origin:
        raise Bad("checkpoint origin is empty")
    if not size_s.isdigit() or not size_s.isascii() or (size_s[0] == "0" and size_s != "0"):
        raise Bad("checkpoint size %r is not canonical decimal" % size_s)
    size = int(size_s)
    if size >= 1 << 64:
        raise Bad("checkpoint size %s above 2^64-1" % size_s)
    root = b64_canonical(root_s, "checkpoint root")
    if len(root) != 32:
        raise Bad("checkpoint root is %d bytes, want 32" % len(root))
    ext = lines[3:]
    if any(not e for e in ext):
        raise Bad("checkpoint has an empty extension line")
    return origin, size, root, ext


# ------------------------------------------------------ SUBJECT_INDEX.md
def subject_key(sid):
    return sha(b"\x10", sid)


def map_root(state):
    """state: key -> (count, head). The compact sparse Merkle tree's root."""

    def bit(k, d):
        return (k[d // 8] >> (7 - d % 8)) & 1

    def h(keys, d):
        if not keys:
            return ZERO
        if len(keys) == 1:
            k = keys[0]
            c, hd = state[k]
            return sha(b"\x12", k, u64(c), hd)
        left = [k for k in keys if bit(k, d) == 0]
        right = [k for k in keys if bit(k, d) == 1]
        return sha(b"\x13", h(left, d + 1), h(right, d + 1))

    return h(sorted(state), 0)


# --------------------------------------------------------------- FORMAT.md
def decode_record(leaf, seq_hint):
    """Both record formats (FORMAT.md "Record" and "Record, format 2").

    rec["stream"] is the stream id (format 1) or the 32-byte stream tag
    (format 2); rec["keys"] the subject map keys: SHA-256(0x10 || id) of each
    subject id (format 1) or each subject tag as it is (format 2)."""
    r = Reader(leaf, "record at seq %d" % seq_hint)
    try:
        fmt = r.u8()
        if fmt not in (1, 2):
            raise Bad("format_version is %d, want 1 or 2" % fmt)
        rec = {"format": fmt}
        rec["seq"] = r.u64()
        rec["prev"] = r.h()
        rec["commit_time"] = r.i64()
        rec["stream"] = r.str16() if fmt == 1 else r.h()
        rec["version"] = r.u64()
        rec["event_id"] = r.str16()  # format 2: the event id box
        rec["producer"] = r.str16()  # format 2: the producer box
        rec["event_type"] = r.str16()
        rec["occurred_at"] = r.i64()
        n = r.u16()
        if n > 64:
            raise Bad("subject_count %d above 64" % n)
        rec["subjects"] = [r.str16() if fmt == 1 else r.h() for _ in range(n)]
        rec["commitment"] = r.h()
        r.end()
    except Bad as e:
        raise Bad("record at seq %d does not decode: %s" % (seq_hint, e), seq_hint)
    rec["keys"] = [subject_key(s) for s in rec["subjects"]] if fmt == 1 else list(rec["subjects"])
    # The id rules (1-128 bytes, no control bytes, no repeated subject) are
    # append-time rules, FORMAT.md "Record": a verifier does not re-check them.
    return rec


def check_payload(payload, mode, rec, seq):
    r = Reader(payload, "payload at seq %d" % seq)
    try:
        if r.u8() != 1:
            raise Bad("format_version is not 1")
        key_id = r.str16()
        n = r.u16()
        if n > 256:
            raise Bad("field_count %d above 256" % n)
        fields = []
        for _ in range(n):
            name = r.str16()
            flags = r.u8()
            c = r.h()
            fields.append((name, flags, c))
        sealed = r.str32()
        r.end()
    except Bad as e:
        raise Bad("payload at seq %d does not decode: %s" % (seq, e), seq)
    # Reserved flag bits are an append-time rule (FORMAT.md); not re-checked.
    pc = sha(b"\x03", u16(n), *[str16(nm) + bytes([fl]) + c for nm, fl, c in fields])
    if pc != rec["commitment"]:
        raise Bad("payload_commitment mismatch at seq %d: got %s, want %s"
                  % (seq, hx(pc), hx(rec["commitment"])), seq)
    if mode == 1:
        if sealed:
            raise Bad("seq %d: payload_mode 0x01 but %d bytes of openings" % (seq, len(sealed)), seq)
        return
    if mode != 0:
        raise Bad("seq %d: payload_mode 0x%02x, want 0x00 or 0x01" % (seq, mode), seq)
    if key_id:
        return  # encrypted openings: only a key holder can check them
    o = Reader(sealed, "openings at seq %d" % seq)
    try:
        for name, flags, c in fields:
            salt = o.take(32)
            value = o.str32()
            fc = sha(b"\x02", salt, str16(name), u32(len(value)), value)
            if fc != c:
                raise Bad("field %r commitment got %s, want %s" % (name, hx(fc), hx(c)))
        o.end()
    except Bad as e:
        raise Bad("openings at seq %d: %s" % (seq, e), seq)


# ------------------------------------------------------------- BUNDLE.md
def last_covered(size):
    """BUNDLE.md "First bad seq": a size names its last record."""
    return 0 if size == 0 else size - 1


class State:
    next_seq = 0


def verify(data, vk, expected_origin):
    st = State()
    try:
        return verify_inner(data, vk, expected_origin, st)
    except Bad as e:
        if e.seq is None:
            e.seq = st.next_seq  # framing and counts: the next seq due
        raise


def verify_inner(data, vk, expected_origin, st):
    r = Reader(data, "bundle")
    if r.take(8) != b"CLBUNDLE":
        raise Bad("bad magic")
    ver = r.u16()
    if ver != 1:
        raise Bad("bundle version %d, want 1" % ver)

    def entry():
        st.next_seq = next_seq
        if r.i == len(r.d):
            raise Bad("bundle ends without a trailer (cut short)", next_seq)
        t = r.u8()
        ln = r.u32()
        if ln > MAX_ENTRY:
            raise Bad("entry length %d above 16 MiB" % ln)
        return t, Reader(r.take(ln), "entry 0x%02x" % t)

    next_seq = None
    t, b = entry()
    if t != 0x01:
        raise Bad("first entry is 0x%02x, want header 0x01" % t)
    origin = b.str16()
    b.str16()  # verifier_key: informational only
    first_seq = b.u64()
    end_seq = b.u64()
    b.end()
    if origin != expected_origin:
        raise Bad("header origin got %r, want %r" % (origin, expected_origin), first_seq)
    if end_seq < first_seq:
        raise Bad("header end_seq %d below first_seq %d" % (end_seq, first_seq))

    rng = CompactRange()
    prev = ZERO
    start_root = sha(b"")
    next_seq = first_seq
    t, b = entry()
    if first_seq > 0:
        if t != 0x02:
            raise Bad("first_seq %d but entry 0x%02x follows the header, want start 0x02"
                      % (first_seq, t))
        size = b.u64()
        if size != first_seq:
            raise Bad("start size %d, want first_seq %d" % (size, first_seq))
        prev = b.h()
        path = [b.h() for _ in range(b.u8())]
        b.end()
        rng = frontier_from_last_leaf_path(size, prev, path)
        start_root = rng.root()
        t, b = entry()
    consistency = None

    subjects = {}  # key -> (count, head); only meaningful when first_seq == 0
    seen_events = {}
    dup_events = []
    stream_next = {}
    records = checkpoints = 0
    last_cp = None
    consistency_done = False
    unanchored_from = None
    while True:
        if t == 0x04:
            seq = b.u64()
            mode = b.u8()
            leaf = b.str32()
            payload = b.str32()
            b.end()
            if seq > next_seq:
                raise Bad("record %d is missing (next record in the bundle is %d)"
                          % (next_seq, seq), next_seq)
            if seq < next_seq:
                raise Bad("record %d appears after record %d" % (seq, next_seq - 1), seq)
            if seq >= end_seq:
                raise Bad("record seq %d at or past header end_seq %d" % (seq, end_seq), seq)
            rec = decode_record(leaf, seq)
            if rec["seq"] != seq:
                raise Bad("record at seq %d holds seq %d" % (seq, rec["seq"]), seq)
            if rec["prev"] != prev:
                raise Bad("prev_hash mismatch at seq %d: got %s, want %s"
                          % (seq, hx(rec["prev"]), hx(prev)), seq)
            check_payload(payload, mode, rec, seq)
            if rec["format"] == 2:
                pass  # event ids are boxed: their uniqueness needs the stream salts
            elif rec["event_id"] in seen_events:
                # Reported after the pass, as BUNDLE.md "First bad seq" says.
                dup_events.append((seq, seen_events[rec["event_id"]]))
            else:
                seen_events[rec["event_id"]] = seq
            want_v = stream_next.get(rec["stream"], 0 if first_seq == 0 else None)
            if want_v is not None and rec["version"] != want_v:
                raise Bad("stream %r version at seq %d: got %d, want %d"
                          % (rec["stream"], seq, rec["version"], want_v), seq)
            stream_next[rec["stream"]] = rec["version"] + 1
            lh = leaf_hash(leaf)
            for k in rec["keys"]:
                c, hd = subjects.get(k, (0, ZERO))
                subjects[k] = (c + 1, sha(b"\x11", hd, u64(seq), lh))
            rng.append(lh)
            prev = lh
            next_seq += 1
            records += 1
        elif t == 0x05:
            size = b.u64()
            note = b.str32()
            b.end()
            if size != next_seq:
                raise Bad("checkpoint of size %d placed after record %d, want right after record %d"
                          % (size, next_seq - 1, size - 1), last_covered(min(size, next_seq)))
            bad_seq = last_covered(size)
            try:
                text = open_note(note, vk)
                c_origin, c_size, c_root, ext = parse_checkpoint(text)
            except Bad as e:
                raise Bad("checkpoint at size %d: %s" % (size, e), bad_seq)
            if c_origin != expected_origin.decode():
                raise Bad("checkpoint at size %d: origin got %r, want %r"
                          % (size, c_origin, expected_origin.decode()), bad_seq)
            if c_size != size:
                raise Bad("checkpoint entry size %d but note says %d" % (size, c_size), bad_seq)
            root = rng.root()
            if c_root != root:
                raise Bad("checkpoint at size %d: root got %s, computed %s"
                          % (size, hx(c_root), hx(root)), bad_seq)
            if first_seq == 0:
                want = map_root(subjects)
                got = [e for e in ext if e.startswith("subjects ")]
                if not got:
                    raise Bad("checkpoint at size %d: subjects line missing" % size, bad_seq)
                if len(got) != 1:
                    raise Bad("checkpoint at size %d: %d subjects lines, want 1" % (size, len(got)),
                              bad_seq)
                g = b64_canonical(got[0][len("subjects "):], "subjects root")
                if g != want:
                    raise Bad("checkpoint at size %d: subjects root got %s, computed %s"
                              % (size, hx(g), hx(want)), bad_seq)
            if consistency and consistency[1] == size:
                try:
                    verify_consistency(consistency[0], consistency[1], start_root, c_root,
                                       consistency[2])
                except Bad as e:
                    raise Bad(str(e), last_covered(size))
                consistency_done = True
            last_cp = size
            checkpoints += 1
        elif t == 0x03:
            # BUNDLE.md "Layout": at most one, after the start, before any record.
            if consistency is not None or records > 0:
                raise Bad("consistency entry: at most one, after the start and before the records")
            fr, to = b.u64(), b.u64()
            proof = [b.h() for _ in range(b.u8())]
            b.end()
            if fr != first_seq or to < fr:
                raise Bad("consistency from %d to %d, want from first_seq %d" % (fr, to, first_seq))
            consistency = (fr, to, proof)
        elif t == 0x7F:
            rc, cc, head = b.u64(), b.u64(), b.h()
            b.end()
            r.end()
            if rc != records or cc != checkpoints:
                raise Bad("trailer counts got %d records and %d checkpoints, want %d and %d"
                          % (rc, cc, records, checkpoints), next_seq)
            if head != prev:
                raise Bad("trailer chain_head got %s, want %s" % (hx(head), hx(prev)),
                          last_covered(next_seq))
            break
        else:
            raise Bad("unexpected entry type 0x%02x" % t, next_seq)
        t, b = entry()

    if consistency and not consistency_done:
        raise Bad("consistency proof to size %d: no checkpoint of that size (last %s)"
                  % (consistency[1], last_cp), last_covered(consistency[1]))
    if consistency and checkpoints > 0 and consistency[1] != last_cp:
        raise Bad("consistency proof to size %d, want the bundle's last checkpoint at size %d"
                  % (consistency[1], last_cp), last_covered(consistency[1]))
    if dup_events:
        seq, first = dup_events[0]
        raise Bad("record %d: its event id was already used by record %d" % (seq, first), seq)
    if next_seq != end_seq:
        raise Bad("bundle ends at seq %d, header says end_seq %d" % (next_seq, end_seq), next_seq)
    unanchored = end_seq - (last_cp if last_cp is not None else first_seq)
    return "records [%d, %d), %d checkpoints, last at %s, %d records after it unanchored" % (
        first_seq, end_seq, checkpoints, last_cp, max(unanchored, 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--key", required=True)
    ap.add_argument("--origin", required=True)
    a = ap.parse_args()
    try:
        vk = VerifierKey(a.key)
        with open(a.bundle, "rb") as f:
            data = f.read()
        print("OK " + verify(data, vk, a.origin.encode()))
        return 0
    except Bad as e:
        where = "" if e.seq is None else " (first bad seq %d)" % e.seq
        print("FAIL %s%s" % (e, where))
        return 1


if __name__ == "__main__":
    sys.exit(main())
