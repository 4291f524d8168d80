"""Where the course is published, and a small Sphinx extension that shows it in the book.

Two settings in ``_config.yml``, filled in once by the instructor (empty: not published):

* ``repository: url:`` (with ``branch:`` and ``path_to_book:``), e.g. ``https://github.com/OWNER/REPO``:
  the course package can be installed from it (``pip install "rnnlib @ git+URL"``), and exercise
  notebooks on GitHub open in Colab;
* ``html: baseurl:``, e.g. ``https://OWNER.github.io/REPO/``: the published book, which also serves the
  course package's wheel (``wheels/rnnlib-VERSION-py3-none-any.whl``, copied there by
  ``.github/workflows/publish.yml``) and a sitemap.

The URL helpers serve ``tools/notebook_setup_cell.py`` (which reads ``_config.yml``) and the extension
(which reads Sphinx's configuration, where Jupyter Book puts the same values). The extension, loaded
through ``sphinx: local_extensions:``,

* follows every download link to an exercise notebook (``exercises/psNN/psNN.ipynb``) with an "open in
  Colab" link when the repository is on GitHub;
* offers each executed chapter as ``.ipynb`` in the page header's download menu (sphinx-book-theme
  does that only when a launch button is configured, and its Colab button would open the chapter's
  MyST source, which Colab cannot read);
* provides MyST substitutions for the Setup page: ``{{ course_install }}`` (the pip line for the
  course package) and ``{{ course_source }}`` (where it comes from, in words);
* lets a book without a base URL build without a sitemap (sphinx-sitemap warns otherwise).
"""
import posixpath
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK_DEFAULT_REPOSITORY = "https://github.com/executablebooks/jupyter-book"
EXERCISE = re.compile(r"(?:^|/)exercises/(ps\d+)/\1\.ipynb$")
NOT_CONFIGURED = "the course's repository URL (your instructor gives it to you)"


def package_version(root=ROOT):
    """The course package's version, read from ``rnnlib/__init__.py`` (the one place it is set)."""
    text = (Path(root) / "rnnlib" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE).group(1)


def _clean(url):
    url = (url or "").strip()
    return "" if url == JUPYTER_BOOK_DEFAULT_REPOSITORY else url.rstrip("/")


def wheel_url(baseurl, version):
    """The wheel on the published site, or ``""`` when no base URL is set."""
    base = _clean(baseurl)
    return f"{base}/wheels/rnnlib-{version}-py3-none-any.whl" if base else ""


def git_requirement(repository_url, branch="main"):
    """``rnnlib @ git+URL@BRANCH``, pip's requirement for the package in the repository, or ``""``."""
    url = _clean(repository_url)
    if not url:
        return ""
    return f"rnnlib @ git+{url}" + (f"@{branch}" if branch else "")


def colab_url(repository_url, branch, path):
    """Colab's URL of the notebook at ``path`` (relative to the repository root), or ``""`` when the
    repository is not on GitHub (Colab opens notebooks from GitHub only)."""
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?", _clean(repository_url))
    if not match:
        return ""
    owner, repo = match.groups()
    return f"https://colab.research.google.com/github/{owner}/{repo}/blob/{branch or 'main'}/{path}"


def install_sources(baseurl, repository_url, branch, version):
    """What pip can install the course package from, best first: the published wheel, the repository."""
    return [s for s in (wheel_url(baseurl, version), git_requirement(repository_url, branch)) if s]


def fill_book_config(repository_url="", baseurl="", branch="", root=ROOT):
    """Write the given addresses into ``_config.yml`` where it leaves them empty (a setting the
    instructor made is kept); only those lines change, comments stay. Returns the settings written."""
    path = Path(root) / "_config.yml"
    text = path.read_text()
    written = {}
    for section, key, value in (("repository", "url", repository_url), ("repository", "branch", branch),
                                ("html", "baseurl", baseurl)):
        pattern = re.compile(rf'(^{section}:\n(?:[ \t]+.*\n|[ \t]*\n)*?[ \t]+{key}:[ \t]*)""', re.MULTILINE)
        if value and pattern.search(text):
            text = pattern.sub(lambda m: m.group(1) + f'"{value}"', text, count=1)
            written[f"{section}.{key}"] = value
    path.write_text(text)
    return written


