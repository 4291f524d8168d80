"""rnnlib's NumPy modules work where torch is not installed, and never import it themselves.

Each test runs a fresh interpreter: in this one, other tests have imported torch already."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every module of the package except the torch subpackage (rnnlib.torch imports torch on purpose).
NUMPY_MODULES = sorted(["rnnlib"] + [f"rnnlib.{p.stem}" for p in (ROOT / "rnnlib").glob("*.py")
                                     if p.stem != "__init__"])
BLOCK_TORCH = '''
import sys

class NoTorch:
    """A meta-path finder that makes torch unimportable, as if it were not installed."""
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")

sys.meta_path.insert(0, NoTorch())
'''


def python(code):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_blocker_blocks_torch():
    """Without this, the tests below could pass with torch importable."""
    proc = python(BLOCK_TORCH + "import torch\n")
    assert proc.returncode != 0 and "blocked by the test" in proc.stderr


def test_sequence_and_fast_work_without_torch():
    proc = python(BLOCK_TORCH + '''
import numpy as np
import rnnlib.sequence, rnnlib.fast
from rnnlib import cells
p = cells.init_params(3, 4, 0, gates=4)
x = np.random.default_rng(0).standard_normal((2, 5, 3))
hs, _ = rnnlib.sequence.lstm_forward(x, None, None, **p)
hs_fast, _ = rnnlib.fast.lstm_forward(x, None, None, **p)
assert np.allclose(hs, hs_fast) and hs.shape == (2, 5, 4)
print("ok")
''')
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("blocked", [False, True], ids=["torch installed", "torch blocked"])
def test_numpy_modules_never_import_torch(blocked):
    assert {"rnnlib.cells", "rnnlib.sequence", "rnnlib.fast", "rnnlib.data"} <= set(NUMPY_MODULES)
    proc = python((BLOCK_TORCH if blocked else "import sys\n") + f'''
import importlib
for name in {NUMPY_MODULES!r}:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("torch modules loaded:", loaded)
assert not loaded
''')
    assert proc.returncode == 0, proc.stdout + proc.stderr
