"""The published book as a reader meets it, in a real browser.

Debian's headless Chromium (``apt-get install chromium``, see setup.d/20-browser.sh), driven by
Playwright's Python client, opens every page of the table of contents from the built site served on
127.0.0.1 by a ``http.server`` thread, and checks what a reader would see: no console error, no failed
request, nothing fetched from another host (MathJax and the theme's fonts are served by the site itself),
every formula typeset by MathJax, every figure loaded, search working, the exercise notebooks
downloadable and valid, and no solution or hidden test anywhere in the site. Screenshots of some pages
go to ``_build/screenshots/`` for a person to look at.

The book is built once per test run by the ``built_book`` fixture (tests/conftest.py)."""
import functools
import html as html_lib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHAPTER_2 = "chapters/ch02_forward_by_hand"
LOCAL_HOST = "127.0.0.1"
LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                "from checks import")
# Schemes a page may use without asking any host for anything.
LOCAL_SCHEMES = {"data", "blob", "about"}


def toc_pages():
    """Every page of the table of contents, the root first, as paths without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part.get("chapters", [])]
    pages += [c["file"] for c in toc.get("chapters", [])]
    return pages


# ------------------------------------------------------------------------------------------ fixtures

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site and keeps its own log, ``served``: (path, status) of every request, including
    those the browser makes by itself (e.g. /favicon.ico) that a page's events may not show."""
    served = []

    def log_message(self, *args):
        pass

    def log_request(self, code="-", size="-"):
        self.served.append((self.path, int(code) if isinstance(code, int) else code))


