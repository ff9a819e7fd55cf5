# slurmpool's Python worker: one long-lived interpreter per worker slot, started by the node's agent.
# This file only checks the interpreter's version, in syntax every Python can parse, so that an old
# interpreter gets a clear message instead of a SyntaxError from the runtime; then it runs the runtime
# (slurmpool_runtime.py, beside it), which speaks to the agent over the pipes it was started with.
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
import importlib.util

_spec = importlib.util.spec_from_file_location("slurmpool_runtime", os.path.join(_here, "slurmpool_runtime.py"))
_runtime = importlib.util.module_from_spec(_spec)
sys.modules["slurmpool_runtime"] = _runtime
_spec.loader.exec_module(_runtime)
_runtime.main()
