"""Math rendered at build time: pymdownx.arithmatex (generic mode) marks `$...$` and `$$...$$`;
KaTeX (katex.min.js of the npm package, run in V8 embedded by mini-racer: no Node.js) turns them
into HTML and MathML. The page then needs only KaTeX's stylesheet and fonts, which the site serves
itself. Rendered formulas are cached by hash, so a warm build starts no JavaScript engine at all."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from pathlib import Path

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


class FormulaError(ValueError):
    def __init__(self, tex: str, message: str):
        super().__init__(message)
        self.tex = tex
        self.message = message


def has_math(page_html: str) -> bool:
    return 'class="arithmatex"' in page_html


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
    missing = [i for i, path in enumerate(paths) if not path.is_file()]
    if missing:
        rendered = _katex(script, [formulas[i] for i in missing])
        cache_dir.mkdir(parents=True, exist_ok=True)
        for i, out in zip(missing, rendered):
            if "error" in out:
                raise FormulaError(formulas[i][0], out["error"])
            tmp = paths[i].with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text(out["html"])
            os.replace(tmp, paths[i])
    replacements = {}
    for (match, display), path in zip(found, paths):
        rendered = path.read_text()
        # Indexed once by mkdocs-material's search: the visible text, not the MathML copy and its TeX too.
        # (Its parser can only exclude an element with no descendant of the same tag: <math>, not a <span>.)
        rendered = rendered.replace("<math ", "<math data-search-exclude ", 1)
        replacements[match.group(0)] = f'<div class="sanet-math">{rendered}</div>' if display else rendered
    return re.sub("|".join(re.escape(k) for k in sorted(replacements, key=len, reverse=True)),
                  lambda m: replacements[m.group(0)], page_html)
