"""Entry point sluice launches for python3.x functions: `<python3> bootstrap.py`, cwd = code dir.

The runtime itself lives in sluice_lambda_runtime/bootstrap.py and is imported (not run as a
script) so that its compiled byte code is cached between cold starts.
"""
import sys

_dont_write = sys.dont_write_bytecode
sys.dont_write_bytecode = False  # our own cache only; restored before any user code runs
sys.path.insert(0, __file__.rpartition("/")[0] or ".")
from sluice_lambda_runtime import bootstrap as _runtime  # noqa: E402  (fixes sys.path itself)

sys.dont_write_bytecode = _dont_write
_runtime.main()
