# The Python side of a worker slot: import the task module once, run the chunks the agent sends, send
# results back. Started by slurmpool_worker.py (which checked the version) with:
#   fd 0  frames from the agent        fd 1  frames to the agent (then pointed at stderr, see below)
#   fd 2  the agent's stderr           fd 3  the slot: 4 doubles in a file the agent reads (see below)
# A frame is a 4-byte big-endian length, a tag byte and a msgpack payload; the length counts the tag.
#   to the worker:   I init, B batch of chunks, S share, U unshare, V take back a batch not begun
#   to the agent:    Y ready, E init error, R results, T retire, V a batch taken back
# Once ready, a reader thread takes frames off the pipe as they come: the agent may send a worker its
# next batch while it runs one (it waits in this interpreter, not behind a pipe and a round trip), and
# may take that batch back ("V", by its number: batches are numbered 1, 2, ... in the order sent) for
# a worker that idles; the thread answers at once, while a task runs, and only for a batch not begun.
import io
import os
import struct
import sys
import time
import types
import _thread
from itertools import islice as _islice, starmap as _starmap

_FRAME = struct.Struct(">IB")
_SEQ = struct.Struct(">I")
_Coroutine = types.CoroutineType  # what an `async def` task returns: run to completion on the interpreter's event loop
FLUSH_S = 0.002  # results are sent at least this often while a batch runs, as the JS worker does
# Items shorter than this run in slices through map() rather than one by one in a Python loop; a slice
# holds about SLICE_S of work, so the stop flag is still read every few milliseconds.
FAST_BELOW_S = 20e-6
SLICE_S = 0.002
_clock = time.perf_counter

# The slot, as the agent's SharedArrayBuffer slot for a worker thread: the chunk running (-1 for none),
# the item's offset in it, when that item started (epoch ms; written only for chunks with a timeout),
# and the stop flag the agent sets when the pool starts no more tasks. The agent reads it when the
# interpreter dies (which item crashed it) and to time tasks out; a file mapping needs no message.
SLOT_CHUNK, SLOT_OFFSET, SLOT_STARTED, SLOT_STOP = 0, 1, 2, 3

CODEC = None  # the codec in use (its .name: msgpack or builtin)
Int32Values = None
INBOX = None  # the Inbox, once ready (tests look into it)

CANCELLED = {"name": "CancelledError", "message": "not started: the pool was told to start no more tasks", "kind": "cancelled"}


