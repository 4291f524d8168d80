"""The book builds from a clean folder with warnings as errors, shows executed outputs, and publishes
no solution or hidden test."""
import re

import yaml

from conftest import ROOT


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_book_builds_without_warnings(built_book):
    html, log = built_book
    assert log.startswith("exit code 0"), log[-5000:]
    warnings = [line for line in log.splitlines() if "WARNING" in line and "Kernel is running over TCP" not in line]
    assert not warnings, "\n".join(warnings)
    for page in ["intro"] + toc_files():
        assert (html / f"{page}.html").exists(), page


def test_every_chapter_is_an_executable_myst_notebook():
    for page in [p for p in toc_files() if p.startswith("chapters/")]:  # not the glossary, bibliography
        text = (ROOT / f"{page}.md").read_text()
        assert re.search(r"jupytext:\s+text_representation:\s+extension: \.md\s+format_name: myst", text), page
        assert "```{code-cell}" in text, f"{page} has no code cell"


def test_chapter_2_shows_computed_numbers_and_figures(built_book):
    html, _ = built_book
    page = (html / "chapters" / "ch02_forward_by_hand.html").read_text()
    for number in ["0.537", "0.462", "0.860", "0.884", "1.56", "2.73"]:
        assert number in page, number
    assert "rnnlib states" in page and "torch states" in page
    assert len(re.findall(r'<img [^>]*src="[^"]*\.png"', page)) >= 2
    assert "ps01.ipynb" in page and (html / "_downloads").exists()


def test_no_solution_or_hidden_test_is_published(built_book):
    html, _ = built_book
    leaks = ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "from checks import")
    for path in html.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".ipynb", ".txt", ".js", ".md"}:
            text = path.read_text(errors="ignore")
            for leak in leaks:
                assert leak not in text, f"{leak!r} published in {path.relative_to(html)}"
    assert not (html / "solutions").exists()
    published = [str(p.relative_to(html)) for p in html.rglob("*")]
    assert not [p for p in published if ".venv" in p or "site-packages" in p or p.startswith("solutions")]


def test_setup_page_is_linked_from_the_intro_and_every_exercises_section():
    assert toc_files()[0] == "chapters/setup"
    assert "{doc}`chapters/setup`" in (ROOT / "intro.md").read_text()
    for page in [p for p in toc_files() if p.startswith("chapters/ch")]:
        text = (ROOT / f"{page}.md").read_text()
        exercises = text.split("\n## Exercises\n", 1)[1].split("\n## ", 1)[0]
        assert "{doc}`setup`" in exercises, page
