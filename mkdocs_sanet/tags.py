"""The tag syntax: `<% name key="value" ... %>` in a Markdown page.

Tags inside fenced code, indented code, inline code and HTML comments stay literal text (a
comment's tags do nothing at all), so a page can show the syntax. The scanner knows the
containers whose content is indented (admonitions, `??? details`, content tabs, list items,
footnotes, definitions): their indentation is not code; and blockquotes, whose `>` it keeps.
Each tag found is replaced by a placeholder that Markdown leaves alone: a block tag by a word
in a paragraph of its own, inside the container it was written in; an inline tag by an empty
`<span>`, which Markdown stashes as raw HTML and the table of contents strips from titles and
anchor ids. Placeholders carry a token drawn at random when the plugin is loaded, so that no
author's text can read like one. The plugin swaps the placeholders for HTML once the page is
rendered, in one pass. Scanning and swapping take time linear in the page's length.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Callable

from .config import max_size_value

ATTRIBUTE = re.compile(r"""\s*(?P<key>[A-Za-z_][\w-]*)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""")
NAME = re.compile(r"\s*(?P<name>[A-Za-z_]\w*)")
BARE = re.compile(r"\s*(?P<word>[\w.:-]+)(?=\s|$)")
FENCE = re.compile(r"(?P<fence>`{3,}|~{3,})")
# Lines whose content continues indented by 4: an admonition, a details block, a content tab, a
# list item, a footnote, a definition (of a definition list).
CONTAINER = re.compile(r"""(?:!!!|\?\?\?\+?)\s*[\w-]|===[!+]?\s+["']|(?:[*+-]|\d+[.)])(?:\s|$)"""
                       r"""|\[\^[^\]\s]+\]:|:[ ]{1,3}\S""")
# The marker that opens a list item, a footnote or a definition, with the spaces after it: a block
# tag right after one is the first thing in that item (`- <% sanet_demo %>`).
OPENER = re.compile(r"[ ]*(?:[*+-]|\d+[.)]|\[\^[^\]\s]+\]:|:)[ ]+")
# A blockquote's markers at the start of a line (Markdown's: up to 3 spaces before each '>').
QUOTE = re.compile(r"(?:[ ]{0,3}>[ ]?)+")
# Markers of a blockquote inside a container's content (`    > ` in a list item).
NESTED_QUOTE = re.compile(r"(?P<quote>[ ]*>(?:[ ]?>)*)[ ]*")
BACKTICKS = re.compile(r"`+")

# Letters and digits only, so that no Markdown extension touches it; drawn once per process.
TOKEN = secrets.token_hex(6)
BLOCK_PLACEHOLDER = f"SANET{TOKEN}T{{}}X"
# An inline tag in a heading: raw HTML, which the table of contents strips from the heading's
# title and anchor id. Elsewhere a word, which costs Markdown nothing (a <span> per citation made
# Markdown's HTML parsing most of the build's time on a page with many).
INLINE_PLACEHOLDER = f'<span data-sanet-tag="{TOKEN}-{{}}"></span>'
WORD_PLACEHOLDER = f"SANET{TOKEN}C{{}}X"
SETEXT = re.compile(r"[ ]{0,3}(?:=+|-+)[ ]*")
# Every placeholder in rendered HTML: a block placeholder takes the paragraph around it; in the last
# paragraph of a footnote it shares that paragraph with the footnote's links back, which stay.
PLACEHOLDERS = re.compile(
    rf'<p>\s*SANET{TOKEN}T(?P<p>\d+)X\s*</p>'
    rf'|<p>\s*SANET{TOKEN}T(?P<fn>\d+)X(?:\s|&#160;|&nbsp;|\xa0)*'
    rf'(?P<backref><a [^<>]*class="footnote-backref"[^\n]*?)</p>'
    rf'|SANET{TOKEN}[TC](?P<word>\d+)X'
    rf'|<span data-sanet-tag="{TOKEN}-(?P<span>\d+)"></span>')
HTML_ID = re.compile(r"""\sid=["']([^"']*)["']""")
SHOWN = 80  # characters of a tag's body that an error message quotes


