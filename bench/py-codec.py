"""How fast each codec of slurmpool's Python workers is: python3 bench/py-codec.py -> a Markdown table.

Per payload: microseconds to decode what the agent sends and to encode a result, best of 7 runs,
for the msgpack package (when importable) and the built-in pure-Python codec (python/slurmpool_codec.py).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import slurmpool_codec as C  # noqa: E402

PAYLOADS = {
    "1,000 small ints": list(range(1000)),
    "1,000 floats": [i + 0.5 for i in range(1000)],
    "1,000 records {id, name, score, tags}": [{"id": i, "name": "item%d" % i, "score": i * 0.5, "tags": ["a", "b"]} for i in range(1000)],
    "one 1 MiB bytes": [bytes(1 << 20)],
    "1,000 strings of 20 chars": ["x" * 20] * 1000,
}


def best(fn, reps=7):
    t = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t * 1e6


def main():
    codecs = []
    for name in ("msgpack", "builtin"):
        try:
            codecs.append(C.choose(name))
        except ImportError:
            pass
    ref = codecs[0]
    print("| payload | " + " | ".join("%s decode µs | %s encode µs" % (c.name, c.name) for c in codecs) + " |")
    print("|---|" + "---:|---:|" * len(codecs))
    for label, value in PAYLOADS.items():
        data = ref.encode(value)
        cells = []
        for c in codecs:
            assert c.decode(data) == value, (c.name, label)
            cells.append("%.0f | %.0f" % (best(lambda: c.decode(data)), best(lambda: c.encode_values(value))))
        print("| %s | %s |" % (label, " | ".join(cells)))
    print()
    print("python %s (%s); msgpack %s" % (sys.version.split()[0], sys.executable, next((c.version for c in codecs if c.name == "msgpack"), "not importable")))


main()