def _load(name):
    """One of slurmpool's modules beside this one: with slurmpool_worker.py's loader (it caches the compiled code) when it loaded this runtime."""
    own = globals().get("_own_loader")
    if own is not None:
        return own(name)
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(name, os.path.join(here, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


class Channel(object):
    def __init__(self, rfd, wfd):
        self.r = io.BufferedReader(io.FileIO(rfd, "rb"), 1 << 16)
        self.w = io.BufferedWriter(io.FileIO(wfd, "wb"), 1 << 16)
        self.wlock = _thread.allocate_lock()

    def read(self):
        head = self.r.read(5)
        if len(head) < 5:
            return None, None
        n, tag = _FRAME.unpack(head)
        body = self.r.read(n - 1)
        if len(body) < n - 1:
            return None, None
        return tag, body

    def send(self, tag, payload):
        # The reader thread answers take-backs while the main thread sends results: one frame at a time.
        with self.wlock:
            try:
                self.w.write(_FRAME.pack(len(payload) + 1, tag))
                self.w.write(payload)
                self.w.flush()
            except (BrokenPipeError, OSError):
                # The agent is gone: nobody is left to report to.
                os._exit(0)


class Inbox(object):
    """
    Frames the reader thread took off the pipe, for the main thread, in order. A batch ("B") waits
    here with its number until the main thread takes it; "V" from the agent takes one back if it has
    not been taken yet, and says so to the agent, atomically with the main thread's take.
    """

    def __init__(self, chan):
        self.chan = chan
        self.lock = _thread.allocate_lock()
        self.wake = _thread.allocate_lock()
        self.wake.acquire()  # released by put() when the main thread waits for a frame
        self.waiting = False
        self.items = []
        self.batches = 0

    def put(self, item):
        with self.lock:
            self.items.append(item)
            if self.waiting:
                self.waiting = False
                self.wake.release()

    def take(self):
        while True:
            with self.lock:
                if self.items:
                    return self.items.pop(0)
                self.waiting = True
            self.wake.acquire()

    def read_loop(self):
        try:
            self._read_loop()
        finally:
            # EOF, or a frame this thread could not read: the main thread ends (the agent sees the interpreter exit).
            self.put(None)

    def _read_loop(self):
        chan = self.chan
        while True:
            tag, body = chan.read()
            if tag is None:
                return
            if tag == 0x42:  # B
                self.batches += 1
                self.put((tag, body, self.batches))
            elif tag == 0x56:  # V
                seq = _SEQ.unpack(body)[0]
                with self.lock:
                    for k, item in enumerate(self.items):
                        if item is not None and item[0] == 0x42 and item[2] == seq:
                            del self.items[k]
                            chan.send(0x56, body)
                            break
            else:
                self.put((tag, body, 0))


_OWN_FILES = (os.path.abspath(__file__), os.path.join(os.path.dirname(os.path.abspath(__file__)), "slurmpool_worker.py"))


def error_record(e, kind="error"):
    """An exception as the agent's ErrorRecord: class, message, and the traceback as the stack, from the task's own frames."""
    tb = e.__traceback__
    # This runtime's frames and importlib's say nothing about the task: the traceback starts where the user's code does.
    while tb is not None and (tb.tb_frame.f_code.co_filename in _OWN_FILES or tb.tb_frame.f_code.co_filename.startswith("<frozen ")):
        tb = tb.tb_next
    try:
        import traceback  # only when something failed: it costs start-up time otherwise

        stack = "".join(traceback.format_exception(type(e), e, tb))
    except Exception:
        stack = ""
    rec = {"name": type(e).__name__, "message": str(e), "stack": stack.rstrip("\n"), "kind": kind}
    errno_ = getattr(e, "errno", None)
    if isinstance(errno_, int):
        import errno as _errno

        code = _errno.errorcode.get(errno_)
        if code:
            rec["code"] = code
    return rec


def describe(mod, path):
    """Every public name of the module and what it is, as the agent reports a JS module's exports."""
    out = {}
    for k, v in vars(mod).items():
        if k.startswith("__"):
            continue
        if isinstance(v, type):
            out[k] = "class"
        elif isinstance(v, types.ModuleType):
            out[k] = "module"
        elif callable(v):
            out[k] = "function"
        else:
            out[k] = type(v).__name__
    return out


def functions_of(mod):
    return sorted(k for k, t in describe(mod, None).items() if t == "function")


def import_module(path):
    try:
        # importlib.util's own functions, without importing importlib.util (and contextlib under it): ~5 ms of each start.
        from _frozen_importlib import module_from_spec
        from _frozen_importlib_external import spec_from_file_location
    except ImportError:
        from importlib.util import module_from_spec, spec_from_file_location

    name = os.path.splitext(os.path.basename(path))[0]
    folder = os.path.dirname(path)
    # As `python tasks.py` would: the module's folder first on sys.path, for its sibling imports.
    if not sys.path or sys.path[0] != folder:
        sys.path.insert(0, folder)
    spec = spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot load %s as a Python module" % path)
    mod = module_from_spec(spec)
    # Registered under its name, so that pickle, dataclasses and the like find it.
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


class Worker(object):
    def __init__(self, chan, codec, slot, init):
        self.chan = chan
        self.codec = codec
        self.slot = slot
        self.index = init["worker"]
        self.max_tasks = init.get("maxTasks") or 0
        self.path = init["module"]
        self.mod = None
        self.fns = {}
        self.tasks_done = 0
        self.shared = {}
        self.ever_shared = False
        self.loop = None
        self.async_fns = set()
        for e in init.get("shared") or []:
            self.add_share(e)

    # ------------------------------------------------------------------ shared values

    def add_share(self, e):
        self.shared[e["id"]] = {"entry": e}
        self.ever_shared = True

    def shared_value(self, ref):
        sid = ref["$slurmpoolShared"]
        s = self.shared.get(sid)
        if s is None:
            raise KeyError("shared value #%s is not on this node (was it unshared with pool.unshare?)" % sid)
        if "value" not in s:
            e = s["entry"]
            if e["kind"] == "bytes":
                s["value"] = map_shared(e)
            else:
                s["value"] = self.codec.decode(e["data"])
        return s["value"]

    def resolve(self, item):
        """Shared handles in an item become the data: the item itself, elements of a list, values of a dict."""
        t = type(item)
        if t is dict:
            if "$slurmpoolShared" in item and type(item["$slurmpoolShared"]) is int:
                return self.shared_value(item)
            for k, v in item.items():
                if type(v) is dict and type(v.get("$slurmpoolShared")) is int:
                    item[k] = self.shared_value(v)
        elif t is list:
            for k, v in enumerate(item):
                if type(v) is dict and type(v.get("$slurmpoolShared")) is int:
                    item[k] = self.shared_value(v)
        return item

    # ------------------------------------------------------------------ tasks

    def fn(self, name):
        f = self.fns.get(name)
        if f is None:
            v = getattr(self.mod, name, None)
            if v is not None and callable(v):
                f = v
            elif v is None and not hasattr(self.mod, name):
                f = NameError("task module %s has no function named '%s' (its functions: %s)" % (self.path, name, ", ".join(functions_of(self.mod)) or "none"))
            else:
                f = TypeError("'%s' in task module %s is not a function (it is %s)" % (name, self.path, type(v).__name__))
            self.fns[name] = f
        return f

    def await_(self, v):
        import asyncio

        if self.loop is None:
            self.loop = asyncio.new_event_loop()
        return self.loop.run_until_complete(v)

    def run_chunk(self, c):
        cid, fname, kind, start, count, items_b, stop_on_error, timeout_ms = c[:8]
        careful = len(c) > 8 and c[8]
        started = time.time() * 1000.0
        slot = self.slot
        slot[SLOT_CHUNK] = cid
        values = []
        failures = []
        if kind == "shell":
            err = {"name": "TypeError", "message": "a Python pool runs functions of its task module, not shell commands", "kind": "error"}
            failures = [{"offset": 0, "error": err}] if stop_on_error else [{"offset": i, "error": err} for i in range(count)]
            return self.result(cid, [] if stop_on_error else [None] * count, failures, started)
        f = self.fn(fname)
        if isinstance(f, Exception):
            return self.result(cid, [], [{"offset": 0, "error": {"name": type(f).__name__, "message": str(f), "kind": "error"}}], started)
        items = self.codec.decode_items(items_b)
        star = kind == "star"
        timed = timeout_ms > 0
        shared = self.ever_shared
        n = len(items)
        append = values.append
        it = iter(items)
        # Tiny tasks run in slices through map() (C), which costs a quarter of a Python loop per item;
        # see FAST_BELOW_S. Not with a timeout (each item's start is needed), shared values (resolved
        # per item), async functions, or a chunk the agent asked to run carefully (see below).
        fast_ok = not (timed or shared or careful or fname in self.async_fns)
        per_item = None
        i = 0
        while i < n:
            if slot[SLOT_STOP] != 0:
                for k in range(i, n):
                    failures.append({"offset": k, "error": CANCELLED})
                    if stop_on_error:
                        break
                    append(None)
                break
            if fast_ok and per_item is not None and per_item < FAST_BELOW_S:
                # A slice of about SLICE_S of work. The slot says -1: if the interpreter dies here, the agent
                # cannot know which item killed it, and runs the whole chunk again carefully (items before the
                # crash run again, as they do after any worker death), which then finds the item.
                size = max(1, min(n - i, int(SLICE_S / max(per_item, 1e-9))))
                slot[SLOT_OFFSET] = -1
                t0 = _clock()
                try:
                    values.extend((_starmap if star else map)(f, _islice(it, size)))
                except BaseException as e:
                    # extend() keeps what came before the failing item, which map() had taken from `it`.
                    failures.append({"offset": len(values), "error": error_record(e)})
                    if stop_on_error:
                        break
                    append(None)
                done = len(values) - i
                per_item = (_clock() - t0) / max(1, done)
                i = len(values)
                continue
            # The item's offset goes into the slot before it starts: if the interpreter dies, the agent knows which item killed it.
            slot[SLOT_OFFSET] = i
            if timed:
                slot[SLOT_STARTED] = time.time() * 1000.0
            t0 = _clock()
            try:
                item = next(it)
                if shared:
                    item = self.resolve(item)
                v = f(*item) if star else f(item)
                if type(v) is _Coroutine:
                    self.async_fns.add(fname)
                    fast_ok = False
                    v = self.await_(v)
                append(v)
            except BaseException as e:  # SystemExit from a task too: it fails its item, not the interpreter
                failures.append({"offset": i, "error": error_record(e)})
                if stop_on_error:
                    break
                append(None)
            t = _clock() - t0
            per_item = t if per_item is None else min(per_item, t) if i < 3 else t
            i += 1
        return self.result(cid, values, failures, started, stop_on_error)

    def result(self, cid, values, failures, started, stop_on_error=False):
        try:
            data = self.codec.encode_values(values)
        except Exception:
            data = self.encode_each(values, failures, stop_on_error)
        return {"id": cid, "worker": self.index, "values": data, "failures": failures, "started": started, "ended": time.time() * 1000.0}

    def encode_each(self, values, failures, stop_on_error):
        """A value msgpack cannot hold fails its own item, with what it was; the others keep theirs."""
        failed = set(f["offset"] for f in failures)
        for i, v in enumerate(values):
            if i in failed:
                continue
            try:
                self.codec.encode(v)
            except Exception as e:
                failures.append({"offset": i, "error": {"name": "ResultNotEncodable", "message": "the task's result (%s) could not be encoded to send back: %s" % (type(v).__name__, e), "kind": "error"}})
                values[i] = None
        failures.sort(key=lambda f: f["offset"])
        if stop_on_error and failures:
            del values[failures[0]["offset"] :]
        return self.codec.encode_values(values)

    def run_batch(self, chunks):
        out = []
        last = time.time()
        for c in chunks:
            try:
                r = self.run_chunk(c)
            except Exception as e:
                # Not a task's failure (a chunk that cannot be read): every item of it fails, the interpreter goes on.
                err = error_record(e)
                err["message"] = "this chunk could not be run (items %d-%d): %s" % (c[3], c[3] + c[4] - 1, err["message"])
                fails = [{"offset": 0, "error": err}] if c[6] else [{"offset": i, "error": err} for i in range(c[4])]
                r = {"id": c[0], "worker": self.index, "values": self.codec.encode([]), "failures": fails, "started": last * 1000.0, "ended": time.time() * 1000.0}
            out.append(r)
            self.tasks_done += c[4]
            if self.max_tasks and self.tasks_done >= self.max_tasks:
                self.slot[SLOT_CHUNK] = -1
                self.send_results(out)
                self.chan.send(ord("T"), b"")
                # Chunks not run are requeued by the agent when this interpreter exits.
                os._exit(0)
            now = time.time()
            if now - last >= FLUSH_S:
                self.send_results(out)
                out = []
                last = now
        self.slot[SLOT_CHUNK] = -1
        if out:
            self.send_results(out)

    def send_results(self, out):
        if out:
            # "Q": results of which some are Int32Arrays, which the agent widens (slurmpool_codec.Int32Values).
            int32 = Int32Values is not None and any(type(r["values"]) is Int32Values for r in out)
            self.chan.send(0x51 if int32 else 0x52, self.codec.encode(out))


def map_shared(e):
    """A binary shared value: a read-only memoryview over the node's one file mapping (numpy.frombuffer reads it in place)."""
    import mmap

    fmt = {"Float64Array": "d", "Float32Array": "f", "Int8Array": "b", "Int16Array": "h", "Uint16Array": "H", "Int32Array": "i", "Uint32Array": "I", "BigInt64Array": "q", "BigUint64Array": "Q"}.get(e.get("ctor"), "B")
    with open(e["path"], "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return memoryview(b"")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    mv = memoryview(mm)
    if fmt != "B" and size % mv.cast(fmt).itemsize == 0:
        mv = mv.cast(fmt)
    return mv


def main():
    # The channel keeps the original pipes; then fd 1 becomes stderr, so that whatever a task prints
    # (print, or C code writing to stdout) goes to the agent's stderr and never into a frame.
    rfd = os.dup(0)
    wfd = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    # The agent decides when the pool stops (a Ctrl-C or scancel reaching it too must not fail the task running here).
    try:
        import _signal as signal  # the C module: `signal` imports enum, a tenth of the start-up time
    except ImportError:
        import signal
    for s in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(s, signal.SIG_IGN)
        except (ValueError, OSError):
            pass
    import faulthandler

    faulthandler.enable(file=sys.stderr)  # a segfault prints its Python stack before the agent reports the death
    import mmap

    slot_map = mmap.mmap(3, 32)
    os.close(3)
    slot = memoryview(slot_map).cast("d")
    chan = Channel(rfd, wfd)
    codec_mod = _load("slurmpool_codec")
    tag, body = chan.read()
    if tag != ord("I"):
        os._exit(2)
    try:
        codec = codec_mod.choose()
    except Exception as e:
        import json

        # No codec, no msgpack: the error goes as JSON, which the agent also reads.
        chan.send(ord("E"), b"J" + json.dumps(error_record(e)).encode())
        _wait_for_eof(chan)
        return
    global CODEC, Int32Values
    CODEC = codec
    Int32Values = getattr(codec_mod, "Int32Values", None)
    init = codec.decode(body)
    w = Worker(chan, codec, slot, init)
    try:
        cpus = init.get("cpus")
        if cpus and hasattr(os, "sched_setaffinity"):
            # Before the module loads, so that numpy's and OpenMP's thread pools see the slot's cores.
            os.sched_setaffinity(0, cpus)
        w.mod = import_module(init["module"])
        ini = init.get("initializer")
        if ini:
            f = w.fn(ini)
            if isinstance(f, Exception):
                raise f
            v = f(*(init.get("initArgs") or []))
            if hasattr(v, "__await__"):
                w.await_(v)
    except BaseException as e:
        err = error_record(e)
        where = "initializer '%s'" % init.get("initializer") if w.mod is not None else "import of %s" % init["module"]
        # The traceback is the message: where the import failed is what the user needs, before any work starts.
        err["message"] = "%s failed:\n%s" % (where, err["stack"] or "%s: %s" % (err["name"], err["message"]))
        chan.send(ord("E"), codec.encode(err))
        _wait_for_eof(chan)
        return
    info = {"exports": describe(w.mod, init["module"]), "python": sys.version.split()[0], "executable": sys.executable, "codec": codec.name, "codecVersion": codec.version}
    chan.send(ord("Y"), codec.encode(info))
    decode = codec.decode
    global INBOX
    INBOX = inbox = Inbox(chan)
    _thread.start_new_thread(inbox.read_loop, ())
    while True:
        item = inbox.take()
        if item is None:
            return
        tag, body = item[0], item[1]
        if tag == 0x42:  # B
            w.run_batch(decode(body))
        elif tag == 0x53:  # S
            w.add_share(decode(body))
        elif tag == 0x55:  # U
            w.shared.pop(decode(body), None)


def _wait_for_eof(chan):
    while chan.read()[0] is not None:
        pass