def read_book_config(root=ROOT):
    """``(baseurl, repository_url, branch, path_to_book)`` from ``_config.yml``."""
    import yaml

    config = yaml.safe_load((Path(root) / "_config.yml").read_text()) or {}
    repository = config.get("repository") or {}
    html = config.get("html") or {}
    return (html.get("baseurl") or "", repository.get("url") or "", repository.get("branch") or "main",
            (repository.get("path_to_book") or "").strip("/"))


# ------------------------------------------------------------------------------- the extension --

def _settings(app):
    theme = app.config.html_theme_options or {}
    return (app.config.html_baseurl or "", theme.get("repository_url", ""),
            theme.get("repository_branch") or "main", (theme.get("path_to_docs") or "").strip("/"))


def _substitutions(app, config):
    baseurl, repository, branch, _ = _settings(app)
    sources = install_sources(baseurl, repository, branch, package_version(app.srcdir))
    if sources:
        spec = sources[0]
        source = "the course's site" if spec.endswith(".whl") else "the course's repository"
    else:
        spec = "rnnlib @ git+REPOSITORY_URL"
        source = NOT_CONFIGURED + ", in place of `REPOSITORY_URL`"
    config.myst_substitutions = {**(config.myst_substitutions or {}),
                                 "course_install": f'```text\npython -m pip install "{spec}"\n```',
                                 "course_source": source}
    if not _clean(baseurl):
        # A local build has no public address: no sitemap, and no warning about it.
        config.suppress_warnings = [*config.suppress_warnings, "sitemap.configuration"]


def _colab_links(app, doctree, docname):
    from docutils import nodes
    from sphinx import addnodes

    _, repository, branch, book_path = _settings(app)
    for node in list(doctree.findall(addnodes.download_reference)):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(docname), node.get("reftarget", "")))
        if not EXERCISE.search(target):
            continue
        url = colab_url(repository, branch, posixpath.join(book_path, target) if book_path else target)
        if url:
            link = nodes.reference("", "open it in Colab", refuri=url, classes=["colab-link"])
            node.parent.insert(node.parent.index(node) + 1, [nodes.Text(" ("), link, nodes.Text(")")])


def _notebook_download(app, pagename, templatename, context, doctree):
    """Copy the executed notebook of a MyST page next to its source, for the header's download menu."""
    if doctree is None or not str(context.get("sourcename", "")).endswith((".md", ".md.txt")):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    app.connect("config-inited", _substitutions)
    app.connect("doctree-resolved", _colab_links)
    # before sphinx-book-theme's header buttons (priority 501), which read ipynb_source
    app.connect("html-page-context", _notebook_download, priority=500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Fill in the addresses that _config.yml leaves empty "
                                     "(used by .github/workflows/publish.yml; a setting already made is kept).")
    parser.add_argument("--repository", default="", help="e.g. https://github.com/OWNER/REPO")
    parser.add_argument("--baseurl", default="", help="e.g. https://OWNER.github.io/REPO/")
    parser.add_argument("--branch", default="")
    parser.add_argument("--root", type=Path, default=ROOT, help="the folder of _config.yml")
    args = parser.parse_args(argv)
    baseurl = args.baseurl.rstrip("/") + "/" if args.baseurl else ""
    written = fill_book_config(args.repository.rstrip("/"), baseurl, args.branch, root=args.root)
    print("_config.yml:", ", ".join(f"{k} = {v}" for k, v in written.items()) or "nothing to fill in")
    settings = read_book_config(args.root)
    print("settings now:", dict(zip(("baseurl", "repository", "branch", "path_to_book"), settings)))


if __name__ == "__main__":
    main()
