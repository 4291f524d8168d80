import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK_OUT = ROOT / "_build" / "test-book"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def built_book(worker_id):
    """Build the book once per test run, from a clean output folder, as CI must:
    ``jupyter-book build -W -n --keep-going``. Returns ``(html folder, build log)``.

    Under pytest-xdist several workers may ask for it: a file lock lets the first one build and the
    others reuse that build (the run id tells a build of this run from a stale one)."""
    from filelock import FileLock

    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", f"single-{os.getpid()}")
    BOOK_OUT.parent.mkdir(exist_ok=True)
    marker = BOOK_OUT / "built-for-run"
    log_file = BOOK_OUT / "build.log"
    with FileLock(str(BOOK_OUT.parent / "test-book.lock")):
        if not (marker.exists() and marker.read_text() == run_id):
            shutil.rmtree(BOOK_OUT, ignore_errors=True)
            BOOK_OUT.mkdir(parents=True)
            bin_dir = Path(sys.executable).parent
            env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
            proc = subprocess.run([str(bin_dir / "jupyter-book"), "build", "-W", "-n", "--keep-going",
                                   "--path-output", str(BOOK_OUT), str(ROOT)],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
            log_file.write_text(f"exit code {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
            marker.write_text(run_id)
    return BOOK_OUT / "_build" / "html", log_file.read_text()
