"""Publishing the book: the GitHub Pages workflow is a valid workflow (checked against the workflow
schema, since it cannot run here), and a book whose _config.yml names its repository and site shows
Colab links for the exercise notebooks, offers chapters as .ipynb, writes a sitemap, and tells students
where the course package comes from (tools/course_links.py)."""
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

BIN = Path(sys.executable).parent
WORKFLOW = ROOT / ".github" / "workflows" / "publish.yml"
REPO = "https://github.com/example-org/rnn-course"
SITE = "https://example-org.github.io/rnn-course/"

sys.path.insert(0, str(ROOT / "tools"))
import course_links  # noqa: E402


def test_publish_workflow_is_a_valid_github_workflow():
    proc = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_publish_workflow_builds_book_and_wheel_and_deploys_them():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = [s for job in workflow["jobs"].values() for s in job.get("steps", [])]
    runs = "\n".join(s.get("run", "") for s in steps)
    uses = [s.get("uses", "") for s in steps]
    # the book as CI builds it (clean, warnings as errors), the wheel copied into the site
    assert "make book" in runs or "jupyter-book build -W -n --keep-going" in runs
    assert re.search(r"pip wheel .*--no-deps .*-w dist|python -m build", runs)
    assert re.search(r"cp dist/\*\.whl _build/html/wheels/", runs)
    assert "make pdf" in runs and "cp _build/latex/book.pdf _build/html/book.pdf" in runs
    # GitHub Pages deployment of _build/html, with the rights that it needs
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    # the addresses come from GitHub where _config.yml leaves them empty, before the book is built,
    # and the released notebooks' setup cells name them
    order = [runs.index(part) for part in ("tools/course_links.py", "tools/notebook_setup_cell.py exercises/",
                                           "make book")]
    assert order == sorted(order)
    assert "--baseurl \"${{ steps.pages.outputs.base_url }}/\"" in runs
    assert "--repository \"${{ github.server_url }}/${{ github.repository }}\"" in runs
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cpu" in runs  # never PyPI's 2.7 GB CUDA build


def test_links_from_settings():
    assert course_links.colab_url(REPO, "main", "exercises/ps01/ps01.ipynb") == (
        "https://colab.research.google.com/github/example-org/rnn-course/blob/main/exercises/ps01/ps01.ipynb")
    assert course_links.colab_url("https://gitlab.com/a/b", "main", "x.ipynb") == ""
    assert course_links.colab_url("", "main", "x.ipynb") == ""
    # Jupyter Book's own default repository is no setting
    assert course_links.git_requirement(course_links.JUPYTER_BOOK_DEFAULT_REPOSITORY) == ""
    assert course_links.git_requirement(REPO + "/", "main") == f"rnnlib @ git+{REPO}@main"
    assert course_links.wheel_url(SITE, "0.1.0") == (
        "https://example-org.github.io/rnn-course/wheels/rnnlib-0.1.0-py3-none-any.whl")
    assert course_links.install_sources("", "", "main", "0.1.0") == []
    # the shipped configuration names no address: an instructor fills it in
    baseurl, repository, branch, _ = course_links.read_book_config()
    assert (baseurl, repository, branch) == ("", "", "main")