@pytest.fixture(scope="module")
def site(built_book):
    """The built HTML served on 127.0.0.1 at a free port: ``(html folder, base URL)``."""
    html, log = built_book
    assert (html / "index.html").exists(), f"the book did not build:\n{log[-3000:]}"
    server = http.server.ThreadingHTTPServer(
        (LOCAL_HOST, 0), functools.partial(_QuietHandler, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield html, f"http://{LOCAL_HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium with a fresh profile. Requests to any host but 127.0.0.1 are aborted (and
    recorded as failures by the pages that make them)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make setup` (setup.d/20-browser.sh installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900},
            accept_downloads=True)
        context.set_default_timeout(60_000)

        def guard(route):
            if _is_local(route.request.url):
                route.continue_()
            else:
                route.abort("blockedbyclient")

        context.route("**/*", guard)
        try:
            yield context
        finally:
            context.close()


def _is_local(url):
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in LOCAL_SCHEMES or (parsed.scheme in {"http", "https"}
                                              and parsed.hostname == LOCAL_HOST)


class Visit:
    """One page opened in the browser, with everything it asked for and everything that went wrong."""

    def __init__(self, context, url):
        self.url = url
        self.requests, self.failed, self.bad_status, self.console_errors = [], [], [], []
        self.page = page = context.new_page()
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and self.bad_status.append(f"{r.url} (HTTP {r.status})"))
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(f"{m.text} at {m.location}"))
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        response = page.goto(url, wait_until="load")
        self.status = response.status if response else None
        # MathJax (where the page has math) typesets after load: wait for it to finish.
        page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)")
        page.evaluate("() => window.MathJax ? MathJax.startup.promise.then(() => true) : true")
        # Every image: load it now (no lazy loading), then wait until each has loaded or failed.
        page.evaluate("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
        page.wait_for_load_state("networkidle")

    def problems(self):
        foreign = [u for u in self.requests if not _is_local(u)]
        return ([f"HTTP {self.status} for the page"] if self.status != 200 else []) + \
            [f"request to another host: {u}" for u in foreign] + \
            [f"failed request: {u}" for u in self.failed] + \
            [f"bad response: {u}" for u in self.bad_status] + \
            [f"console error: {e}" for e in self.console_errors]

    def math_report(self):
        """Formulas of the page: Sphinx's math elements, how many MathJax typeset, TeX errors, and the
        text left outside code that still looks like TeX delimiters."""
        return self.page.evaluate("""() => {
            const math = Array.from(document.querySelectorAll('.math'));
            const body = document.querySelector('main') || document.body;
            const clone = body.cloneNode(true);
            clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
            const text = clone.textContent;
            return {
                math: math.length,
                untypeset: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
                containers: document.querySelectorAll('mjx-container').length,
                errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent.slice(0, 80)),
                dollars: (text.match(/\\$\\$/g) || []).length,
                brackets: (text.match(/\\\\\\[|\\\\\\(|\\\\begin\\{/g) || []).length,
            };
        }""")

    def images(self):
        return self.page.evaluate("""() => Array.from(document.images).map(i => ({
            src: i.currentSrc || i.src, w: i.naturalWidth, h: i.naturalHeight}))""")


@pytest.fixture(scope="module")
def visits(site, browser):
    """Every page of the toc (and the index) opened once; screenshots of the intro, chapter 2, the
    glossary and the bibliography."""
    _, base = site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in toc_pages() + ["genindex"]:
        visit = Visit(browser, base + name + ".html")
        out[name] = visit
        shot = name.split("/")[-1]
        if name in (toc_pages()[0], CHAPTER_2, "glossary", "bibliography"):
            visit.page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"))
        if name == CHAPTER_2:
            visit.page.screenshot(path=str(SCREENSHOTS / f"{shot}-full.png"), full_page=True)
            # the derivation of step t = 0, typeset from the LaTeX that a code cell glued in
            visit.page.evaluate("""() => (document.getElementById('equation-eq-step0')
                                         || document.querySelector('div.math')).scrollIntoView({block: 'center'})""")
            visit.page.screenshot(path=str(SCREENSHOTS / f"{shot}-math.png"))
    yield out
    for visit in out.values():
        visit.page.close()


# ------------------------------------------------------------------------------------------ the tests

def test_every_page_loads_without_errors_and_only_from_this_site(visits):
    problems = [f"{name}: {p}" for name, visit in visits.items() for p in visit.problems()]
    problems += [f"the server answered {code} for {path}" for path, code in _QuietHandler.served
                 if not isinstance(code, int) or code >= 400]
    assert not problems, "\n".join(problems)
    # Sanity: the pages did load their assets from the site (the checks above are not vacuous).
    ch2 = visits[CHAPTER_2].requests
    assert any("/_static/mathjax/tex-mml-chtml.js" in u for u in ch2), ch2
    assert any(re.search(r"/_static/mathjax/output/chtml/fonts/woff-v2/MathJax_\w+-\w+\.woff", u) for u in ch2), \
        "MathJax's fonts were not loaded from the site"
    assert any(u.endswith(".css") or ".css?" in u for u in ch2)


def test_no_page_refers_to_assets_on_another_host(site):
    """What the browser did not happen to request: no stylesheet, script, font, preload or preconnect
    from another host in any page or stylesheet (e.g. Google fonts, a CDN)."""
    html, _ = site
    asset_tag = re.compile(r"<(script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc=[\"']?(https?:)?//", re.I)
    link_tag = re.compile(r"<link\b[^>]*>", re.I)
    found = []
    for path in html.rglob("*.html"):
        text = path.read_text(errors="ignore")
        found += [f"{path.relative_to(html)}: {m.group(0)[:120]}" for m in asset_tag.finditer(text)]
        for m in link_tag.finditer(text):
            tag = m.group(0)
            rel = re.search(r"\brel=[\"']?([\w -]+)", tag)
            if rel and re.search(r"stylesheet|preload|preconnect|dns-prefetch|prefetch|icon|modulepreload|manifest",
                                 rel.group(1)) and re.search(r"\bhref=[\"']?(https?:)?//", tag):
                found.append(f"{path.relative_to(html)}: {tag[:120]}")
    for path in html.rglob("*.css"):
        text = path.read_text(errors="ignore")
        found += [f"{path.relative_to(html)}: {m.group(0)}" for m in
                  re.finditer(r"(url\(\s*[\"']?(https?:)?//[^)]*\)|@import\s+[\"'](https?:)?//[^\"']*)", text)]
    assert not found, "\n".join(found)


def test_every_formula_is_typeset_by_mathjax(visits):
    reports = {name: v.math_report() for name, v in visits.items()}
    ch2 = reports[CHAPTER_2]
    # Chapter 2 is full of display math ($$ ... $$ and the glued derivations of each step).
    assert ch2["math"] >= 10 and ch2["containers"] >= ch2["math"], ch2
    for name, r in reports.items():
        assert not r["untypeset"], f"{name}: formulas left as TeX: {r['untypeset']}"
        assert not r["errors"], f"{name}: MathJax errors: {r['errors']}"
        assert r["dollars"] == 0 and r["brackets"] == 0, f"{name}: raw TeX delimiters left in the text: {r}"


def test_every_figure_loads(visits):
    for name, visit in visits.items():
        for img in visit.images():
            assert img["w"] > 0 and img["h"] > 0, f"{name}: image {img['src']} did not load"
    figures = visits[CHAPTER_2].images()
    assert sum(".png" in i["src"] for i in figures) >= 2, figures


def test_screenshots_were_saved(visits):
    intro = toc_pages()[0].split("/")[-1]
    for shot in (intro, "ch02_forward_by_hand", "ch02_forward_by_hand-math", "glossary", "bibliography"):
        path = SCREENSHOTS / f"{shot}.png"
        assert path.exists() and path.stat().st_size > 10_000, path


def test_glossary_is_bilingual_and_linked(visits):
    page = visits["glossary"].page
    terms = page.evaluate("() => Array.from(document.querySelectorAll('dl.glossary dt')).map(d => d.textContent.trim())")
    for term in ("recurrent neural network", "循环神经网络", "hidden state", "隐藏状态", "梯度消失", "梯度爆炸",
                 "LSTM", "长短期记忆网络", "GRU", "门控循环单元", "遗忘门", "截断的时间反向传播"):
        assert any(t.startswith(term) for t in terms), f"glossary lacks {term!r}"
    # The CJK terms are drawn with a real CJK font (setup.d installs fonts-noto-cjk; TeX Live's Chinese
    # support brings the AR PL fonts too), not as empty boxes: ask the browser which platform fonts
    # rendered the glyphs of the term 隐藏状态, and fontconfig which fonts cover Chinese.
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    dts = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "dl.glossary dt"})["nodeIds"]
    cjk_dt = [n for n in dts if "隐藏状态" in cdp.send("DOM.getOuterHTML", {"nodeId": n})["outerHTML"]]
    assert cjk_dt, "no glossary entry for 隐藏状态"
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": cjk_dt[0]})["fonts"]
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    chinese = {name.strip() for line in listed.splitlines() for name in line.split(",")}
    assert chinese, "fontconfig lists no font that covers Chinese"
    assert any(f["familyName"] in chinese and f["glyphCount"] >= 4 for f in fonts), \
        f"隐藏状态 is not drawn with a CJK font: {fonts}"
    cdp.detach()
    for name in (toc_pages()[0], CHAPTER_2):
        links = visits[name].page.evaluate(
            "() => Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href') || '')")
        assert any("glossary.html#term-" in href for href in links), f"{name} links no glossary term"
        assert any("bibliography.html#" in href for href in links), \
            f"{name} cites nothing"


def _search(browser, base, query):
    visit = Visit(browser, base + "search.html?q=" + urllib.parse.quote_plus(query))
    visit.page.wait_for_function(
        "() => { const s = document.querySelector('.search-summary'); return s && /found|did not match/.test(s.textContent); }")
    visit.page.wait_for_load_state("networkidle")
    hits = visit.page.evaluate("() => Array.from(document.querySelectorAll('ul.search li a')).map(a => a.getAttribute('href'))")
    return visit, hits


def test_search_finds_the_course_terms(site, browser):
    _, base = site
    visit, hits = _search(browser, base, "hidden state")
    assert not visit.problems(), visit.problems()
    assert any(CHAPTER_2 in h for h in hits), f"search for 'hidden state' found {hits}"
    assert any("glossary" in h for h in hits), hits
    visit, hits = _search(browser, base, "LSTM")
    assert hits, "search for 'LSTM' found nothing"
    # Once a chapter on the LSTM is in the book, search must find it.
    for page in toc_pages():
        if "lstm" in page.lower():
            assert any(page in h for h in hits), f"search for 'LSTM' misses {page}: {hits}"
    visit.page.close()


def test_exercise_download_links_give_valid_notebooks(visits, tmp_path):
    downloaded = []
    for name, visit in visits.items():
        if not name.startswith("chapters/"):
            continue
        # every exercise notebook the chapter's source links with {download} is a working link
        source = next(p for p in ROOT.glob(f"{name}.*") if p.suffix in (".md", ".ipynb"))
        wanted = set(re.findall(r"exercises/(ps\d+)/\1\.ipynb", source.read_text()))
        links = visit.page.locator("a.download[href$='.ipynb']")
        names = {Path(urllib.parse.urlsplit(h).path).stem for h in
                 visit.page.evaluate("() => Array.from(document.querySelectorAll('a.download')).map(a => a.href)")}
        assert wanted <= names, f"{name}: download links for {sorted(wanted - names)} missing"
        for i in range(links.count()):
            with visit.page.expect_download() as info:
                links.nth(i).click()
            download = info.value
            assert download.failure() is None, f"{name}: {download.url}: {download.failure()}"
            target = tmp_path / f"{len(downloaded)}-{download.suggested_filename}"
            download.save_as(target)
            text = target.read_text()
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
            assert any(c.cell_type == "code" for c in nb.cells), f"{download.url} has no code cell"
            for marker in LEAK_MARKERS:
                assert marker not in text, f"{download.url} contains {marker!r}"
            downloaded.append(download.url)
    assert any(u.endswith("/ps01.ipynb") for u in downloaded), downloaded


def _solution_texts():
    """What must never be published: each solution block of two or more lines and each hidden-test
    line of the nbgrader sources, whitespace-normalised."""
    blocks, lines = [], []
    for source in sorted((ROOT / "solutions").glob("ps*/*.ipynb")):
        for cell in json.loads(source.read_text())["cells"]:
            text = "".join(cell["source"])
            for body in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", text, re.S):
                code = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]
                if len(code) >= 2:
                    blocks.append(" ".join(" ".join(code).split()))
            for body in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", text, re.S):
                lines += [" ".join(ln.split()) for ln in body.splitlines()
                          if len(ln.strip()) >= 12 and "xmode" not in ln]
    return blocks, lines


def _site_text(path):
    """A published file as the text a reader (or a copy-paste) gets: HTML without its tags."""
    text = path.read_text(errors="ignore")
    if path.suffix == ".html":
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", text))
    elif path.suffix == ".ipynb":
        try:
            text = "\n".join("".join(c.get("source", "")) for c in json.loads(text)["cells"])
        except (ValueError, KeyError):
            pass
    return " ".join(text.split())


def test_no_solution_or_hidden_test_anywhere_in_the_site(site):
    html, _ = site
    blocks, hidden_lines = _solution_texts()
    assert blocks and hidden_lines, "found no solution block or hidden test in solutions/ to look for"
    binary = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".woff", ".woff2", ".ttf", ".eot", ".ico", ".inv"}
    leaks = []
    for path in sorted(html.rglob("*")):
        if not path.is_file() or path.suffix.lower() in binary or path.stat().st_size > 5_000_000:
            continue
        raw = path.read_text(errors="ignore")
        text = _site_text(path)
        rel = path.relative_to(html)
        leaks += [f"{rel}: {m!r}" for m in LEAK_MARKERS if m in raw or m in text]
        leaks += [f"{rel}: solution {b[:60]!r}..." for b in blocks if b in text]
        leaks += [f"{rel}: hidden test {h!r}" for h in hidden_lines if h in text]
    assert not leaks, "\n".join(leaks)


WIDGET_PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# A progress bar

```{code-cell} ipython3
from tqdm.auto import tqdm
for step in tqdm(range(3), desc="steps"):
    pass
```
"""


def test_widget_output_renders_offline(browser, tmp_path):
    """A chapter whose cell shows a tqdm.auto progress bar (an ipywidget, as the authoring guide asks
    for long loops) gets the widget embedder from this site, fonts included, not from a CDN. No chapter
    may show one yet, so a one-page book with the course's _config.yml checks it."""
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    for name in ("_config.yml", "references.bib", "favicon.svg"):
        shutil.copy(ROOT / name, book / name)
    (book / ".vendor").symlink_to(ROOT / ".vendor")
    (book / "tools").symlink_to(ROOT / "tools")  # the local Sphinx extension _config.yml names
    (book / "rnnlib").symlink_to(ROOT / "rnnlib")  # ... which reads the package version there
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/bar\n")
    (book / "intro.md").write_text("# Widgets\n")
    (book / "chapters" / "bar.md").write_text(WIDGET_PAGE)
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(bin_dir / "jupyter-book"), "build", "-W", "-n", "--keep-going", str(book)],
                          cwd=book, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = book / "_build" / "html"
    server = http.server.ThreadingHTTPServer(
        (LOCAL_HOST, 0), functools.partial(_QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        visit = Visit(browser, f"http://{LOCAL_HOST}:{server.server_address[1]}/chapters/bar.html")
        visit.page.wait_for_selector(".widget-hprogress", state="attached")
        visit.page.wait_for_load_state("networkidle")
        assert not visit.problems(), "\n".join(visit.problems())
        text = visit.page.evaluate("() => document.querySelector('.widget-hbox').textContent")
        assert "steps" in text and "100%" in text and "3/3" in text, text
        assert any("/_static/widgets/embed-amd.js" in u for u in visit.requests), visit.requests
        assert any(re.search(r"/_static/widgets/\w+\.woff2?$", u) for u in visit.requests), visit.requests
        visit.page.close()
    finally:
        server.shutdown()
        server.server_close()
