"""Section P, multiprocessing.Pool (fork) on the same functions: python3 py_mp.py P1c1 N | P1auto N | P2 WORKERS | P4 -> one JSON line."""
import json
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_tasks import count_primes, identity, noop  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "params.json")) as f:
    PARAMS = json.load(f)


def prime_ranges(lo, hi, tasks):
    step = (hi - lo) / tasks
    return [(lo + round(i * step), lo + round((i + 1) * step)) for i in range(tasks)]


def main(argv):
    workload = argv[0]
    if workload == "P4":
        # Whole process: open 2 workers, one trivial task, close, exit (the figure is the wall time).
        pool = mp.get_context("fork").Pool(2)
        pool.map(noop, [0])
        pool.close()
        pool.join()
        return {}
    workers = int(argv[1]) if workload == "P2" else PARAMS["workers"]
    with mp.get_context("fork").Pool(workers) as pool:
        pool.map(identity, range(workers * 4), chunksize=1)  # every worker up before timing
        if workload in ("P1c1", "P1auto"):
            n = int(argv[1])
            items = list(range(n))
            cs = 1 if workload == "P1c1" else None
            pool.map(identity, items, chunksize=cs)  # steady state: one untimed run first
            t0 = time.perf_counter()
            out = pool.map(identity, items, chunksize=cs)
            seconds = time.perf_counter() - t0
            if out != items:
                raise RuntimeError("results differ from 0..n-1")
            return {"seconds": seconds, "n": n}
        if workload == "P2":
            p = PARAMS["w2"]["python"]
            ranges = prime_ranges(p["lo"], p["hi"], PARAMS["w2"]["tasks"])
            t0 = time.perf_counter()
            out = pool.map(count_primes, ranges, chunksize=1)
            seconds = time.perf_counter() - t0
            if sum(out) != p["expected_primes"]:
                raise RuntimeError("counted %d primes, expected %d" % (sum(out), p["expected_primes"]))
            return {"seconds": seconds, "workers": workers}
    raise RuntimeError("unknown workload %s" % workload)


if __name__ == "__main__":
    try:
        result = dict(ok=True, **main(sys.argv[1:]))
    except Exception as e:
        result = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)