class TagError(ValueError):
    """A malformed tag, an unknown name or attribute, or a value of the wrong type."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class Tag:
    name: str
    attributes: dict
    line: int
    placeholder: str
    block: bool  # alone on its line: rendered as a block, not inside a paragraph
    index: int = 0  # the number in its placeholder
    default_id: bool = False  # the demo's id was chosen by settle_ids, not by the author


@dataclass
class TagSpec:
    """What a tag accepts: attribute name -> converter (raises ValueError with a reason)."""

    attributes: dict[str, Callable[[str], object]] = field(default_factory=dict)
    block: bool = True  # must stand alone on its line
    positional: str | None = None  # an attribute that may be given as a bare word: <% cite key %>
    required: tuple[str, ...] = ()


def _scan(lines: list[str]) -> tuple[set[int], list[int], list[str]]:
    """Indexes of lines inside fenced or indented code; the indentation of the container
    (admonition, details, tab, list item, footnote, definition; 0 outside any) that each line
    belongs to, inside its blockquote; and the blockquote markers that start each line ("" outside
    any). A blockquote's content is read like a page of its own."""
    code: set[int] = set()
    bases = [0] * len(lines)
    quotes = [""] * len(lines)
    containers: list[int] = []  # content indentation of each open container, innermost last
    fence = None
    fence_depth = 0  # the blockquote level the open fence is in
    depth = 0  # the blockquote level of the line before
    previous_blank = True
    previous_code = False
    for i, raw in enumerate(lines):
        quote = QUOTE.match(raw) if fence is None or fence_depth else None
        prefix = quote.group(0) if quote else ""
        level = prefix.count(">")
        if fence is not None:
            if level >= fence_depth:
                code.add(i)
                quotes[i] = prefix
                text = raw[len(prefix):].expandtabs(4).strip()
                if text.startswith(fence[0]) and set(text) == {fence[0]} and len(text) >= len(fence):
                    fence = None
                continue
            fence = None  # the blockquote that it was in has ended
        if level != depth:  # into or out of a blockquote
            containers, depth, previous_blank, previous_code = [], level, True, False
        quotes[i] = prefix
        expanded = raw[len(prefix):].expandtabs(4)
        stripped = expanded.lstrip()
        indent = len(expanded) - len(stripped)
        if not stripped:
            bases[i] = containers[-1] if containers else 0
            previous_blank = True
            continue
        while containers and indent < containers[-1]:
            containers.pop()
        bases[i] = base = containers[-1] if containers else 0
        if indent - base >= 4:
            # Indented code after a blank line (or more of it); otherwise a paragraph's continuation.
            previous_code = previous_blank or previous_code
            if previous_code:
                code.add(i)
            previous_blank = False
            continue
        previous_blank = previous_code = False
        match = FENCE.match(stripped)
        if match:
            fence, fence_depth = match.group("fence"), level
            code.add(i)
        elif CONTAINER.match(stripped):
            containers.append(indent + 4)
    return code, bases, quotes


def _last_comment_end(lines: list[str], code: set[int]) -> tuple[int, int]:
    """(line, column) of the last '-->' outside code: an '<!--' before it opens a comment, one
    after it is text (Markdown shows an unclosed '<!--' as it is)."""
    for i in range(len(lines) - 1, -1, -1):
        if i not in code:
            column = lines[i].rfind("-->")
            if column != -1:
                return i, column
    return -1, -1


