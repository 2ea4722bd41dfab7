#!/usr/bin/python3
"""Damages a copy of an export bundle in one named way (for verify_export_test).

    mutate.py IN OUT KIND [N]

KIND: flip-record N (a byte inside record N's event type), drop-record N,
swap-records N (records N and N+1), truncate (cut inside the last record),
alter-note N (a byte of the N-th checkpoint's root line), dup-record N,
move-consistency (after the checkpoint at first_seq: still valid),
drop-last-checkpoint (and fix the trailer: valid, with unanchored records).
Walks the framing of BUNDLE.md "Layout"; knows nothing else of the format.
"""
import struct
import sys


def entries(b):
    out, at = [], 10
    while at < len(b):
        t = b[at]
        ln = struct.unpack(">I", b[at + 1:at + 5])[0]
        out.append((t, at, 5 + ln))
        at += 5 + ln
    return out


def main():
    src, dst, kind = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    b = bytearray(open(src, "rb").read())
    es = entries(b)
    recs = [e for e in es if e[0] == 0x04]
    cps = [e for e in es if e[0] == 0x05]
    by_seq = {struct.unpack(">Q", b[at + 5:at + 13])[0]: (at, ln) for _, at, ln in recs}
    if kind == "flip-record":
        at, _ = by_seq[n]
        leaf = at + 5 + 8 + 1 + 4
        # Skip version, seq, prev_hash, commit_time, then stream_id and version,
        # event_id and producer: land inside event_type.
        p = leaf + 1 + 8 + 32 + 8
        for _ in range(1):
            p += 2 + struct.unpack(">H", b[p:p + 2])[0]
        p += 8
        for _ in range(2):
            p += 2 + struct.unpack(">H", b[p:p + 2])[0]
        b[p + 3] ^= 0x01
    elif kind == "drop-record":
        at, ln = by_seq[n]
        del b[at:at + ln]
    elif kind == "dup-record":
        at, ln = by_seq[n]
        b[at + ln:at + ln] = b[at:at + ln]
    elif kind == "swap-records":
        a_at, a_ln = by_seq[n]
        b_at, b_ln = by_seq[n + 1]
        assert a_at + a_ln == b_at, "records %d and %d are not adjacent" % (n, n + 1)
        b[a_at:b_at + b_ln] = b[b_at:b_at + b_ln] + b[a_at:a_at + a_ln]
    elif kind == "truncate":
        at, ln = recs[-1][1], recs[-1][2]
        del b[at + ln // 2:]
    elif kind == "alter-note":
        _, at, ln = cps[n]
        note = at + 5 + 8 + 4
        first_nl = b.index(b"\n", note)
        second_nl = b.index(b"\n", first_nl + 1)
        b[second_nl + 5] ^= 0x02  # a base64 character of the root line
    elif kind == "drop-last-checkpoint":
        # Leaves the records after the one before it unanchored; the trailer's
        # checkpoint_count is fixed so the bundle is still well formed.
        _, k_at, k_ln = cps[-1]
        del b[k_at:k_at + k_ln]
        t_at = len(b) - (5 + 8 + 8 + 32)
        assert b[t_at] == 0x7F
        b[t_at + 13:t_at + 21] = struct.pack(">Q", len(cps) - 1)
    elif kind == "move-consistency":
        # After the checkpoint at first_seq, which the writer puts after it.
        (_, c_at, c_ln), = [e for e in es if e[0] == 0x03]
        _, k_at, k_ln = cps[0]
        assert c_at + c_ln == k_at, "no checkpoint right after the consistency entry"
        b[c_at:k_at + k_ln] = b[k_at:k_at + k_ln] + b[c_at:c_at + c_ln]
    else:
        sys.exit("unknown mutation " + kind)
    open(dst, "wb").write(bytes(b))


if __name__ == "__main__":
    main()
