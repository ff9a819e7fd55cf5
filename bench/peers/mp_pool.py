"""Python multiprocessing.Pool (fork) peer: python3 mp_pool.py W1c1|W1auto|W2 <workers>|W3|W5 -> one JSON line."""
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "params.json")) as f:
    PARAMS = json.load(f)


# The same task functions as section P's slurmpool runs (bench/peers/py_tasks.py).
sys.path.insert(0, HERE)
from py_tasks import count_primes, identity, is_prime  # noqa: E402,F401


def byte_length(b):
    return len(b)


def run_command(argv):
    return subprocess.run(argv).returncode


def prime_ranges(lo, hi, tasks):
    step = (hi - lo) / tasks
    return [(lo + round(i * step), lo + round((i + 1) * step)) for i in range(tasks)]


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def main(argv):
    workload = argv[0]
    workers = int(argv[1]) if len(argv) > 1 else PARAMS["workers"]
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        pool.map(identity, range(workers * 4), chunksize=1)  # every worker up before timing
        if workload in ("W1c1", "W1auto"):
            n = PARAMS["w1"]["n"]
            items = list(range(n))
            # steady state: one untimed run first, as for every implementation
            if workload == "W1c1":
                pool.map(identity, items, chunksize=1)
                seconds, out = timed(lambda: pool.map(identity, items, chunksize=1))
            else:
                pool.map(identity, items)
                seconds, out = timed(lambda: pool.map(identity, items))  # default: ceil(n / (4 * workers))
            if out != items:
                raise RuntimeError("results differ from 0..n-1")
            return {"seconds": seconds, "n": n}
        if workload == "W2":
            p = PARAMS["w2"]["python"]
            ranges = prime_ranges(p["lo"], p["hi"], int(os.environ.get("BENCH_W2_TASKS", PARAMS["w2"]["tasks"])))
            seconds, out = timed(lambda: pool.map(count_primes, ranges, chunksize=1))
            if sum(out) != p["expected_primes"]:
                raise RuntimeError(f"counted {sum(out)} primes, expected {p['expected_primes']}")
            return {"seconds": seconds, "workers": workers, "primes": sum(out), "range": [p["lo"], p["hi"]]}
        if workload == "W3":
            tasks, nbytes = PARAMS["w3"]["tasks"], PARAMS["w3"]["bytes"]
            items = [bytes(nbytes)] * tasks  # pickled (copied) once per task
            seconds, out = timed(lambda: pool.map(byte_length, items, chunksize=1))
            if any(x != nbytes for x in out):
                raise RuntimeError("a task saw the wrong length")
            return {"seconds": seconds, "tasks": tasks, "bytes": nbytes}
        if workload == "W5":
            n, cmd = PARAMS["w5"]["commands"], PARAMS["w5"]["argv"]
            seconds, out = timed(lambda: pool.map(run_command, [cmd] * n, chunksize=1))
            failed = sum(1 for rc in out if rc != 0)
            if failed:
                raise RuntimeError(f"{failed} of {n} commands failed")
            return {"seconds": seconds, "commands": n}
        raise RuntimeError(f"unknown workload {workload}")


if __name__ == "__main__":
    try:
        result = {"ok": True, **main(sys.argv[1:])}
    except Exception as e:  # reported as data, one line
        result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)