def _tags_on_line(line: str, number: int, in_comment: bool, comment_end: tuple[int, int]
                  ) -> tuple[list[tuple[int, int, str]], int | None, bool]:
    """The tags on one line outside inline code and HTML comments, as (start, end, body); the
    column of a '<%' that has no '%>' after it (None if none); whether the line ends inside a
    comment. One pass from left to right, whichever comes first: a tag (a code span or a comment
    inside it is the tag's text), a code span (CommonMark's: to the next run of as many
    backticks), a comment (to its '-->', on this line or a later one)."""
    found: list[tuple[int, int, str]] = []
    n = len(line)
    position = 0
    if in_comment:
        end = line.find("-->")
        if end == -1:
            return found, None, True
        position = end + 3
    runs = [(m.start(), m.end()) for m in BACKTICKS.finditer(line, position)] if "`" in line else []
    closing: list[int | None] = [None] * len(runs)  # the next run of the same length
    later: dict[int, int] = {}
    for k in range(len(runs) - 1, -1, -1):
        length = runs[k][1] - runs[k][0]
        closing[k] = later.get(length)
        later[length] = k
    run = 0

    def find(needle: str, start: int) -> int:
        at = line.find(needle, start)
        return n if at == -1 else at

    next_tag, next_comment = find("<%", position), find("<!--", position)
    while True:
        while run < len(runs) and runs[run][0] < position:
            run += 1
        if next_tag < position:
            next_tag = find("<%", position)
        if next_comment < position:
            next_comment = find("<!--", position)
        tick = runs[run][0] if run < len(runs) else n
        first = min(tick, next_tag, next_comment)
        if first == n:
            return found, None, False
        if first == next_tag:
            close = line.find("%>", first + 2)
            if close == -1:
                return found, first, False
            found.append((first, close + 2, line[first + 2:close]))
            position = close + 2
        elif first == tick:
            other = closing[run]
            position = runs[run][1] if other is None else runs[other][1]
        elif (number, first + 4) <= comment_end:
            end = line.find("-->", first + 4)
            if end == -1:
                return found, None, True
            position = end + 3
        else:
            position = first + 4


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def parse_tag(body: str, line: int, specs: dict[str, TagSpec]) -> tuple[str, dict]:
    """The name and converted attributes of one tag's body (the text between <% and %>)."""
    match = NAME.match(body)
    if not match:
        raise TagError(line, f"malformed tag '<%{_shown(body)}%>': expected a tag name after '<%'")
    name = match.group("name")
    if name not in specs:
        raise TagError(line, f"unknown tag '{_shown(name)}' (known tags: {', '.join(sorted(specs))})")
    spec = specs[name]
    attributes: dict = {}
    position = match.end()
    while body[position:].strip():
        attribute = ATTRIBUTE.match(body, position)
        bare = BARE.match(body, position) if spec.positional and not attribute else None
        if bare and spec.positional not in attributes:
            try:
                attributes[spec.positional] = spec.attributes[spec.positional](bare.group("word"))
            except ValueError as error:
                raise TagError(line, f"'{name}' {spec.positional} \"{_shown(bare.group('word'))}\": {error}") from None
            position = bare.end()
            continue
        if not attribute:
            rest = body[position:].strip()
            raise TagError(line, f"malformed attribute in '{name}' at '{_shown(rest)}': expected key=\"value\"")
        key = attribute.group("key")
        value = attribute.group("dq") if attribute.group("dq") is not None else attribute.group("sq")
        if key not in spec.attributes:
            known = ", ".join(sorted(spec.attributes)) or "none"
            raise TagError(line, f"unknown attribute '{_shown(key)}' for '{name}' (known attributes: {known})")
        if key in attributes:
            raise TagError(line, f"attribute '{key}' given twice in '{name}'")
        try:
            attributes[key] = spec.attributes[key](value)
        except ValueError as error:
            raise TagError(line, f"'{name}' attribute {key}=\"{_shown(value)}\": {error}") from None
        position = attribute.end()
    missing = [key for key in spec.required if key not in attributes]
    if missing:
        raise TagError(line, f"'{name}' needs {', '.join(missing)} (for example {name} "
                             + " ".join(f'{key}="..."' for key in missing) + ")")
    return name, attributes


def _block_lead(lead: str, quote: str, base: int) -> tuple[bool, str] | None:
    """Where a block tag goes, from `lead`, the text before it on its line (`quote`: the line's
    blockquote markers, `base`: its container's indentation). None: other text precedes it, the
    tag does not stand alone. (True, ""): right after a list item's, footnote's or definition's
    marker, its placeholder stays in place, the first thing in that item. (False, prefix): a
    paragraph of its own, each of its lines starting with `prefix` (the blockquote's markers and
    the container's indentation), so that it stays inside the blocks it was written in."""
    body = lead[len(quote):]
    if not body.strip():
        return False, quote + " " * base
    if OPENER.fullmatch(body):
        return True, ""
    nested = NESTED_QUOTE.fullmatch(body)
    if nested:  # a blockquote inside a container: its markers as the author wrote them
        return False, quote + nested.group("quote") + " "
    return None


