"""tools/notebook_setup_cell.py on temporary copies of the course: the setup cell goes first among the
code cells, is found again (a second run changes nothing), follows _config.yml, stays a plain cell that
nbgrader's generate_assignment copies to the release, and does nothing where rnnlib is installed or
while nbgrader runs the notebook."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from nbgrader_helpers import nbgrader

sys.path.insert(0, str(ROOT / "tools"))
import course_links  # noqa: E402
import notebook_setup_cell as tool  # noqa: E402

REPO = "https://github.com/example-org/rnn-course"
SITE = "https://example-org.github.io/rnn-course/"


@pytest.fixture
def course(tmp_path):
    """A course copy with ps01 (NumPy) and ps05 (torch) and a configuration that names its addresses."""
    course = tmp_path / "course"
    for ps in ["ps01", "ps05"]:
        shutil.copytree(ROOT / "solutions" / ps, course / "solutions" / ps)
        path = course / "solutions" / ps / f"{ps}.ipynb"  # as before the tool ever ran on it
        nb = nbformat.read(path, as_version=4)
        nb.cells = [c for c in nb.cells if tool.TAG not in c.metadata.get("tags", [])]
        nbformat.write(nb, path)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copy(ROOT / "_config.yml", course)
    (course / "rnnlib").mkdir()
    shutil.copy(ROOT / "rnnlib" / "__init__.py", course / "rnnlib")
    course_links.fill_book_config(REPO, SITE, "main", root=course)
    return course


def setup_cells(nb):
    return [c for c in nb.cells if tool.TAG in c.metadata.get("tags", [])]


def run_tool(course, *args):
    return tool.main(["--root", str(course), *args])


def test_inserts_once_before_the_first_code_cell(course):
    path = course / "solutions" / "ps01" / "ps01.ipynb"
    before = nbformat.read(path, as_version=4)
    assert run_tool(course, "--check") == 1
    assert run_tool(course) == 0
    nb = nbformat.read(path, as_version=4)
    [cell] = setup_cells(nb)
    first_code = next(i for i, c in enumerate(before.cells) if c.cell_type == "code")
    assert nb.cells.index(cell) == first_code and len(nb.cells) == len(before.cells) + 1
    assert "nbgrader" not in cell.metadata  # no points, no solution, not locked
    assert course_links.wheel_url(SITE, course_links.package_version()) in cell.source
    assert f"rnnlib @ git+{REPO}@main" in cell.source
    assert "needs PyTorch" not in cell.source  # ps01 is NumPy only
    torch_cell = setup_cells(nbformat.read(course / "solutions" / "ps05" / "ps05.ipynb", as_version=4))[0]
    assert "needs PyTorch" in torch_cell.source and "download.pytorch.org/whl/cpu" in torch_cell.source
    # the rest of the notebook is untouched, and a second run changes nothing
    assert [c.source for c in nb.cells if c is not cell] == [c.source for c in before.cells]
    text = path.read_text()
    assert run_tool(course) == 0 and path.read_text() == text
    assert run_tool(course, "--check") == 0


def test_follows_the_configuration(course):
    run_tool(course)
    (course / "_config.yml").write_text((course / "_config.yml").read_text().replace(SITE, ""))
    assert run_tool(course, "--check") == 1
    run_tool(course)
    [cell] = setup_cells(nbformat.read(course / "solutions" / "ps01" / "ps01.ipynb", as_version=4))
    assert ".whl" not in cell.source and f"git+{REPO}" in cell.source


def test_generate_assignment_keeps_the_cell(course):
    run_tool(course)
    source_cell = setup_cells(nbformat.read(course / "solutions" / "ps01" / "ps01.ipynb", as_version=4))[0]
    nbgrader(course, "generate_assignment", "ps01", "--force", "--no-db")
    released = nbformat.read(course / "exercises" / "ps01" / "ps01.ipynb", as_version=4)
    [cell] = setup_cells(released)
    assert cell.source == source_cell.source and cell.cell_type == "code"
    assert not cell.metadata.get("nbgrader", {}).get("grade") and not cell.metadata.get("nbgrader", {}).get("solution")


def run_cell(source, env_extra, python=sys.executable, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in {"NBGRADER_EXECUTION", "PYTHONPATH"}}
    env.update(env_extra)
    return subprocess.run([python, "-c", source], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


def test_cell_does_nothing_where_rnnlib_is_installed_or_under_nbgrader(course, tmp_path):
    run_tool(course)
    [cell] = setup_cells(nbformat.read(course / "solutions" / "ps05" / "ps05.ipynb", as_version=4))
    proc = run_cell(cell.source, {})  # the course environment: rnnlib and torch are there
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stdout + proc.stderr
    # `python -I -S`: no site-packages, so neither rnnlib nor torch (nor pip) can be found
    source = cell.source.replace("SOURCES = ", "SOURCES = [str(__import__('pathlib').Path('nowhere.whl'))] or ")

    def bare(**env):
        return subprocess.run([sys.executable, "-I", "-S", "-c", source], capture_output=True, text=True,
                              timeout=120, env={"PATH": os.environ["PATH"], **env}, cwd=tmp_path)

    graded = bare(NBGRADER_EXECUTION="autograde")  # nbgrader validate/autograde: never installs
    assert graded.returncode == 0 and "Installing" not in graded.stdout, graded.stdout + graded.stderr
    assert "needs PyTorch" in graded.stderr
    failed = bare()  # the install fails (no pip here): it says so and points to the Setup page
    assert failed.returncode == 0 and "Installing the course package" in failed.stdout
    assert "The course package is not installed: see the Setup page" in failed.stderr


def test_committed_notebooks_have_the_current_setup_cell():
    """Every committed problem set (source and release) starts with the setup cell that _config.yml
    gives today: run the tool and `make exercises` after changing the addresses."""
    releases = sorted(ROOT.glob("exercises/ps*/ps*.ipynb"))
    assert releases, "no released notebooks"
    assert tool.main(["--check"]) == 0
    assert tool.main(["--check", *map(str, releases)]) == 0
