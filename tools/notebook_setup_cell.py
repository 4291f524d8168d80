"""Insert or update the setup cell at the top of problem-set notebooks, so that a downloaded notebook
runs where it is opened (Colab included).

The cell installs the course package ``rnnlib`` when it is missing, from the addresses set in
``_config.yml`` (the published wheel, then the repository: see tools/course_links.py). It does nothing
where ``rnnlib`` is importable (the course environment, a student's environment) and whenever nbgrader
runs the notebook (``NBGRADER_EXECUTION`` is set by ``validate`` and ``autograde``: grading never
installs anything). It is a plain code cell, not an nbgrader cell: ``generate_assignment`` copies it to
the release as it is, and it carries no points. It is found again by its tag, ``course-setup``, so
running this tool twice changes nothing.

    python tools/notebook_setup_cell.py                  # solutions/ps*/ps*.ipynb, then
    nbgrader generate_assignment psNN --force --no-db    # (or `make exercises`) for the releases
    python tools/notebook_setup_cell.py --check          # exit 1 if a notebook is not up to date
"""
import argparse
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from course_links import ROOT, install_sources, package_version, read_book_config  # noqa: E402

TAG = "course-setup"
TORCH_IMPORT = re.compile(r"^\s*(import torch|from torch[ .])", re.MULTILINE)

TEMPLATE = '''\
# Setup: installs the course package `rnnlib` where it is missing (Colab, a new environment).
# Where it is installed already, this cell does nothing. The book's Setup page:
# {setup_page}
import importlib.util, os, subprocess, sys

SOURCES = [  # where pip finds the course package; the first that works is used
{sources}]
if importlib.util.find_spec("rnnlib") is None and "NBGRADER_EXECUTION" not in os.environ:
    for source in SOURCES:
        print("Installing the course package (about 50 kB; pip adds NumPy, matplotlib, tqdm")
        print("and vega_datasets where they are missing) from", source)
        pip = subprocess.run([sys.executable, "-m", "pip", "install", source],
                             capture_output=True, text=True)
        if pip.returncode == 0:
            importlib.invalidate_caches()
            print("Installed.")
            break
        print(pip.stdout[-2000:], pip.stderr[-2000:])
    else:
        print("The course package is not installed: see the Setup page of the book.",
              file=sys.stderr)
'''

TORCH_CHECK = '''\
if importlib.util.find_spec("torch") is None:
    print("This problem set needs PyTorch: python -m pip install torch (on Linux, the CPU-only build:"
          " add --index-url https://download.pytorch.org/whl/cpu).", file=sys.stderr)
'''


def setup_source(needs_torch, root=ROOT):
    baseurl, repository, branch, _ = read_book_config(root)
    sources = install_sources(baseurl, repository, branch, package_version(root))
    base = baseurl.strip().rstrip("/")
    setup_page = f"{base}/chapters/setup.html" if base else "chapters/setup"
    listed = "".join(f"    {source!r},\n" for source in sources)
    return TEMPLATE.format(sources=listed, setup_page=setup_page) + (TORCH_CHECK if needs_torch else "")


def with_setup_cell(nb, root=ROOT):
    """``(notebook, changed)``: ``nb`` with its setup cell inserted (before the first code cell) or
    brought up to date."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and TAG not in c.metadata.get("tags", []))
    source = setup_source(bool(TORCH_IMPORT.search(code)), root)
    existing = [i for i, c in enumerate(nb.cells) if TAG in c.metadata.get("tags", [])]
    if existing:
        cell = nb.cells[existing[0]]
        if cell.source == source and cell.cell_type == "code" and len(existing) == 1:
            return nb, False
        cell.cell_type, cell.source = "code", source
        for i in reversed(existing[1:]):
            del nb.cells[i]
        return nb, True
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [TAG]})
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, cell)
    return nb, True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to update (default: solutions/ps*/ps*.ipynb)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook would change")
    parser.add_argument("--root", type=Path, default=ROOT, help="the course root (its _config.yml, rnnlib/)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(args.root.glob("solutions/ps*/ps*.ipynb"))
    stale = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nb, changed = with_setup_cell(nb, args.root)
        if changed:
            stale.append(path)
            if not args.check:
                nbformat.write(nb, path)
        print(f"{path}: {'needs its setup cell' if args.check and changed else 'updated' if changed else 'up to date'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