def extract(markdown: str, specs: dict[str, TagSpec], first_index: int = 0,
            first_line: int = 1) -> tuple[str, list[Tag]]:
    """Replace each tag outside code and HTML comments by a placeholder; return the new text and
    the tags. `first_line` is the number, in the page's file, of the Markdown's first line."""
    lines = markdown.split("\n")
    code, bases, quotes = _scan(lines)
    comment_end = _last_comment_end(lines, code) if "<!--" in markdown else (-1, -1)
    tags: list[Tag] = []
    in_comment = False
    original = list(lines)
    spaced: set[int] = set()  # lines whose block tag became a paragraph with a blank line after it

    def blank(j: int, i: int) -> bool:
        """Whether line j is blank inside the blockquote of line i (the page's edges count as blank)."""
        if j < 0 or j >= len(lines) or j in spaced:
            return True
        return quotes[j].count(">") == quotes[i].count(">") and not original[j][len(quotes[j]):].strip()

    def heading(i: int) -> bool:
        """Whether line i is a heading's: `# Title`, or a line over `===` or `---`."""
        if original[i][len(quotes[i]):].lstrip().startswith("#"):
            return True
        return i + 1 < len(lines) and i + 1 not in code and bool(SETEXT.fullmatch(original[i + 1][len(quotes[i + 1]):]))

    parsed: dict[str, tuple[str, dict]] = {}  # the same tag written again is parsed once
    for i, line in enumerate(lines):
        if i in code or (not in_comment and "<%" not in line and "<!--" not in line):
            continue
        found, unclosed, in_comment = _tags_on_line(line, i, in_comment, comment_end)
        number = first_line + i
        out = []
        position = 0
        in_heading = None
        for start, end, body in found:
            if body not in parsed:
                parsed[body] = parse_tag(body, number, specs)
            name, attributes = parsed[body][0], dict(parsed[body][1])
            index = first_index + len(tags)
            block = specs[name].block
            placeholder = (BLOCK_PLACEHOLDER if block else INLINE_PLACEHOLDER).format(index)
            if not block:
                in_heading = heading(i) if in_heading is None else in_heading
                if not in_heading:
                    placeholder = WORD_PLACEHOLDER.format(index)
                tags.append(Tag(name, attributes, number, placeholder, False, index))
                out.append(line[position:start] + placeholder)
                position = end
                continue
            place = _block_lead(line[:start], quotes[i], bases[i]) if not line[end:].strip() else None
            if place is None:
                raise TagError(number, f"'{name}' must stand alone on its line")
            tags.append(Tag(name, attributes, number, placeholder, True, index))
            in_place, prefix = place
            if in_place:
                out.append(line[position:start] + placeholder)
            else:
                # A paragraph of its own however the author spaced the lines, with one blank line
                # before and after it (two in a row would end a footnote).
                before = "" if blank(i - 1, i) else f"{prefix}\n"
                after = "" if blank(i + 1, i) else f"\n{prefix}"
                out.append(f"{before}{prefix}{placeholder}{after}")
                spaced.add(i)
            position = end
        if unclosed is not None:
            raise TagError(number, "malformed tag: '<%' without a closing '%>' on the same line")
        if out:
            lines[i] = "".join(out) + line[position:]
    return "\n".join(lines), tags


def placeholder_number(match: re.Match) -> int:
    """The number in a match of PLACEHOLDERS."""
    return int(match.group("p") or match.group("fn") or match.group("word") or match.group("span"))


def placeholder_numbers(html: str) -> set[int]:
    """The numbers of the placeholders in a conversion's HTML."""
    return {placeholder_number(match) for match in PLACEHOLDERS.finditer(html)}


def substitute(html: str, tags: list[Tag], render: Callable[[Tag], str]) -> str:
    """Swap every placeholder in the rendered page for its tag's HTML, in one pass over the page;
    a block tag takes its <p> too. Each tag is rendered once, in the order its placeholder appears."""
    by_index = {tag.index: tag for tag in tags}
    rendered: dict[int, str] = {}

    def replace(match: re.Match) -> str:
        index = placeholder_number(match)
        tag = by_index.get(index)
        if tag is None:
            return match.group(0)  # not this page's: check_rendered reports it
        if index not in rendered:
            rendered[index] = render(tag)
        if match.group("backref"):  # the footnote's links back, in a paragraph after the tag's HTML
            return rendered[index] + f"<p>{match.group('backref')}</p>"
        return rendered[index]

    return PLACEHOLDERS.sub(replace, html) if tags else html