def mini_book(folder, repository, baseurl, *options):
    """A small book with the course's configuration and extension: the intro, the Setup page, a
    chapter whose Exercises link ps01's notebook, the glossary (English and Chinese), the bibliography."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["repository"]["url"] = repository
    config["html"]["baseurl"] = baseurl
    config["execute"]["execute_notebooks"] = "force"
    (folder / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    (folder / "_toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "intro",
        "parts": [{"caption": "Course", "chapters": [{"file": "chapters/setup"}, {"file": "chapters/ch02"},
                                                {"file": "glossary"}, {"file": "bibliography"}]}]}))
    (folder / "intro.md").write_text("# A small book\n\nSee {doc}`chapters/setup`.\n")
    (folder / "chapters").mkdir()
    shutil.copy(ROOT / "chapters" / "setup.md", folder / "chapters")
    header = (ROOT / "chapters" / "setup.md").read_text().split("---\n")[1]
    (folder / "chapters" / "ch02.md").write_text(
        f"---\n{header}---\n\n# Chapter\n\n```{{code-cell}} ipython3\nprint(6 * 7)\n```\n\n## Exercises\n\n"
        "* Download the notebook: {download}`ps01.ipynb <../exercises/ps01/ps01.ipynb>`.\n")
    for name in ["references.bib", "favicon.svg", "glossary.md", "bibliography.md"]:
        shutil.copy(ROOT / name, folder)
    for name in ["tools", ".vendor"]:
        os.symlink(ROOT / name, folder / name)
    (folder / "rnnlib").mkdir()
    shutil.copy(ROOT / "rnnlib" / "__init__.py", folder / "rnnlib")
    (folder / "exercises" / "ps01").mkdir(parents=True)
    shutil.copy(ROOT / "exercises" / "ps01" / "ps01.ipynb", folder / "exercises" / "ps01")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(BIN / "jupyter-book"), "build", "-W", "-n", "--keep-going", *options, str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    return proc, folder / "_build" / "html"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    proc, html = mini_book(tmp_path_factory.mktemp("published"), REPO, SITE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line and "Kernel is running over TCP" not in line]
    assert not warnings, "\n".join(warnings)
    return html


def test_exercise_links_open_in_colab(published):
    page = (published / "chapters" / "ch02.html").read_text()
    assert ("https://colab.research.google.com/github/example-org/rnn-course/blob/main/"
            "exercises/ps01/ps01.ipynb") in page
    assert "_downloads" in page and "ps01.ipynb" in page


def test_chapters_download_as_notebooks(published):
    page = (published / "chapters" / "ch02.html").read_text()
    assert "_sources/chapters/ch02.ipynb" in page
    notebook = published / "_sources" / "chapters" / "ch02.ipynb"
    assert notebook.is_file() and '"42' in notebook.read_text()  # the executed output
    # the plain (non-notebook) intro offers its source only
    assert not (published / "_sources" / "intro.ipynb").exists()


def test_sitemap_lists_every_page_at_the_site(published):
    sitemap = (published / "sitemap.xml").read_text()
    locs = set(re.findall(r"<loc>([^<]+)</loc>", sitemap))
    assert {SITE + "intro.html", SITE + "chapters/setup.html", SITE + "chapters/ch02.html"} <= locs
    assert not [loc for loc in locs if "search.html" in loc or "genindex.html" in loc]


def test_setup_page_names_the_course_package_source(published):
    page = html.unescape(re.sub(r"<[^>]+>", "", (published / "chapters" / "setup.html").read_text()))
    wheel = course_links.wheel_url(SITE, course_links.package_version())
    assert f'python -m pip install "{wheel}"' in page and "from\nthe course’s site" in page
    assert "download.pytorch.org/whl/cpu" in page and "nbgrader validate" in page


def test_unpublished_book_names_no_address(tmp_path):
    """As shipped (no addresses): no Colab link, no sitemap, no warning; the Setup page says where the
    address comes from."""
    proc, html_dir = mini_book(tmp_path, "", "")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert not [line for line in log.splitlines() if "WARNING" in line and "over TCP" not in line], log[-3000:]
    assert "colab.research.google.com" not in (html_dir / "chapters" / "ch02.html").read_text()
    assert not (html_dir / "sitemap.xml").exists()
    page = html.unescape(re.sub(r"<[^>]+>", "", (html_dir / "chapters" / "setup.html").read_text()))
    assert 'python -m pip install "rnnlib @ git+REPOSITORY_URL"' in page
    assert "your instructor gives it to you" in page


@pytest.mark.skipif(shutil.which("xelatex") is None, reason="no TeX Live: run `make setup` as root (setup.d/50-pdf.sh)")
def test_pdf_of_a_small_book(tmp_path):
    """The PDF builder with the course's LaTeX settings, on the Setup page, a chapter and the bilingual
    glossary: xelatex finds its fonts, and the Chinese terms are typeset (no missing character)."""
    proc, _ = mini_book(tmp_path, "", "", "--builder", "pdflatex")
    latex = tmp_path / "_build" / "latex"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (latex / "book.pdf").stat().st_size > 50_000
    log = (latex / "book.log").read_text(errors="replace")
    assert "Missing character" not in log and "隐藏状态" in (latex / "book.tex").read_text()
