"""The tag syntax: `<% name key="value" ... %>` in a Markdown page.

Tags inside fenced code, indented code and inline code stay literal text, so a page can
show the syntax. The scanner knows the containers whose content is indented (admonitions,
`??? details`, content tabs, list items): their indentation is not code. Each tag found is
replaced by a placeholder that Markdown leaves alone: a block tag by a word in a paragraph of
its own, inside the container it was written in; an inline tag by an empty `<span>`, which
Markdown stashes as raw HTML and the table of contents strips from titles and anchor ids. The
plugin swaps the placeholders for HTML once the page is rendered, in one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from .config import max_size_value

TAG = re.compile(r"<%(?P<body>.*?)%>")
ATTRIBUTE = re.compile(r"""\s*(?P<key>[A-Za-z_][\w-]*)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""")
NAME = re.compile(r"\s*(?P<name>[A-Za-z_]\w*)")
BARE = re.compile(r"\s*(?P<word>[\w.:-]+)(?=\s|$)")
FENCE = re.compile(r"(?P<fence>`{3,}|~{3,})")
# Lines whose content continues indented by 4: an admonition, a details block, a content tab, a list item.
CONTAINER = re.compile(r"""(?:!!!|\?\?\?\+?)\s*[\w-]|===[!+]?\s+["']|(?:[*+-]|\d+[.)])(?:\s|$)""")
BLOCK_PLACEHOLDER = "SANETTAG{}X"
INLINE_PLACEHOLDER = '<span data-sanet-tag="{}"></span>'
# Every placeholder in rendered HTML; a block placeholder takes the paragraph around it.
PLACEHOLDERS = re.compile(r'<p>\s*SANETTAG(?P<p>\d+)X\s*</p>|SANETTAG(?P<word>\d+)X|'
                          r'<span data-sanet-tag="(?P<span>\d+)"></span>')
HTML_ID = re.compile(r"""\sid=["']([^"']*)["']""")


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


def _scan(lines: list[str]) -> tuple[set[int], list[int]]:
    """Indexes of lines inside fenced or indented code, and the indentation of the container
    (admonition, details, tab, list item; 0 outside any) that each line belongs to."""
    code: set[int] = set()
    bases = [0] * len(lines)
    containers: list[int] = []  # content indentation of each open container, innermost last
    fence = None
    previous_blank = True
    previous_code = False
    for i, line in enumerate(lines):
        expanded = line.expandtabs(4)
        stripped = expanded.lstrip()
        indent = len(expanded) - len(stripped)
        if fence:
            code.add(i)
            text = stripped.rstrip()
            if text.startswith(fence[0]) and set(text) == {fence[0]} and len(text) >= len(fence):
                fence = None
            continue
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
            fence = match.group("fence")
            code.add(i)
        elif CONTAINER.match(stripped):
            containers.append(indent + 4)
    return code, bases


def _inline_code_spans(line: str) -> list[tuple[int, int]]:
    """(start, end) of each `code` span on the line, by matching backtick runs."""
    spans = []
    i = 0
    while i < len(line):
        if line[i] == "`":
            run = len(line[i:]) - len(line[i:].lstrip("`"))
            end = line.find("`" * run, i + run)
            while end != -1 and (end + run < len(line) and line[end + run] == "`"):
                end = line.find("`" * run, end + run + 1)
            if end == -1:
                i += run
                continue
            spans.append((i, end + run))
            i = end + run
        else:
            i += 1
    return spans


