"""Code that the book shows keeps lines <= 88 characters: the page's code column cuts longer ones
off behind a scroll bar. A code cell is shown unless it is tagged `remove-input` or `remove-cell`
(`hide-input`, `hide-cell` and `hide-output` cells are shown on a click, so they count)."""
import textwrap

import yaml

from conftest import ROOT

MAX_WIDTH = 88
HIDDEN_TAGS = {"remove-input", "remove-cell"}


def _tags(options):
    """The `tags` of a cell's options, given as a YAML mapping (`---` block) or a value."""
    tags = (options.get("tags") or []) if isinstance(options, dict) else []
    return {tags} if isinstance(tags, str) else set(tags)


def shown_code_lines(text):
    """Lines of the MyST code cells in `text` that the book shows.

    Inputs:
    - text: a MyST markdown notebook, as a string

    Returns a list of (line number, starting at 1, line) for every line of code in a
    `{code-cell}` that is not tagged remove-input or remove-cell.
    """
    lines = text.split("\n")
    shown = []
    i = 0
    while i < len(lines):
        opening = lines[i].lstrip()
        if not opening.startswith("```") or "{code-cell}" not in opening:
            i += 1
            continue
        fence = opening[: len(opening) - len(opening.lstrip("`"))]
        j, options = i + 1, {}
        if j < len(lines) and lines[j].strip() == "---":  # a YAML block of options
            end = lines.index("---", j + 1)
            options = yaml.safe_load("\n".join(lines[j + 1 : end])) or {}
            j = end + 1
        while j < len(lines) and lines[j].startswith(":"):  # `:key: value` options
            key, _, value = lines[j][1:].partition(":")
            options[key.strip()] = yaml.safe_load(value) if value.strip() else None
            j += 1
        hidden = bool(_tags(options) & HIDDEN_TAGS)
        k = j
        while k < len(lines) and not lines[k].strip() == fence:
            if not hidden:
                shown.append((k + 1, lines[k]))
            k += 1
        i = k + 1
    return shown


def long_lines(text, width=MAX_WIDTH):
    return [(n, len(line)) for n, line in shown_code_lines(text) if len(line) > width]


def test_parser_tells_shown_from_hidden_cells():
    long = "x = " + "1 + " * 30 + "1"
    text = textwrap.dedent(
        f"""\
        # A page

        ```{{code-cell}} ipython3
        :tags: [remove-cell]
        {long}
        ```

        ```{{code-cell}} ipython3
        ---
        tags: [remove-input]
        ---
        {long}
        ```

        ```{{code-cell}} ipython3
        :tags: [hide-input]
        {long}
        ```

        ```{{code-cell}} ipython3
        ---
        tags:
        - hide-output
        ---
        short = 1
        {long}
        ```

        ```python
        {long}
        ```
        """
    )
    assert len(long) > MAX_WIDTH
    assert [n for n, _ in shown_code_lines(text)] == [17, 25, 26]
    assert long_lines(text) == [(17, len(long)), (26, len(long))]


def test_shown_code_lines_fit_the_code_column():
    chapters = sorted((ROOT / "chapters").glob("*.md"))
    assert len(chapters) >= 12
    too_long = [
        f"{path.name}:{n} ({width} characters)"
        for path in chapters
        for n, width in long_lines(path.read_text())
    ]
    assert not too_long, "shown code lines over 88 characters:\n" + "\n".join(too_long)
