# slurmpool's Python worker: one long-lived interpreter per worker slot, started by the node's agent.
# This file checks the interpreter's version first, in syntax every Python can parse, so that an old
# interpreter gets a clear message instead of a SyntaxError from the runtime; then it runs the runtime
# (slurmpool_runtime.py, beside it, compiled once and cached: see _code), which speaks to the agent over
# the pipes it was started with.
import sys

MIN_VERSION = (3, 8)

if tuple(sys.version_info[:2]) < MIN_VERSION:
    sys.stderr.write(
        "slurmpool: Python %d.%d.%d at %s is older than %d.%d, the oldest slurmpool runs tasks with; "
        "set options.python or SLURMPOOL_PYTHON to a newer interpreter\n"
        % (sys.version_info[0], sys.version_info[1], sys.version_info[2], sys.executable, MIN_VERSION[0], MIN_VERSION[1])
    )
    sys.stderr.flush()
    sys.exit(3)

import os

# The runtime is loaded by path and this folder leaves sys.path: the task module's own folder takes its
# place, so that its sibling imports resolve as they would for `python tasks.py`.
_here = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _here:
    del sys.path[0]


def _cache_dirs():
    # Beside the sources, as Python's own __pycache__; else the user's cache (a read-only install).
    yield os.path.join(_here, "__pycache__")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(base, "slurmpool")


def _private(p, owner):
    """True when p exists, is writable by its owner alone, and that owner is this user, root or the owner of the sources."""
    try:
        st = os.stat(p)
    except OSError:
        return False
    return not (st.st_mode & 0o022) and st.st_uid in (os.getuid(), 0, owner)


def _code(name):
    """
    The compiled code of one of slurmpool's own modules, cached: compiling the runtime and the codec
    costs an interpreter ~30 ms at every start, more than the rest of its start-up. Python caches it
    in __pycache__ only where it may write there and PYTHONDONTWRITEBYTECODE is unset; this cache is
    slurmpool's own, so it works for a read-only install too and leaves the user's own modules to the
    user's settings. It is keyed by the interpreter's bytecode magic and the source's size and CRC
    (not its time: npm gives every installed file the same one), and named after the install's folder
    in the shared cache, so that two installs or versions never take each other's code.
    """
    import marshal
    from binascii import crc32
    from _frozen_importlib_external import MAGIC_NUMBER

    path = os.path.join(_here, name + ".py")
    with open(path, "rb") as f:
        source = f.read()
    key = b"%s %d %08x\n" % (MAGIC_NUMBER, len(source), crc32(source))
    fname = "%s.%s.%08x.slurmpool" % (name, sys.implementation.cache_tag, crc32(_here.encode("utf-8", "surrogateescape")))
    owner = os.stat(path).st_uid
    for d in _cache_dirs():
        try:
            # Code is run from it: only a folder and file that nobody else could have written.
            if not (_private(d, owner) and _private(os.path.join(d, fname), owner)):
                continue
            with open(os.path.join(d, fname), "rb") as f:
                data = f.read()
            if data.startswith(key):
                return marshal.loads(data[len(key) :])
        except Exception:
            pass
    code = compile(source, path, "exec", dont_inherit=True)
    data = key + marshal.dumps(code)
    for d in _cache_dirs():
        # Host and pid: nodes sharing a file system never write the same temporary file.
        tmp = os.path.join(d, "%s.%s.%d.tmp" % (fname, os.uname().nodename, os.getpid()))
        try:
            os.makedirs(d, mode=0o755 if d.endswith("__pycache__") else 0o700, exist_ok=True)
            if not _private(d, owner):
                continue
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o644)  # readable by the install's other users, whatever the umask
                f.write(data)
            os.replace(tmp, os.path.join(d, fname))  # whole or not at all, whoever else writes it at the same time
            break
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return code


def _load(name):
    """One of slurmpool's own modules, by path, from the cache above."""
    mod = type(sys)(name)
    mod.__file__ = os.path.join(_here, name + ".py")
    mod._own_loader = _load  # the runtime loads the codec with it
    sys.modules[name] = mod
    exec(_code(name), mod.__dict__)
    return mod


if __name__ == "__main__":
    _load("slurmpool_runtime").main()
