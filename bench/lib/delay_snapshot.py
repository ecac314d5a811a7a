"""Due times of the delayed entries of one partition: "<message id> <due Unix ms>" lines.

    python3 delay_snapshot.py PORT DELAYED_ZSET_KEY OUT_FILE EXPECTED [-- COMMAND...]

With a COMMAND (the publish), it runs it first and snapshots right after it
exits (so no interpreter start-up lies between the two); its stdout is passed on.
Reads ZRANGE key 0 -1 WITHSCORES; each member is the entry's flat field/value
list packed with MessagePack (docs/wire-format.md), the score its due time on
the Redis clock. Exits 1 unless exactly EXPECTED members are there (i.e. none
was moved yet).
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from resp import Redis  # noqa: E402


def unpack(b, i=0):
    """Decode one MessagePack value (the subset cmsgpack writes for string arrays)."""
    t = b[i]
    if t <= 0x7F:
        return t, i + 1
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return b[i + 1:i + 1 + n], i + 1 + n
    if 0x90 <= t <= 0x9F:
        return unpack_array(b, i + 1, t & 0x0F)
    if t == 0xDC:
        return unpack_array(b, i + 3, struct.unpack_from(">H", b, i + 1)[0])
    if t == 0xDD:
        return unpack_array(b, i + 5, struct.unpack_from(">I", b, i + 1)[0])
    for code, fmt, size in ((0xD9, ">B", 1), (0xDA, ">H", 2), (0xDB, ">I", 4),
                            (0xC4, ">B", 1), (0xC5, ">H", 2), (0xC6, ">I", 4)):
        if t == code:
            n = struct.unpack_from(fmt, b, i + 1)[0]
            s = i + 1 + size
            return b[s:s + n], s + n
    raise ValueError("unsupported msgpack type 0x%02x" % t)


def unpack_array(b, i, n):
    out = []
    for _ in range(n):
        v, i = unpack(b, i)
        out.append(v)
    return out, i


def main():
    port, key, out, expected = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    r = Redis(port=port)
    if "--" in sys.argv:
        import subprocess
        cmd = sys.argv[sys.argv.index("--") + 1:]
        done = subprocess.run(cmd, stdout=subprocess.PIPE)
        sys.stdout.buffer.write(done.stdout)
        sys.stdout.flush()
        if done.returncode != 0:
            sys.exit("delay_snapshot: %s failed (exit %d)" % (cmd[0], done.returncode))
    flat = r.call("ZRANGE", key, 0, -1, "WITHSCORES")
    rows = []
    for m, score in zip(flat[0::2], flat[1::2]):
        fields, _ = unpack(m)
        d = dict(zip(fields[0::2], fields[1::2]))
        rows.append("%s %d" % (d[b"id"].decode(), int(float(score))))
    with open(out, "w") as f:
        f.write("\n".join(rows) + "\n")
    if len(rows) != expected:
        sys.exit("delay_snapshot: %d delayed entries in %s, expected %d" % (len(rows), key, expected))


if __name__ == "__main__":
    main()
