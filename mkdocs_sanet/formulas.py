"""Math rendered at build time: pymdownx.arithmatex (generic mode) marks `$...$` and `$$...$$`;
KaTeX (katex.min.js of the npm package, run in V8 embedded by mini-racer: no Node.js) turns them
into HTML and MathML. The page then needs only KaTeX's stylesheet and fonts, which the site serves
itself. Rendered formulas are cached by hash, so a warm build starts no JavaScript engine at all.

A cached formula is not trusted (a cache restored in CI may come from anywhere): read once per
process, it must be what KaTeX could have written for that formula (`check_katex_html`): markup
in KaTeX's own strict form, only the elements and attributes KaTeX writes without `trust` (no
links, pictures, ids, scripts or event handlers), styles without url() or any function but
calc(), one `katex` (or `katex-display`) span whose TeX annotation is the formula. An entry
that fails is rendered again, with a warning."""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import os
import re
import stat
from pathlib import Path

from .outputs import remove_tree

log = logging.getLogger("mkdocs.plugins.sanet")

INLINE = re.compile(r'<span class="arithmatex">\\\((?P<tex>.*?)\\\)</span>', re.S)
DISPLAY = re.compile(r'<div class="arithmatex">\\\[(?P<tex>.*?)\\\]</div>', re.S)

# Each formula -> {html} or {error}: one engine call per page.
_RENDER = """
JSON.stringify(%s.map(([tex, display]) => {
  try {
    return {html: katex.renderToString(tex, {displayMode: display, throwOnError: true, output: "htmlAndMathml"})};
  } catch (error) {
    return {error: error.message};
  }
}))
"""


def _katex(script: Path, formulas: list[tuple[str, bool]]) -> list[dict]:
    """The formulas rendered in a V8 context with katex.min.js loaded (about 0.15 s to start).
    The context is opened and closed here, never left to the interpreter's exit: mini-racer
    freeing a context while Python shuts down can hang the process."""
    from py_mini_racer import MiniRacer

    with MiniRacer() as context:
        context.eval(script.read_text(encoding="utf-8"))
        return json.loads(context.eval(_RENDER % json.dumps(formulas)))


# What KaTeX writes with output "htmlAndMathml" and without `trust` (\href, \includegraphics,
# \htmlId and the like then render as red text, never as links, pictures or ids).
_MATHML = {"math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub",
           "msubsup", "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd",
           "mlabeledtr", "mstyle", "mpadded", "mphantom", "menclose", "mglyph", "merror", "mprescripts", "none"}
_ELEMENTS = _MATHML | {"span", "svg", "path", "line"}
# Written <tag .../> by KaTeX: its SVG's children (always), a MathML space (sometimes).
_EMPTY = {"path", "line"}
_ATTRIBUTES = {
    "class", "style", "aria-hidden", "xmlns", "display", "encoding", "mathvariant", "mathcolor", "mathbackground",
    "mathsize", "accent", "accentunder", "stretchy", "fence", "separator", "lspace", "rspace", "largeop",
    "movablelimits", "symmetric", "minsize", "maxsize", "width", "height", "depth", "voffset", "linethickness",
    "scriptlevel", "displaystyle", "columnalign", "columnlines", "columnspacing", "rowalign", "rowlines",
    "rowspacing", "notation", "linebreak", "valign", "viewbox", "preserveaspectratio", "d", "x1", "x2", "y1", "y2",
    "stroke-width"}
_NAMESPACES = {"http://www.w3.org/1998/Math/MathML", "http://www.w3.org/2000/svg"}
_CLASS = re.compile(r"[\w\s-]*")
_VALUE = re.compile(r"[\w\s#.,:;%+/-]*")
# CSS declarations: lengths, colours, keywords; the only function KaTeX writes is calc().
_STYLE = re.compile(r"(?:\s*[a-z-]+\s*:\s*(?:[\w#.%+*/, -]|calc\()*\s*;?)*\s*")


class UnsafeFormula(ValueError):
    """A cached formula's HTML is not what KaTeX writes."""


