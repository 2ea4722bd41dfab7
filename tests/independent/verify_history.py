#!/usr/bin/python3
"""A history-bundle verifier written from the specs alone.

Sources: services/history/HISTORY_BUNDLE.md (version 2) and what it names:
ledger/FORMAT.md, CHECKPOINT.md, COSIGNATURE.md, MERKLE.md, SUBJECT_INDEX.md,
ENCRYPTION.md, proto/access.proto, events.proto, options.proto. It shares no
code with the C++; it reuses the byte readers, note and Merkle helpers of
verify_export.py (itself written from the specs). Needs Debian's python3,
python3-cryptography and python3-protobuf, and protoc to generate the protobuf
modules from proto/*.proto into a temporary directory.

    verify_history.py BUNDLE --key=VERIFIER_KEY [--subject=ID] [--origin=O]
                      [--since=NOTEFILE] [--witness_keys=K1,K2|FILE [--quorum=Q]]
                      [--protos=DIR]

Exit 0 and "OK ..." when the bundle verifies; 1 and "FAIL <CODE>: <message>"
otherwise, where CODE is the gRPC status code the spec names. A failure tied
to a record says "records[i] (seq N)".
"""

import argparse
import base64
import calendar
import datetime
import json
import os
import struct
import subprocess
import sys
import tempfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import verify_export as vx  # noqa: E402  (the colleague's spec-only helpers)

ZERO = bytes(32)
EM = "— ".encode()


