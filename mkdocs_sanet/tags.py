"""The tag syntax: `<% name key="value" ... %>` in a Markdown page.

Tags inside fenced code, indented code and inline code stay literal text, so a page can
show the syntax. Each tag found is replaced by a placeholder word that Markdown leaves
alone; the plugin swaps the placeholders for HTML once the page is rendered.
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
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})")
LIST_ITEM = re.compile(r"^\s{0,3}([*+-]|\d+[.)])\s")
PLACEHOLDER = "SANETTAG{:04d}X"


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


@dataclass
class TagSpec:
    """What a tag accepts: attribute name -> converter (raises ValueError with a reason)."""

    attributes: dict[str, Callable[[str], object]] = field(default_factory=dict)
    block: bool = True  # must stand alone on its line
    positional: str | None = None  # an attribute that may be given as a bare word: <% cite key %>
    required: tuple[str, ...] = ()


def _code_lines(lines: list[str]) -> set[int]:
    """Indexes of lines inside fenced or indented code blocks."""
    code: set[int] = set()
    fence = None
    in_list = False
    previous_blank = True
    previous_code = False
    for i, line in enumerate(lines):
        if fence:
            code.add(i)
            stripped = line.strip()
            if stripped.startswith(fence[0]) and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = None
            continue
        match = FENCE.match(line)
        if match:
            fence = match.group("fence")
            code.add(i)
            previous_blank = previous_code = False
            continue
        blank = not line.strip()
        indented = line.startswith("    ") or line.startswith("\t")
        if indented and not blank and not in_list and (previous_blank or previous_code):
            code.add(i)
            previous_code = True
        elif not blank:
            previous_code = False
            if not indented:
                in_list = bool(LIST_ITEM.match(line))
        previous_blank = blank
    return code


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


def extract(markdown: str, specs: dict[str, TagSpec], first_index: int = 0) -> tuple[str, list[Tag]]:
    """Replace each tag outside code by a placeholder; return the new text and the tags."""
    lines = markdown.split("\n")
    code = _code_lines(lines)
    tags: list[Tag] = []
    for i, line in enumerate(lines):
        if i in code or "<%" not in line:
            continue
        spans = _inline_code_spans(line)
        out = []
        position = 0
        for match in TAG.finditer(line):
            if any(start <= match.start() < end for start, end in spans):
                continue
            name, attributes = parse_tag(match.group("body"), i + 1, specs)
            alone = not (line[: match.start()].strip() or line[match.end():].strip())
            if specs[name].block and not alone:
                raise TagError(i + 1, f"'{name}' must stand alone on its line")
            placeholder = PLACEHOLDER.format(first_index + len(tags))
            tags.append(Tag(name, attributes, i + 1, placeholder, alone))
            out.append(line[position: match.start()])
            # A block tag gets a paragraph of its own, however the author spaced the lines.
            out.append(f"\n\n{placeholder}\n\n" if specs[name].block else placeholder)
            position = match.end()
        if out:
            rest = line[position:]
            if "<%" in _mask(rest, spans, position):
                raise TagError(i + 1, "malformed tag: '<%' without a closing '%>' on the same line")
            lines[i] = "".join(out) + rest
        elif "<%" in _mask(line, spans, 0):
            raise TagError(i + 1, "malformed tag: '<%' without a closing '%>' on the same line")
    return "\n".join(lines), tags


def _mask(text: str, spans: list[tuple[int, int]], offset: int) -> str:
    """The text with inline code blanked out, so that '<%' shown in code is no error."""
    chars = list(text)
    for start, end in spans:
        for j in range(max(start - offset, 0), max(min(end - offset, len(chars)), 0)):
            chars[j] = " "
    return "".join(chars)


def substitute(html: str, tags: list[Tag], render: Callable[[Tag], str]) -> str:
    """Swap each placeholder in the rendered page for its HTML; a block tag takes its <p> too."""
    for tag in tags:
        rendered = render(tag)
        if tag.block:
            html, count = re.subn(rf"<p>\s*{tag.placeholder}\s*</p>", lambda _: rendered, html)
            if count:
                continue
        html = html.replace(tag.placeholder, rendered)
    return html


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
    return number


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
        "content": path, "style": path, "max_size": max_size_value, "strength": fraction, "id": identifier}),
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