# KaTeX's markup, token by token: a start tag (its attributes double-quoted, as KaTeX writes
# them), an end tag, or text without '<' and '>' (KaTeX escapes them). Nothing else passes, so
# a browser reads the same elements as this check (none of them reads its content as raw text).
_TOKEN = re.compile(r'<(?P<tag>[a-z]+)(?P<attrs>(?: [a-zA-Z][a-zA-Z0-9-]* ?="[^"<>]*")*)(?P<empty>/?)>'
                    r"|</(?P<end>[a-z]+)>|(?P<text>[^<>]+)")
_ATTR = re.compile(r' ([a-zA-Z][a-zA-Z0-9-]*) ?="([^"]*)"')


@functools.lru_cache(maxsize=1 << 16)
def _attributes_problem(tag: str, attrs: str) -> str | None:
    """What is wrong with a start tag (its attributes as written), or None. The same few
    hundred tags recur in every formula: cached."""
    if tag not in _ELEMENTS:
        return f"a <{tag}> element"
    seen = set()
    for raw, value in _ATTR.findall(attrs):
        name = raw.lower()
        if name not in _ATTRIBUTES or name in seen:
            return f"attribute {raw!r} on <{tag}>" + (" twice" if name in seen else "")
        seen.add(name)
        value = html.unescape(value)
        if name == "xmlns":
            ok = value in _NAMESPACES
        elif name == "style":
            ok = _STYLE.fullmatch(value) is not None
        elif name == "class":
            ok = _CLASS.fullmatch(value) is not None
        else:
            ok = _VALUE.fullmatch(value) is not None
        if not ok:
            return f"{raw}={value[:60]!r} on <{tag}>"
    return None


def check_katex_html(text: str, tex: str, display: bool) -> None:
    """Raises UnsafeFormula unless the HTML is what KaTeX could have written for this formula:
    its elements and attributes, nested as KaTeX nests them (MathML inside <math>, paths and
    lines inside <svg>), in one katex span whose TeX annotation is the formula."""
    wanted = f' class="{"katex-display" if display else "katex"}"'
    open_tags: list[str] = []
    in_math = roots = annotations = position = 0
    for token in _TOKEN.finditer(text):
        if token.start() != position:
            break
        position = token.end()
        tag, end = token.group("tag"), token.group("end")
        if tag is not None:
            attrs, empty = token.group("attrs"), bool(token.group("empty"))
            problem = _attributes_problem(tag, attrs)
            if problem is None:
                parent = open_tags[-1] if open_tags else None
                if not open_tags:
                    roots += 1
                    if roots > 1 or tag != "span" or attrs != wanted:
                        problem = f"expected one <span{wanted}> around the formula"
                elif tag == "math" and (in_math or parent != "span") or tag != "math" and (
                        (tag in _MATHML) != bool(in_math) or (tag in _EMPTY) != (parent == "svg")):
                    problem = f"<{tag}> inside <{parent}>"
                elif empty != (tag in _EMPTY) and not (empty and tag == "mspace"):
                    problem = f"<{tag}{'/' if empty else ''}>"
            if problem:
                raise UnsafeFormula(problem)
            if not empty:
                open_tags.append(tag)
                in_math += tag == "math"
        elif end is not None:
            if not open_tags or open_tags[-1] != end:
                raise UnsafeFormula(f"</{end}> does not close " + (f"<{open_tags[-1]}>" if open_tags else "anything"))
            in_math -= open_tags.pop() == "math"
        else:
            if not open_tags:
                raise UnsafeFormula("text outside the formula")
            if open_tags[-1] == "annotation":
                annotations += 1
                if html.unescape(token.group("text")) != tex:
                    raise UnsafeFormula("its TeX annotation is not the formula's")
    if position != len(text):
        raise UnsafeFormula(f"not KaTeX's markup at {text[position:position + 40]!r}")
    if open_tags or not roots:
        raise UnsafeFormula(f"<{open_tags[-1]}> is not closed" if open_tags else "empty")
    if annotations != 1:
        raise UnsafeFormula(f"{annotations} TeX annotations, expected one")


class FormulaError(ValueError):
    """A formula KaTeX refused: tex (whole, to find its line), message (KaTeX's, cut to a line)."""

    def __init__(self, tex: str, message: str):
        super().__init__(message)
        self.tex = tex
        self.message = excerpt(message, 300)


