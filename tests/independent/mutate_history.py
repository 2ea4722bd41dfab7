#!/usr/bin/python3
"""Changes a copy of a history bundle in one named way (verify_history_test).

    mutate_history.py IN OUT KIND [ARG]

KIND:
  reveal-protected FULL   reveal the first withheld protected field, with its real
                          opening taken from FULL (the same records, full view)
  withhold-own            withhold the first revealed field of the first record that
                          has a protected field too, as a "protected detail"
  rewrite-accounting      change the first disclosure's recipient name in accounting_json
  drop-accounting-entry   remove the last disclosure from accounting_json
  drop-record N           remove records[N]
  swap-records N          swap records[N] and records[N+1]
  version-1               format_version 1
  reason R                every withheld own field (reasons 2-5) gets reason R, by_seq kept
  by-seq S                every withheld own field gets by_seq S
  cosign SEEDHEX NAME T   append witness NAME's cosignature (seed SEEDHEX, time T)
  flip-consistency        change a byte of the first consistency proof hash
  copy-payload N          records[N] gets records[N-1]'s payload_commitments
  produced-at-of OTHER    produced_at and accounting_json taken from bundle OTHER (prints
                          the seq of the first record withheld as suspended)
  suspend-first TYPE      the first record of event type TYPE: every revealed field
                          withheld as suspended (reason 6) by the seq the bundle's first
                          suspended field points at
Prints the seq of the record it changed, if any.
"""
import base64
import hashlib
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verify_history as vh  # noqa: E402  (protobuf modules only)


def main():
    src, dst, kind = sys.argv[1:4]
    args = sys.argv[4:]
    access_pb2, _, _ = vh.load_protos(os.path.join(vh.HERE, "..", "..", "proto"))
    b = access_pb2.HistoryBundle()
    b.ParseFromString(open(src, "rb").read())
    changed = None
    if kind == "reveal-protected":
        full = access_pb2.HistoryBundle()
        full.ParseFromString(open(args[0], "rb").read())
        for r, f in zip(b.records, full.records):
            w = [x for x in r.withheld if x.reason == access_pb2.WITHHELD_PROTECTED_DETAIL]
            if not w:
                continue
            idx = w[0].index
            (opening,) = [x for x in f.revealed if x.index == idx]
            keep = [x for x in r.withheld if x.index != idx]
            del r.withheld[:]
            r.withheld.extend(keep)
            shown = sorted(list(r.revealed) + [opening], key=lambda x: x.index)
            del r.revealed[:]
            r.revealed.extend(shown)
            changed = r.seq
            break
    elif kind == "withhold-own":
        for r in b.records:
            if r.revealed and any(x.reason == access_pb2.WITHHELD_PROTECTED_DETAIL
                                  for x in r.withheld):
                idx = r.revealed[0].index
                del r.revealed[0]
                w = sorted(list(r.withheld), key=lambda x: x.index)
                n = access_pb2.WithheldField(index=idx,
                                             reason=access_pb2.WITHHELD_PROTECTED_DETAIL)
                w = sorted(w + [n], key=lambda x: x.index)
                del r.withheld[:]
                r.withheld.extend(w)
                changed = r.seq
                break
    elif kind == "rewrite-accounting":
        a = json.loads(b.accounting_json)
        a["disclosures"][0]["recipient"]["name"] = "Someone Else"
        b.accounting_json = json.dumps(a, indent=2) + "\n"
    elif kind == "drop-accounting-entry":
        a = json.loads(b.accounting_json)
        a["disclosures"].pop()
        b.accounting_json = json.dumps(a, indent=2) + "\n"
    elif kind == "drop-record":
        changed = b.records[int(args[0])].seq
        del b.records[int(args[0])]
    elif kind == "swap-records":
        n = int(args[0])
        x, y = access_pb2.HistoryRecord(), access_pb2.HistoryRecord()
        x.CopyFrom(b.records[n])
        y.CopyFrom(b.records[n + 1])
        b.records[n].CopyFrom(y)
        b.records[n + 1].CopyFrom(x)
        changed = x.seq
    elif kind == "copy-payload":
        n = int(args[0])
        b.records[n].payload_commitments = b.records[n - 1].payload_commitments
        changed = b.records[n].seq
    elif kind == "produced-at-of":
        other = access_pb2.HistoryBundle()
        other.ParseFromString(open(args[0], "rb").read())
        b.produced_at.CopyFrom(other.produced_at)
        b.accounting_json = other.accounting_json
        changed = next(r.seq for r in b.records
                       if any(w.reason == access_pb2.WITHHELD_SUSPENDED for w in r.withheld))
    elif kind == "suspend-first":
        import verify_export as vx
        by = next(w.by_seq for r in b.records for w in r.withheld
                  if w.reason == access_pb2.WITHHELD_SUSPENDED)
        for r in b.records:
            if vx.decode_record(r.leaf, r.seq)["event_type"].decode() != args[0]:
                continue
            w = list(r.withheld) + [access_pb2.WithheldField(
                index=x.index, reason=access_pb2.WITHHELD_SUSPENDED, by_seq=by)
                for x in r.revealed]
            del r.revealed[:]
            del r.withheld[:]
            r.withheld.extend(sorted(w, key=lambda x: x.index))
            changed = r.seq
            break
    elif kind == "version-1":
        b.format_version = 1
    elif kind in ("reason", "by-seq"):
        v = int(args[0])
        for r in b.records:
            for w in r.withheld:
                if w.reason != access_pb2.WITHHELD_PROTECTED_DETAIL:
                    if kind == "reason":
                        w.reason = v
                    else:
                        w.by_seq = v
                    if changed is None:
                        changed = r.seq
    elif kind == "cosign":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        seed, name, t = bytes.fromhex(args[0]), args[1].encode(), int(args[2])
        sk = Ed25519PrivateKey.from_private_bytes(seed)
        pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        kh = hashlib.sha256(name + b"\n\x04" + pub).digest()[:4]
        note = b.checkpoint_note.encode()
        text = note[:note.rfind(b"\n\n") + 1]
        sig = sk.sign(b"cosignature/v1\ntime %d\n" % t + text)
        line = "— ".encode() + name + b" " + base64.b64encode(kh + struct.pack(">Q", t) + sig)
        b.checkpoint_note = (note + line + b"\n").decode()
        print("%s+%s+%s" % (name.decode(), kh.hex(), base64.b64encode(b"\x04" + pub).decode()))
    elif kind == "drop-stream-salts":  # record format 2: tags nobody can open
        del b.stream_salts[:]
        changed = b.records[0].seq
    elif kind == "flip-subject-salt":  # record format 2: the key of another pseudonym
        salt = bytearray(b.subject_salt)
        salt[0] ^= 1
        b.subject_salt = bytes(salt)
    elif kind == "flip-consistency":
        p = bytearray(b.consistency_proof[0])
        p[0] ^= 1
        b.consistency_proof[0] = bytes(p)
    else:
        sys.exit("unknown mutation " + kind)
    open(dst, "wb").write(b.SerializeToString(deterministic=True))
    if changed is not None:
        print(changed)


if __name__ == "__main__":
    main()
