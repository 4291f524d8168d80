"""The student's path (README "For students", the book's Setup page), outside the course folder: a
fresh venv (no system site-packages), the course package alone from its wheel (no extras: NumPy,
matplotlib, tqdm and vega_datasets come from the package index), installed by the notebooks' own setup
cell; then every released notebook with its answers filled in from the solution runs there.

ps01-ps04 (chapters 2-5) run without torch (`import torch` fails in that venv). Later sets need torch: it is
added to the same venv only where pip can install it without a download (here, a local CPU wheel);
elsewhere that test is skipped, since PyPI's Linux build is a 2.7 GB download."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from nbgrader_helpers import answer_cells, solution_answers

sys.path.insert(0, str(ROOT / "tools"))
import notebook_setup_cell  # noqa: E402

PART_ONE = ["ps01", "ps02", "ps03", "ps04"]  # chapters 2-5: NumPy only
PART_TWO = sorted(p.name for p in (ROOT / "exercises").glob("ps*") if p.name not in PART_ONE)
# Executes a notebook in its own folder with the venv's own kernel (ipykernel's python3 is the venv).
RUNNER = """
import sys, nbclient, nbformat
from pathlib import Path
path = Path(sys.argv[1])
nb = nbformat.read(path, as_version=4)
nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                        resources={"metadata": {"path": str(path.parent)}}).execute()
nbformat.write(nb, path)
"""


class Student:
    def __init__(self, base):
        self.base = base
        self.venv = base / "venv"
        self.bin = self.venv / ("Scripts" if os.name == "nt" else "bin")
        self.python = self.bin / "python"
        self.work = base / "work"  # the student's own folder, far from the course
        self.work.mkdir()
        self.env = {k: v for k, v in os.environ.items()
                    if k not in {"PYTHONPATH", "VIRTUAL_ENV", "NBGRADER_EXECUTION", "PYTHONHOME"}}
        self.env.update(PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", MPLBACKEND="Agg",
                        JUPYTER_DATA_DIR=str(base / "jupyter-data"), JUPYTER_CONFIG_DIR=str(base / "jupyter"),
                        IPYTHONDIR=str(base / "ipython"), OMP_NUM_THREADS="1")

    def run(self, *args, check=True, timeout=600):
        proc = subprocess.run([str(self.python), *args], cwd=self.work, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def pip(self, *args, **kw):
        return self.run("-m", "pip", "install", "--disable-pip-version-check", *args, **kw)

    def answered(self, ps):
        """The released notebook of ``ps`` with the solution's answers, copied into the work folder."""
        nb = nbformat.read(ROOT / "exercises" / ps / f"{ps}.ipynb", as_version=4)
        cells = answer_cells(nb)
        for gid, source in solution_answers(ps).items():
            cells[gid].source = source
        path = self.work / ps / f"{ps}.ipynb"
        path.parent.mkdir()
        nbformat.write(nb, path)
        return path

    def run_notebook(self, ps):
        start = time.perf_counter()
        proc = self.run("-c", RUNNER, str(self.answered(ps)), check=False)
        assert proc.returncode == 0, f"{ps} fails in the student's venv:\n{proc.stderr[-5000:]}"
        return time.perf_counter() - start


def build_wheel(out):
    """The student wheel, built from a copy of what it is made of (no build/ left in the course)."""
    src = out / "src"
    src.mkdir()
    for name in ["pyproject.toml", "README.md"]:
        shutil.copy(ROOT / name, src)
    shutil.copytree(ROOT / "rnnlib", src / "rnnlib", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=300)
    [wheel] = out.glob("rnnlib-*.whl")
    return wheel


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    base = tmp_path_factory.mktemp("student")
    wheel = build_wheel(base)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    s = Student(base)
    # The package goes in as a notebook's setup cell puts it in (Colab, a fresh environment), from the
    # wheel the book publishes; a second run of the cell finds it and does nothing.
    cell = notebook_setup_cell.setup_source(needs_torch=False)
    cell = cell.replace("SOURCES = [", f"SOURCES = [{str(wheel)!r}] or [", 1)
    proc = s.run("-c", cell)
    assert "Installed." in proc.stdout, proc.stdout + proc.stderr
    assert s.run("-c", cell).stdout == ""
    s.install_seconds = time.perf_counter() - start
    # what a student adds to open notebooks: Jupyter (here its kernel and client, not the whole JupyterLab)
    s.pip("ipykernel", "nbclient", "nbformat")
    return s


def test_package_alone_has_no_torch_and_no_grading_side(student):
    freeze = student.run("-m", "pip", "list", "--format=freeze").stdout
    names = {line.split("==")[0].lower().replace("_", "-") for line in freeze.split()}
    assert {"rnnlib", "numpy", "matplotlib", "tqdm", "vega-datasets"} <= names
    assert "torch" not in names and "nbgrader" not in names and "jupyter-book" not in names
    assert student.run("-c", "import torch", check=False).returncode != 0
    # every NumPy module of rnnlib imports without torch; rnnlib.torch says what is missing
    modules = sorted(p.stem for p in (ROOT / "rnnlib").glob("*.py") if p.stem != "__init__")
    student.run("-c", "import importlib, sys\n"
                      f"for m in {modules!r}: importlib.import_module('rnnlib.' + m)\n"
                      "assert 'torch' not in sys.modules, 'a NumPy module imported torch'")
    err = student.run("-c", "import rnnlib.torch", check=False).stderr
    assert "ModuleNotFoundError: No module named 'torch'" in err
    # the hidden-test checks and the class grader are not in the student's package
    for name in ["checks", "coursegrade"]:
        assert student.run("-c", f"import {name}", check=False).returncode != 0, name
    # the weather data of chapter 5 ships with vega_datasets: nothing is downloaded
    student.run("-c", "from rnnlib import data; assert len(data.seattle_weather()['temp_max']) == 1461")


@pytest.mark.parametrize("ps", PART_ONE)
def test_part_one_notebook_runs_with_numpy_only(student, ps):
    student.run_notebook(ps)
    assert student.run("-c", "import torch", check=False).returncode != 0


def test_part_two_notebooks_run_with_torch_added(student):
    import torch

    version = torch.__version__
    offline = student.pip("--no-index", "--no-deps", f"torch=={version}", check=False)
    if offline.returncode != 0:
        pytest.skip(f"torch=={version} is not installable here without a download (PyPI's Linux build is "
                    "about 2.7 GB): those sets are run by the course's own tests instead")
    student.pip(f"torch=={version}")  # its dependencies (sympy, networkx, ...)
    for ps in PART_TWO:
        student.run_notebook(ps)