def parse_tag(body: str, line: int, specs: dict[str, TagSpec]) -> tuple[str, dict]:
    """The name and converted attributes of one tag's body (the text between <% and %>)."""
    match = NAME.match(body)
    if not match:
        raise TagError(line, f"malformed tag '<%{body}%>': expected a tag name after '<%'")
    name = match.group("name")
    if name not in specs:
        raise TagError(line, f"unknown tag '{name}' (known tags: {', '.join(sorted(specs))})")
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
                raise TagError(line, f"'{name}' {spec.positional} \"{bare.group('word')}\": {error}") from None
            position = bare.end()
            continue
        if not attribute:
            rest = body[position:].strip()
            raise TagError(line, f"malformed attribute in '{name}' at '{rest}': expected key=\"value\"")
        key = attribute.group("key")
        value = attribute.group("dq") if attribute.group("dq") is not None else attribute.group("sq")
        if key not in spec.attributes:
            known = ", ".join(sorted(spec.attributes)) or "none"
            raise TagError(line, f"unknown attribute '{key}' for '{name}' (known attributes: {known})")
        if key in attributes:
            raise TagError(line, f"attribute '{key}' given twice in '{name}'")
        try:
            attributes[key] = spec.attributes[key](value)
        except ValueError as error:
            raise TagError(line, f"'{name}' attribute {key}=\"{value}\": {error}") from None
        position = attribute.end()
    missing = [key for key in spec.required if key not in attributes]
    if missing:
        raise TagError(line, f"'{name}' needs {', '.join(missing)} (for example {name} "
                             + " ".join(f'{key}="..."' for key in missing) + ")")
    return name, attributes


def extract(markdown: str, specs: dict[str, TagSpec], first_index: int = 0,
            first_line: int = 1) -> tuple[str, list[Tag]]:
    """Replace each tag outside code by a placeholder; return the new text and the tags.
    `first_line` is the number, in the page's file, of the Markdown's first line."""
    lines = markdown.split("\n")
    code, bases = _scan(lines)
    tags: list[Tag] = []
    for i, line in enumerate(lines):
        if i in code or "<%" not in line:
            continue
        number = first_line + i
        spans = _inline_code_spans(line)
        out = []
        position = 0
        for match in TAG.finditer(line):
            if any(start <= match.start() < end for start, end in spans):
                continue
            name, attributes = parse_tag(match.group("body"), number, specs)
            alone = not (line[: match.start()].strip() or line[match.end():].strip())
            if specs[name].block and not alone:
                raise TagError(number, f"'{name}' must stand alone on its line")
            index = first_index + len(tags)
            block = specs[name].block
            placeholder = (BLOCK_PLACEHOLDER if block else INLINE_PLACEHOLDER).format(index)
            tags.append(Tag(name, attributes, number, placeholder, alone, index))
            if block:
                # A paragraph of its own however the author spaced the lines, indented like the
                # content of the container it was written in, so that it stays in there.
                indent = " " * bases[i]
                out.append(f"{indent}\n{indent}\n{indent}{placeholder}\n{indent}\n{indent}")
            else:
                out.append(line[position: match.start()] + placeholder)
            position = match.end()
        if out:
            rest = line[position:]
            if "<%" in _mask(rest, spans, position):
                raise TagError(number, "malformed tag: '<%' without a closing '%>' on the same line")
            lines[i] = "".join(out) + rest
        elif "<%" in _mask(line, spans, 0):
            raise TagError(number, "malformed tag: '<%' without a closing '%>' on the same line")
    return "\n".join(lines), tags


def _mask(text: str, spans: list[tuple[int, int]], offset: int) -> str:
    """The text with inline code blanked out, so that '<%' shown in code is no error."""
    chars = list(text)
    for start, end in spans:
        for j in range(max(start - offset, 0), max(min(end - offset, len(chars)), 0)):
            chars[j] = " "
    return "".join(chars)


def substitute(html: str, tags: list[Tag], render: Callable[[Tag], str]) -> str:
    """Swap every placeholder in the rendered page for its tag's HTML, in one pass over the page;
    a block tag takes its <p> too. Each tag is rendered once, in the order its placeholder appears."""
    by_index = {tag.index: tag for tag in tags}
    rendered: dict[int, str] = {}

    def replace(match: re.Match) -> str:
        index = int(next(group for group in match.groups() if group is not None))
        tag = by_index.get(index)
        if tag is None:
            return match.group(0)  # not this page's: check_rendered reports it
        if index not in rendered:
            rendered[index] = render(tag)
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
        "webcam": boolean}),
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