class Fail(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


def INVALID(m):
    return Fail("INVALID_ARGUMENT", m)


def LOSS(m):
    return Fail("DATA_LOSS", m)


def PRECOND(m):
    return Fail("FAILED_PRECONDITION", m)


sha = vx.sha
u64 = vx.u64


# ------------------------------------------------------------ protobuf modules
def load_protos(proto_dir):
    """protoc --python_out from proto/*.proto into a temporary directory."""
    root = os.path.dirname(os.path.abspath(proto_dir))
    out = tempfile.mkdtemp(prefix="verify_history_pb_")
    srcs = [os.path.join("proto", n) for n in ("options.proto", "events.proto", "access.proto")]
    subprocess.run(["protoc", "--proto_path=" + root, "--proto_path=/usr/include",
                    "--python_out=" + out] + srcs, check=True, cwd=root)
    sys.path.insert(0, out)
    from proto import access_pb2, events_pb2, options_pb2  # noqa: E402
    return access_pb2, events_pb2, options_pb2


class Schema:
    """events.proto as this verifier knows it: event type -> body message, and
    per body field whether it carries (caseledger.v1.protected_detail)."""

    def __init__(self, events_pb2, options_pb2):
        self.events_pb2 = events_pb2
        ev = events_pb2.Event.DESCRIPTOR
        self.types = {}
        for f in ev.oneofs_by_name["body"].fields:
            self.types[f.name] = f.message_type
        self.ext = options_pb2.protected_detail

    def protected(self, event_type, field):
        d = self.types.get(event_type)
        if d is None:
            raise PRECOND("event type %r is unknown to this verifier (update ledgerctl)"
                          % event_type)
        f = d.fields_by_name.get(field)
        if f is None:
            raise PRECOND("field %r of event type %r is unknown to this verifier (update ledgerctl)"
                          % (field, event_type))
        return bool(f.GetOptions().Extensions[self.ext])

    def body(self, event_type, data):
        from google.protobuf import message_factory
        cls = message_factory.MessageFactory().GetPrototype(self.types[event_type])
        m = cls()
        m.ParseFromString(data)
        return m


# ------------------------------------------------------------ notes (CHECKPOINT.md)
def note_lines(note):
    """Syntax of CHECKPOINT.md "Opening a note" step 1 (INVALID_ARGUMENT).
    Returns (text, [(name, raw)])."""
    if len(note) > 1 << 20:
        raise INVALID("note over 1 MiB")
    try:
        s = note.decode("utf-8")
    except UnicodeDecodeError:
        raise INVALID("note is not UTF-8")
    if any((ord(c) < 0x20 and c != "\n") or ord(c) == 0x7f for c in s):
        raise INVALID("note holds a control character")
    cut = note.rfind(b"\n\n")
    if cut < 0:
        raise INVALID("note has no blank line")
    text, sigs = note[:cut + 1], note[cut + 2:]
    if not sigs:
        raise INVALID("note has no signature line")
    if not sigs.endswith(b"\n"):
        raise INVALID("note's last line does not end in a newline")
    lines = sigs[:-1].split(b"\n")
    if len(lines) > 100:
        raise INVALID("note has %d signature lines, at most 100" % len(lines))
    out = []
    for line in lines:
        if not line.startswith(EM):
            raise INVALID("signature line %r does not start with an em dash" % line)
        f = line[len(EM):].decode().split(" ")
        if len(f) != 2 or vx.bad_name(f[0]):
            raise INVALID("malformed signature line %r" % line)
        try:
            raw = vx.b64_canonical(f[1], "signature line")
        except vx.Bad as e:
            raise INVALID(str(e))
        if len(raw) < 5:
            raise INVALID("signature line shorter than 5 bytes")
        out.append((f[0], raw))
    return text, out


def open_note(note, vk):
    text, lines = note_lines(note)
    mine = {raw for name, raw in lines if name == vk.name and raw[:4] == vk.hash}
    if not mine:
        raise LOSS("note has no signature by %s+%s" % (vk.name, vk.hash.hex()))
    for raw in mine:
        try:
            if len(raw) != 68:
                raise InvalidSignature()
            vk.key.verify(raw[4:], text)
        except InvalidSignature:
            raise LOSS("note signature by %s+%s does not verify" % (vk.name, vk.hash.hex()))
    return text


def checkpoint_of(text):
    try:
        return vx.parse_checkpoint(text)
    except vx.Bad as e:
        raise INVALID("checkpoint: %s" % e)


class WitnessKey:
    """COSIGNATURE.md verifier key: name+hash+base64(0x04 || key)."""

    def __init__(self, s):
        parts = s.strip().split("+", 2)
        if len(parts) != 3 or vx.bad_name(parts[0]):
            raise INVALID("witness key %r: want name+hash+key" % s)
        self.name, hexhash, b64 = parts
        try:
            raw = vx.b64_canonical(b64, "witness key")
        except vx.Bad as e:
            raise INVALID(str(e))
        if len(raw) != 33 or raw[0] != 4:
            raise INVALID("witness key %r: want 0x04 || 32-byte key" % s)
        self.pub = raw[1:]
        self.hash = sha(self.name.encode(), b"\n\x04", self.pub)[:4]
        if self.hash.hex() != hexhash:
            raise INVALID("witness key %r: hash does not match" % s)
        self.key = Ed25519PublicKey.from_public_bytes(self.pub)


def cosigned_by(note, w):
    """COSIGNATURE.md "Checking a cosigned note": True if w has a valid line,
    False if none; DATA_LOSS for a line of w that does not verify."""
    text, lines = note_lines(note)
    found = False
    for name, raw in lines:
        if name != w.name or raw[:4] != w.hash:
            continue
        if len(raw) != 76:
            raise LOSS("cosignature by %s: %d bytes, want 76" % (w.name, len(raw)))
        t = struct.unpack(">Q", raw[4:12])[0]
        if t > (1 << 63) - 1:
            raise LOSS("cosignature by %s: time %d above 2^63-1" % (w.name, t))
        msg = b"cosignature/v1\ntime %d\n" % t + text
        try:
            w.key.verify(raw[12:], msg)
        except InvalidSignature:
            raise LOSS("cosignature by %s at time %d does not verify" % (w.name, t))
        found = True
    return found


# ------------------------------------------------------------ MERKLE.md
def inclusion_len(m, n):
    inner = ((m ^ (n - 1))).bit_length()
    return inner + bin(m >> inner).count("1")


def verify_inclusion(m, n, leaf_h, path, root):
    """RFC 9162 2.1.3.2 after MERKLE.md's argument checks."""
    if m >= n:
        raise INVALID("inclusion proof: index %d >= tree size %d" % (m, n))
    if len(path) != inclusion_len(m, n):
        raise INVALID("inclusion proof of seq %d in size %d: %d hashes, want %d"
                      % (m, n, len(path), inclusion_len(m, n)))
    for p in path:
        if len(p) != 32:
            raise INVALID("inclusion proof of seq %d: a hash of %d bytes" % (m, len(p)))
    fn, sn, r = m, n - 1, leaf_h
    for p in path:
        if sn == 0:
            raise INVALID("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = vx.node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = vx.node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise INVALID("inclusion proof too short")
    if r != root:
        raise LOSS("inclusion proof of seq %d does not lead to the checkpoint's root" % m)


def consistency_len(m, n):
    if m == 0 or m == n:
        return 0
    l = (m & -m).bit_length() - 1
    inner = ((m - 1) ^ (n - 1)).bit_length()
    return (inner - l) + bin((m - 1) >> inner).count("1") + (0 if m & (m - 1) == 0 else 1)


# ------------------------------------------------------------ SUBJECT_INDEX.md
def tag(domain, salt, ident):
    """FORMAT.md "Record, format 2": SHA-256(d || r || str16(id))."""
    return sha(bytes([domain]), salt, vx.str16(ident))


def box(domain, salt, version, x):
    """FORMAT.md "Record, format 2": x XOR the keystream K_0 || .. || K_3."""
    ks = b"".join(sha(bytes([domain]), salt, vx.u64(version), bytes([i])) for i in range(4))
    return bytes(a ^ b for a, b in zip(x, ks))


def bit(k, d):
    return (k[d // 8] >> (7 - d % 8)) & 1


def map_proof(proof, key, root):
    sib = list(proof.siblings)
    if len(sib) > 256:
        raise INVALID("map proof: %d siblings, at most 256" % len(sib))
    for s in sib:
        if len(s) != 32:
            raise INVALID("map proof: a sibling of %d bytes" % len(s))
    count, head = 0, ZERO
    if proof.HasField("leaf"):
        lf = proof.leaf
        if len(lf.key) != 32 or len(lf.head) != 32:
            raise INVALID("map proof: leaf key or head not 32 bytes")
        h = sha(b"\x12", lf.key, u64(lf.count), lf.head)
        if lf.key == key:
            count, head = lf.count, lf.head
        elif any(bit(lf.key, d) != bit(key, d) for d in range(len(sib))):
            raise INVALID("map proof: end leaf's key does not share the path")
    else:
        h = ZERO
    for d in reversed(range(len(sib))):
        h = sha(b"\x13", sib[d], h) if bit(key, d) else sha(b"\x13", h, sib[d])
    if h != root:
        raise LOSS("map proof does not lead to the checkpoint's subjects root")
    return count, head


# ------------------------------------------------------------ FORMAT.md payload
def decode_payload(data, where):
    r = vx.Reader(data, where)
    try:
        if r.u8() != 1:
            raise vx.Bad("payload format_version is not 1")
        key_id = r.str16()
        n = r.u16()
        if n > 256:
            raise vx.Bad("field_count %d above 256" % n)
        fields = [(r.str16(), r.u8(), r.h()) for _ in range(n)]
        sealed = r.str32()
        r.end()
    except vx.Bad as e:
        raise INVALID("%s: payload_commitments do not decode: %s" % (where, e))
    return key_id, fields, sealed


# ------------------------------------------------------------ accounting
EXCLUDED = {"LEGAL_BASIS_TREATMENT", "LEGAL_BASIS_PAYMENT", "LEGAL_BASIS_OPERATIONS",
            "LEGAL_BASIS_TO_CLIENT", "LEGAL_BASIS_CONSENT"}
DETAIL_CITATION = {"LEGAL_BASIS_REQUIRED_BY_LAW", "LEGAL_BASIS_PART2_COURT_ORDER"}


def ts_micros(ts):
    return ts.seconds * 1000000 + ts.nanos // 1000


def six_years_before(sec):
    t = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
    try:
        f = t.replace(year=t.year - 6)
    except ValueError:  # 29 February: see the gaps list (we take 1 March)
        f = t.replace(year=t.year - 6, month=3, day=1)
    return calendar.timegm(f.timetuple())


def secs(us):
    return us // 1000000


def parse_time(s):
    """RFC 3339 UTC, whole seconds -> Unix seconds."""
    if not isinstance(s, str) or not s.endswith("Z"):
        raise LOSS("accounting: time %r is not RFC 3339 UTC" % (s,))
    try:
        t = datetime.datetime.strptime(s[:-1], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise LOSS("accounting: time %r is not RFC 3339 UTC in whole seconds" % (s,))
    return calendar.timegm(t.replace(tzinfo=datetime.timezone.utc).timetuple())


def derive_accounting(subject, recs, schema, produced_sec):
    entries = []
    for r in recs:
        et = r["event_type"]
        if et not in ("disclosure_made", "client_informed"):
            continue
        body = schema.body(et, b"".join(v for _, v in r["revealed"]))
        if et == "disclosure_made":
            basis = schema.events_pb2.LegalBasis.Name(body.legal_basis)
            detail = ""
            if basis == "LEGAL_BASIS_CONSENT":
                detail = body.consent_id
            elif basis in DETAIL_CITATION:
                detail = body.legal_citation
            e = {"client": body.client_id, "seq": r["seq"], "date": r["occurred_at"],
                 "disclosure_id": body.disclosure_id, "case_id": r["stream"],
                 "recipient": {"name": body.recipient.name, "address": body.recipient.address},
                 "description": body.description, "data_categories": list(body.data_categories),
                 "purpose": body.purpose, "basis": basis, "basis_detail": detail,
                 "disclosed_by": body.disclosed_by, "told": body.client_informed,
                 "told_at": None, "method": None}
            if body.client_informed:
                e["told_at"] = (ts_micros(body.client_informed_at)
                                if body.HasField("client_informed_at") else r["occurred_at"])
            entries.append(e)
        else:
            for e in entries:
                if e["case_id"] == r["stream"] and e["disclosure_id"] == body.disclosure_id:
                    if not e["told"]:
                        e["told"], e["told_at"], e["method"] = True, r["occurred_at"], body.method
                    break
    frm = six_years_before(produced_sec) * 1000000
    to = produced_sec * 1000000
    kept = [e for e in entries if e["client"] == subject and frm <= e["date"] < to
            and e["basis"] not in EXCLUDED]
    kept.sort(key=lambda e: (e["date"], e["seq"]))
    return frm, to, kept


def basis_matches(got, want_enum):
    """The spec does not say how `basis` is spelled: accept the enum name or
    its lower-case suffix (see the gaps list)."""
    if not isinstance(got, str):
        return False
    short = want_enum[len("LEGAL_BASIS_"):]
    return got in (want_enum, short, short.lower())


def compare_accounting(js, subject, frm, to, kept):
    try:
        a = json.loads(js)
    except ValueError as e:
        raise LOSS("accounting_json does not parse: %s" % e)

    def need(cond, what):
        if not cond:
            raise LOSS("accounting_json differs from the accounting the records give: " + what)

    need(isinstance(a, dict), "not an object")
    need(a.get("client_id") == subject, "client_id %r" % a.get("client_id"))
    w = a.get("window") or {}
    need(parse_time(w.get("from")) == secs(frm), "window.from %r" % w.get("from"))
    need(parse_time(w.get("to")) == secs(to), "window.to %r" % w.get("to"))
    need(a.get("includes_excluded") is False, "includes_excluded")
    ds = a.get("disclosures", [])
    need(isinstance(ds, list) and len(ds) == len(kept),
         "%d disclosures, the records give %d" % (len(ds) if isinstance(ds, list) else -1,
                                                 len(kept)))
    for i, (d, e) in enumerate(zip(ds, kept)):
        p = "disclosures[%d] " % i
        need(parse_time(d.get("date")) == secs(e["date"]), p + "date")
        for k in ("disclosure_id", "case_id", "description", "purpose", "basis_detail"):
            need(d.get(k, "") == e[k], p + k)
        need(d.get("recipient", {}).get("name", "") == e["recipient"]["name"], p + "recipient.name")
        need(d.get("recipient", {}).get("address", "") == e["recipient"]["address"],
             p + "recipient.address")
        need(list(d.get("data_categories", [])) == e["data_categories"], p + "data_categories")
        need(basis_matches(d.get("basis"), e["basis"]), p + "basis %r" % d.get("basis"))
        need(d.get("excluded_from_accounting", False) is False, p + "excluded_from_accounting")
        need(bool(d.get("client_informed", False)) == e["told"], p + "client_informed")
        if e["told"]:
            need(parse_time(d.get("client_informed_at")) == secs(e["told_at"]),
                 p + "client_informed_at")


# ------------------------------------------------------------ the check
REASONS = {1: "protected", 2: "erased", 3: "disposed", 4: "erased_with_other", 5: "keys_destroyed",
           6: "suspended"}
# What an accounting_suspended record withheld as suspended (reason 6) may show.
SHOWN_WHILE_SUSPENDED = ("client_id", "ends_at", "agency_kind")


def verify(b, vk, origin, subject_flag, since_note, witnesses, quorum, schema):
    checks = []
    # 1. format version and subject
    if b.format_version != 2:
        raise INVALID("format_version %d, want 2 (ask the server for a new bundle)"
                      % b.format_version)
    subject = b.subject_id
    if subject_flag is not None and subject != subject_flag:
        raise PRECOND("this bundle is not the history of %s" % subject_flag)
    if not subject:
        raise INVALID("subject_id is empty")
    # 2. checkpoint: origin, signature, subjects line
    note = b.checkpoint_note.encode()
    first = note.split(b"\n", 1)[0]
    if first != origin:
        raise PRECOND("checkpoint is for origin %r, want %r" % (first, origin))
    text = open_note(note, vk)
    c_origin, size, root, ext = checkpoint_of(text)
    subj = [e for e in ext if e.startswith("subjects ")]
    if not subj:
        raise LOSS("checkpoint has no subjects line")
    if len(subj) > 1:
        raise LOSS("checkpoint has %d subjects lines" % len(subj))
    try:
        sroot = vx.b64_canonical(subj[0][len("subjects "):], "subjects root")
    except vx.Bad as e:
        raise LOSS(str(e))
    if len(sroot) != 32:
        raise LOSS("subjects root is %d bytes" % len(sroot))
    checks.append("checkpoint size %d signed by %s" % (size, vk.name))
    # 3. witnesses
    if witnesses:
        got = [w.name for w in witnesses if cosigned_by(note, w)]
        if len(got) < quorum:
            raise PRECOND("%d of the %d witnesses cosigned the checkpoint, want %d"
                          % (len(got), len(witnesses), quorum))
        checks.append("cosigned by %s" % ", ".join(got))
    # 4. map proof
    # Record format 2 (HISTORY_BUNDLE.md "Blinded records"): the key is the
    # subject's tag under the bundle's subject_salt.
    if b.subject_salt:
        if len(b.subject_salt) != 32:
            raise INVALID("subject_salt is %d bytes, want 32" % len(b.subject_salt))
        key = tag(0x20, b.subject_salt, subject.encode())
    else:
        key = sha(b"\x10", subject.encode())
    streams = {}  # stream tag -> (stream id, salt)
    for i, st in enumerate(b.stream_salts):
        if len(st.salt) != 32:
            raise INVALID("stream_salts[%d].salt is %d bytes, want 32" % (i, len(st.salt)))
        streams[tag(0x21, st.salt, st.stream_id.encode())] = (st.stream_id.encode(), st.salt)
    count, head = map_proof(b.map_proof, key, sroot)
    checks.append("subject index: %d records" % count)
    # 6. payloads, openings, redaction: checked record by record together with
    # step 5 (HISTORY_BUNDLE.md: the first record that fails either is the one named)
    views = []

    def step6(i, hr, rec):
        where = "records[%d] (seq %d)" % (i, hr.seq)
        key_id, fields, sealed = decode_payload(hr.payload_commitments, where)
        pc = sha(b"\x03", vx.u16(len(fields)),
                 *[vx.str16(nm) + bytes([fl]) + c for nm, fl, c in fields])
        if pc != rec["commitment"]:
            raise LOSS("%s: payload_commitments do not give the record's payload_commitment"
                       % where)
        if sealed:
            raise LOSS("%s: payload_commitments carry %d bytes of openings" % (where, len(sealed)))
        n = len(fields)
        for what, lst in (("revealed", hr.revealed), ("withheld", hr.withheld)):
            last = -1
            for f in lst:
                if f.index <= last:
                    raise INVALID("%s: %s indices not strictly increasing" % (where, what))
                if f.index >= n:
                    raise INVALID("%s: %s index %d, the record has %d fields"
                                  % (where, what, f.index, n))
                last = f.index
        rv = {f.index for f in hr.revealed}
        wh = {f.index for f in hr.withheld}
        if rv & wh:
            raise INVALID("%s: field %d both revealed and withheld" % (where, min(rv & wh)))
        if len(rv) + len(wh) != n:
            missing = min(set(range(n)) - rv - wh)
            raise INVALID("%s: field %d neither revealed nor withheld" % (where, missing))
        revealed = []
        for f in hr.revealed:
            name, flags, c = fields[f.index]
            if len(f.salt) != 32:
                raise LOSS("%s: field %r: salt of %d bytes" % (where, name.decode(), len(f.salt)))
            fc = sha(b"\x02", f.salt, vx.str16(name), vx.u32(len(f.value)), f.value)
            if fc != c:
                raise LOSS("%s: field %r: opening does not match its commitment"
                           % (where, name.decode()))
            revealed.append((name, f.value))
        et = rec["event_type"].decode()
        prot = {}
        for idx, (name, flags, c) in enumerate(fields):
            p = schema.protected(et, name.decode())
            prot[idx] = p
            if flags != (0x01 if p else 0x00):
                raise LOSS("%s: field %r has flags 0x%02x, the schema says 0x%02x"
                           % (where, name.decode(), flags, 0x01 if p else 0))
            if p and idx in rv:
                raise LOSS("%s: field %r is a protected detail (a third party's) but the bundle "
                           "reveals it" % (where, name.decode()))
        own = set()
        for f in hr.withheld:
            name = fields[f.index][0].decode()
            if f.reason not in REASONS:
                raise INVALID("%s: field %r withheld with reason %d" % (where, name, f.reason))
            if prot[f.index]:
                if f.reason != 1:
                    raise LOSS("%s: protected field %r withheld with reason %d, want 1"
                               % (where, name, f.reason))
            else:
                if f.reason == 1:
                    raise LOSS("%s: field %r is not a protected detail: the client's own field "
                               "must be shown" % (where, name))
                own.add((f.reason, f.by_seq if f.reason in (2, 3, 6) else 0))
        destroyed = None
        if own:
            if len(own) != 1:
                raise LOSS("%s: the withheld own fields carry different reasons" % where)
            destroyed = next(iter(own))
        if destroyed is not None and destroyed[0] == 6:
            # HISTORY_BUNDLE.md "Redaction", reason 6, within the record.
            names = [n.decode() for n, _ in revealed]
            if et == "disclosure_made":
                if names:
                    raise LOSS("%s: a suspended disclosure reveals %r; it is withheld whole"
                               % (where, names[0]))
            elif et == "accounting_suspended":
                if destroyed[1] != hr.seq:
                    raise LOSS("%s: a suspension withheld as suspended points at seq %d, not "
                               "its own" % (where, destroyed[1]))
                extra = [n for n in names if n not in SHOWN_WHILE_SUSPENDED]
                if extra:
                    raise LOSS("%s: a suspension in force reveals %r" % (where, extra[0]))
                if "ends_at" not in names or "client_id" not in names:
                    raise LOSS("%s: a suspension in force must show its ends_at and client_id"
                               % where)
            else:
                raise LOSS("%s: withheld as suspended, but a %s record is not one a suspension "
                           "of accounting withholds" % (where, et))
        elif destroyed is not None:
            if not key_id:
                raise LOSS("%s: withheld as destroyed but the payload was never sealed" % where)
            if rv:
                raise LOSS("%s: content withheld as destroyed, yet %d fields are revealed"
                           % (where, len(rv)))
            if destroyed[0] == 4 and len(rec["subjects"]) < 2:
                raise LOSS("%s: withheld as erased with another person, but the record names "
                           "only one subject" % where)
        views.append({"seq": hr.seq, "event_type": et, "stream": rec["stream"].decode(),
                      "occurred_at": rec["occurred_at"], "revealed": revealed,
                      "commit_time": rec["commit_time"],
                      "destroyed": destroyed, "where": where,
                      "nsubjects": len(rec["subjects"])})

    # 5. records, inclusion
    if len(b.records) != count:
        raise LOSS("the bundle has %d records, the subject index says %d"
                   % (len(b.records), count))
    recs = []
    prev = None
    for i, hr in enumerate(b.records):
        where = "records[%d] (seq %d)" % (i, hr.seq)
        if prev is not None and hr.seq <= prev:
            raise LOSS("%s: out of order: seq %d after seq %d" % (where, hr.seq, prev))
        prev = hr.seq
        if hr.seq >= size:
            raise LOSS("%s: not below the checkpoint size %d" % (where, size))
        try:
            rec = vx.decode_record(hr.leaf, hr.seq)
        except vx.Bad as e:
            raise LOSS("%s: %s" % (where, e))
        if rec["seq"] != hr.seq:
            raise LOSS("%s: its bytes hold seq %d" % (where, rec["seq"]))
        if rec["format"] == 2:
            if rec["stream"] not in streams:
                raise LOSS("%s: no stream salt in the bundle opens its stream tag" % where)
            sid, ssalt = streams[rec["stream"]]
            rec["stream"] = sid
            rec["event_id"] = box(0x22, ssalt, rec["version"], rec["event_id"])
            rec["producer"] = box(0x23, ssalt, rec["version"], rec["producer"])
        if key not in rec["keys"]:
            raise LOSS("%s: does not name the subject" % where)
        lh = vx.leaf_hash(hr.leaf)
        try:
            verify_inclusion(hr.seq, size, lh, list(hr.inclusion_proof), root)
        except Fail as e:
            raise Fail(e.code, "%s: %s" % (where, e))
        rec["lh"] = lh
        recs.append(rec)
        step6(i, hr, rec)
    checks.append("%d records included in the checkpoint's tree, payloads and redaction"
                  % len(recs))
    # The reason for content that is gone is prescribed by the history
    # (HISTORY_BUNDLE.md "Redaction"), once every record is read.
    for k, v in enumerate(views):
        if v["destroyed"] is None or v["destroyed"][0] == 6:
            continue
        want = None
        for o in views[k + 1:]:
            if o["event_type"] == "subject_erased":
                want = (2, o["seq"])
                break
        if want is None:
            for o in views[k + 1:]:
                if o["event_type"] == "records_disposed" and o["stream"] == v["stream"]:
                    want = (3, o["seq"])
                    break
        if want is None:
            want = (4, 0) if v["nsubjects"] > 1 else (5, 0)
        reason, s_ = v["destroyed"]
        got = (reason, s_ if reason in (2, 3) else 0)
        if got != want:
            raise LOSS("%s: withheld as %s, but this history prescribes %s"
                       % (v["where"], REASONS[reason], REASONS[want[0]]))
    checks.append("withheld reasons' by_seq")
    # 7. subject chain
    h = ZERO
    for rec in recs:
        h = sha(b"\x11", h, u64(rec["seq"]), rec["lh"])
    if h != head:
        raise LOSS("the subject chain over the records does not give the index's head")
    checks.append("subject chain")
    # Reason 6 across the bundle (HISTORY_BUNDLE.md "Redaction"): a
    # suspension of this subject's accounting, in the same case, in force at
    # produced_at, and a withheld disclosure dated before its end.
    produced = b.produced_at.seconds
    produced_us = produced * 1000000 + b.produced_at.nanos // 1000
    by_seq = {v["seq"]: v for v in views}
    suspended = [v for v in views if v["destroyed"] is not None and v["destroyed"][0] == 6]
    for v in suspended:
        s_ = by_seq.get(v["destroyed"][1])
        if s_ is None or s_["event_type"] != "accounting_suspended":
            raise LOSS("%s: withheld as suspended by seq %d, not a suspension in this history"
                       % (v["where"], v["destroyed"][1]))
        if s_["stream"] != v["stream"]:
            raise LOSS("%s: withheld as suspended by a suspension of another case" % v["where"])
        body = schema.body("accounting_suspended", b"".join(x for _, x in s_["revealed"]))
        if not body.HasField("ends_at"):
            raise LOSS("%s: the suspension's end is not shown" % v["where"])
        if body.client_id != subject:
            raise LOSS("%s: withheld for a suspension of someone else's accounting" % v["where"])
        ends = ts_micros(body.ends_at)
        if not (s_["occurred_at"] <= produced_us < ends):
            raise LOSS("%s: the suspension is not in force when the bundle was produced: the "
                       "record must be shown" % v["where"])
        if v["event_type"] == "disclosure_made" and v["occurred_at"] >= ends:
            raise LOSS("%s: a disclosure dated at or after the suspension's end" % v["where"])
    if suspended:
        late = [v for v in views if v["commit_time"] > produced_us]
        if late:
            raise LOSS("produced_at is before seq %d was committed" % late[0]["seq"])
        checks.append("%d records withheld while a suspension lasts" % len(suspended))
    # 8. accounting
    frm, to, kept = derive_accounting(subject, views, schema, produced)
    compare_accounting(b.accounting_json, subject, frm, to, kept)
    checks.append("accounting: %d disclosures" % len(kept))
    # 9. --since
    if since_note is not None:
        if since_note.split(b"\n", 1)[0] != origin:
            raise PRECOND("the --since checkpoint is for another origin")
        stext = open_note(since_note, vk)
        _, ssize, sroot1, _ = checkpoint_of(stext)
        if ssize > size:
            raise PRECOND("the --since checkpoint (size %d) is newer than the bundle's (size %d): "
                          "the server answered from an old state" % (ssize, size))
        # The same size: the roots must agree; the bundle's proof is not read.
        if ssize == size:
            if sroot1 != root:
                raise LOSS("the --since checkpoint has another root at the same size: a fork")
            checks.append("the same checkpoint as the one kept")
            return "history of %s: %d records, complete as of checkpoint size %d; %s" % (
                subject, len(recs), size, "; ".join(checks))
        if b.since_size != ssize:
            raise PRECOND("since_size %d, the --since checkpoint has size %d"
                          % (b.since_size, ssize))
        proof = list(b.consistency_proof)
        if len(proof) != consistency_len(ssize, size) or any(len(p) != 32 for p in proof):
            raise INVALID("consistency proof from %d to %d: %d hashes, want %d"
                          % (ssize, size, len(proof), consistency_len(ssize, size)))
        try:
            vx.verify_consistency(ssize, size, sroot1, root, proof)
        except vx.Bad as e:
            raise LOSS("consistency: %s" % e)
        checks.append("consistent with the checkpoint of size %d" % ssize)
    return "history of %s: %d records, complete as of checkpoint size %d; %s" % (
        subject, len(recs), size, "; ".join(checks))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--key", required=True)
    ap.add_argument("--subject")
    ap.add_argument("--origin")
    ap.add_argument("--since")
    ap.add_argument("--witness_keys")
    ap.add_argument("--quorum", type=int)
    ap.add_argument("--protos", default=os.path.join(HERE, "..", "..", "proto"))
    a = ap.parse_args()
    try:
        access_pb2, events_pb2, options_pb2 = load_protos(a.protos)
        schema = Schema(events_pb2, options_pb2)
        key = a.key
        if os.path.isfile(key):
            key = open(key).read().strip()
        try:
            vk = vx.VerifierKey(key)
        except vx.Bad as e:
            raise INVALID(str(e))
        origin = (a.origin if a.origin is not None else vk.name).encode()
        witnesses = []
        if a.witness_keys:
            src = a.witness_keys
            items = (open(src).read().split() if os.path.isfile(src) else src.split(","))
            witnesses = [WitnessKey(s) for s in items if s.strip()]
        elif a.quorum is not None:
            raise INVALID("--quorum needs --witness_keys")
        quorum = a.quorum if a.quorum is not None else len(witnesses)
        if witnesses and not 1 <= quorum <= len(witnesses):
            raise INVALID("--quorum %d, want 1..%d" % (quorum, len(witnesses)))
        since = open(a.since, "rb").read() if a.since else None
        b = access_pb2.HistoryBundle()
        try:
            b.ParseFromString(open(a.bundle, "rb").read())
        except Exception as e:
            raise INVALID("the bundle does not parse: %s" % e)
        print("OK " + verify(b, vk, origin, a.subject, since, witnesses, quorum, schema))
        return 0
    except Fail as e:
        print("FAIL %s: %s" % (e.code, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