def leftover(html: str) -> str | None:
    """A placeholder left in a page's final HTML (a tag the plugin never rendered), if any."""
    match = PLACEHOLDERS.search(html)
    return match.group(0) if match else None


def check_page(found: list[Tag]) -> None:
    """The checks that need the whole page but no files: an id given to two demos, rows that do not close."""
    ids: dict[str, int] = {}
    open_row = None
    for tag in found:
        if tag.name == "sanet_demo" and "id" in tag.attributes and not tag.default_id:
            given = tag.attributes["id"]
            if given in ids:
                raise TagError(tag.line, f"id \"{given}\" is used twice on this page (first on line {ids[given]})")
            ids[given] = tag.line
        if tag.name == "row":
            if open_row is not None:
                raise TagError(tag.line, f"row inside the row opened on line {open_row.line}")
            open_row = tag
        if tag.name == "endrow":
            if open_row is None:
                raise TagError(tag.line, "endrow without a row before it")
            open_row = None
    if open_row is not None:
        raise TagError(open_row.line, "row without an endrow after it")


def settle_ids(html: str, found: list[Tag]) -> None:
    """Give each demo its HTML id against the ids of the rendered page (headings' included): an id
    that the author gave and the page already uses is an error; a demo without one gets
    `sanet-demo-N`, with the first N that is free."""
    demos = [tag for tag in found if tag.name == "sanet_demo"]
    if not demos:
        return
    taken = set(HTML_ID.findall(html))
    for tag in demos:
        if not tag.default_id and "id" in tag.attributes and tag.attributes["id"] in taken:
            raise TagError(tag.line, f"id \"{tag.attributes['id']}\" is already the id of a heading or another "
                                     f"element of this page: choose another id for the demo")
    taken |= {tag.attributes["id"] for tag in demos if not tag.default_id and "id" in tag.attributes}
    number = 0
    for tag in demos:
        if tag.default_id or "id" not in tag.attributes:
            number += 1
            while f"sanet-demo-{number}" in taken:
                number += 1
            tag.attributes["id"] = f"sanet-demo-{number}"
            tag.default_id = True


# -- attribute values ------------------------------------------------------------------------

def whole_number(low: int, high: int):
    def convert(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return number
    return convert


def fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("expected a number from 0 to 1") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError("expected a number from 0 to 1")
    return number + 0.0  # -0 is 0


def identifier(value: str) -> str:
    if not re.match(r"^[A-Za-z][\w-]*$", value):
        raise ValueError("expected a letter followed by letters, digits, '-' or '_'")
    return value


def path(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a path to an image inside docs_dir")
    return value.strip()


def paths(value: str) -> list[str]:
    items = [item.strip() for item in value.split(",")]
    if not all(items):
        raise ValueError("expected comma-separated paths to images inside docs_dir")
    return items


def boolean(value: str) -> bool:
    if value not in ("true", "false"):
        raise ValueError("expected true or false")
    return value == "true"


def choice(*options: str):
    def convert(value: str) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value
    return convert


def text(value: str) -> str:
    return value


def cite_key(value: str) -> str:
    if not re.match(r"^[\w.:-]+$", value):
        raise ValueError("expected a BibTeX key")
    return value


# -- the tags --------------------------------------------------------------------------------

SPECS = {
    "sanet_demo": TagSpec({
        "content": path, "style": path, "max_size": max_size_value, "strength": fraction, "id": identifier,
        "passes": whole_number(1, 3), "style2": path, "mix": fraction, "keep_colors": boolean,
        "webcam": boolean, "contents": paths, "styles": paths}),
    "figure": TagSpec({"src": path, "caption": text, "width": choice("1/3", "1/2", "2/3", "full"), "alt": text},
                      required=("src", "caption")),
    "row": TagSpec(),
    "endrow": TagSpec(),
    "sanet_architecture": TagSpec(),
    "sanet_model_card": TagSpec(),
    "sanet_results": TagSpec({"contents": paths, "styles": paths, "strength": fraction, "caption": text},
                             required=("contents", "styles")),
    "cite": TagSpec({"key": cite_key}, block=False, positional="key", required=("key",)),
}
