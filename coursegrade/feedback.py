"""Feedback pages without a student's scripts (stored XSS).

A student writes markdown cells and makes outputs (``text/html``, ``text/markdown``, SVG,
JavaScript); nbgrader's feedback page (and the formgrader the instructor opens) would render them as
they are, so a ``<script>``, an ``onerror=`` attribute or a ``javascript:`` link would run in whoever
opens the page. :class:`SanitizeFeedback` (in ``Autograde.autograde_preprocessors`` and
``GenerateFeedback.preprocessors``) cleans them with bleach, the way nbconvert's ``SanitizeHTML``
does, with a few more harmless tags allowed (tables, paragraphs, images) and only ``http``,
``https``, ``mailto`` links and ``data:`` images. Outputs of other types than plain text, LaTeX,
JSON, PNG and JPEG are dropped; widget state is dropped.
"""
import re

from bleach import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, clean
from nbconvert.preprocessors.sanitize import SanitizeHTML

TAGS = sorted(set(ALLOWED_TAGS) | {"p", "div", "span", "br", "hr", "pre", "code", "table", "thead", "tbody",
                                    "tr", "th", "td", "h1", "h2", "h3", "h4", "h5", "h6", "img", "sub", "sup",
                                    "em", "strong", "blockquote"})
ATTRIBUTES = {**ALLOWED_ATTRIBUTES, "img": ["src", "alt", "width", "height"], "th": ["colspan", "rowspan"],
              "td": ["colspan", "rowspan"], "*": ["class"]}
PROTOCOLS = ["http", "https", "mailto", "data"]
_SCHEME = re.compile(r"^\s*([a-z][a-z0-9+.-]*):", re.IGNORECASE)


def _clean_markdown_links(text):
    """Neutralise markdown link targets with a scheme other than http(s)/mailto (``javascript:``...)."""
    def fix(m):
        target = m.group(0)[2:].strip().lstrip("<").strip()
        scheme = _SCHEME.match(target)
        if scheme and scheme.group(1).lower() not in ("http", "https", "mailto"):
            return "](#removed-link"
        return m.group(0)
    return re.sub(r"\]\(\s*<?[^)\s]*", fix, text)


class SanitizeFeedback(SanitizeHTML):
    """nbconvert's ``SanitizeHTML`` with the course's allowed tags; also cleans markdown links. Locked
    markdown cells (the instructor's, restored from the gradebook by nbgrader) are left as they are."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.enabled = True  # nbconvert runs a registered preprocessor only when enabled
        self.tags = TAGS
        self.attributes = ATTRIBUTES
        self.strip = True

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        return super().preprocess(nb, resources)

    def sanitize_html_tags(self, html_str):
        if not isinstance(html_str, str):
            html_str = "".join(html_str)
        kwargs = {"tags": self.tags, "attributes": self.attributes, "strip": self.strip,
                  "strip_comments": self.strip_comments, "protocols": PROTOCOLS}
        return _clean_markdown_links(clean(html_str, **kwargs))

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("locked") and not meta.get("solution"):
            return cell, resources  # the instructor's text, restored from the gradebook by nbgrader
        if cell.cell_type == "markdown":
            cell.source = self.sanitize_html_tags(cell.source)
            for name in list(cell.get("attachments", {}) or {}):
                att = cell.attachments[name]
                for mime in list(att):
                    if mime not in ("image/png", "image/jpeg"):
                        del att[mime]
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)