def excerpt(text: str, limit: int = 120) -> str:
    """A formula (or a message) as an error line shows it: its lines and runs of spaces joined
    by one space, control characters escaped, cut to `limit` characters with its length said."""
    flat = " ".join(str(text).split())
    flat = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in flat)
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}… ({len(flat):,} characters)"


def has_math(page_html: str) -> bool:
    return 'class="arithmatex"' in page_html


# Cached formulas checked (or written) by this process: path -> (its stat then, its checked HTML),
# so that `mkdocs serve` rebuilds do not parse them again.
_checked: dict[Path, tuple[tuple, str]] = {}


def _stamp(st: os.stat_result) -> tuple:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _cached(path: Path, tex: str, display: bool) -> str | None:
    """The checked HTML of a cached formula; None when there is none. One that is not what
    KaTeX writes for this formula (or no regular file) is described in a warning and removed."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    memo = _checked.get(path)
    if memo is not None and stat.S_ISREG(st.st_mode) and memo[0] == _stamp(st):
        return memo[1]
    try:
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFormula("not a regular file")
        # Not through a link, and never waiting on a FIFO put there after the lstat.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise UnsafeFormula("not a regular file")
            text = file.read().decode("utf-8")
        check_katex_html(text, tex, display)
    except (UnsafeFormula, UnicodeDecodeError, OSError) as error:
        log.warning(f"sanet: the cached formula {path} is damaged ({error}): rendering it again")
        _remove(path)
        return None
    _checked[path] = (_stamp(st), text)
    return text


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            remove_tree(path)  # iterative: a forged folder may nest thousands deep
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def render(page_html: str, runtime_dir: Path, cache_dir: Path) -> str:
    """Every arithmatex formula of the page, rendered by KaTeX (from runtime_dir/katex)."""
    found = [(m, False) for m in INLINE.finditer(page_html)] + [(m, True) for m in DISPLAY.finditer(page_html)]
    if not found:
        return page_html
    formulas = [(html.unescape(m.group("tex")).strip(), display) for m, display in found]
    package = runtime_dir / "katex" / "package.json"
    script = runtime_dir / "katex" / "dist" / "katex.min.js"
    if not (package.is_file() and script.is_file()):
        raise FileNotFoundError(f"{runtime_dir / 'katex'}: KaTeX not found. Run `npm ci` beside package.json")
    version = json.loads(package.read_text())["version"]
    paths = [cache_dir / (hashlib.sha256(f"{version}\0{display}\0{tex}".encode()).hexdigest()[:32] + ".html")
             for tex, display in formulas]
    done: dict[Path, str] = {}
    for (tex, display), path in zip(formulas, paths):
        if path not in done and (checked := _cached(path, tex, display)) is not None:
            done[path] = checked
    missing = list({path: i for i, path in enumerate(paths) if path not in done}.values())  # one per formula
    if missing:
        rendered = _katex(script, [formulas[i] for i in missing])
        cache_dir.mkdir(parents=True, exist_ok=True)
        for i, out in zip(missing, rendered):
            if "error" in out:
                raise FormulaError(formulas[i][0], out["error"])
            done[paths[i]] = out["html"]
            try:
                check_katex_html(out["html"], *formulas[i])
            except UnsafeFormula:
                # KaTeX wrote what the check does not know: used as it is, never cached (a later
                # build would refuse it), so rendered again by each build.
                continue
            tmp = paths[i].with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text(out["html"], encoding="utf-8")
            os.replace(tmp, paths[i])
            _checked[paths[i]] = (_stamp(paths[i].lstat()), done[paths[i]])
    replacements = {}
    for (match, display), path in zip(found, paths):
        rendered = done[path]
        # Indexed once by mkdocs-material's search: the visible text, not the MathML copy and its TeX too.
        # (Its parser can only exclude an element with no descendant of the same tag: <math>, not a <span>.)
        rendered = rendered.replace("<math ", "<math data-search-exclude ", 1)
        replacements[match.group(0)] = f'<div class="sanet-math">{rendered}</div>' if display else rendered
    return re.sub("|".join(re.escape(k) for k in sorted(replacements, key=len, reverse=True)),
                  lambda m: replacements[m.group(0)], page_html)
