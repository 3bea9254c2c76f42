"""Math rendered at build time: pymdownx.arithmatex (generic mode) marks `$...$` and `$$...$$`;
KaTeX (the npm package, run once per page with Node.js) turns them into HTML and MathML. The
page then needs only KaTeX's stylesheet and fonts, which the site serves itself."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
from pathlib import Path

INLINE = re.compile(r'<span class="arithmatex">\\\((?P<tex>.*?)\\\)</span>', re.S)
DISPLAY = re.compile(r'<div class="arithmatex">\\\[(?P<tex>.*?)\\\]</div>', re.S)

_RENDER = """
const katex = require("katex");
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([tex, display]) => {
    try {
      return {html: katex.renderToString(tex, {displayMode: display, throwOnError: true, output: "htmlAndMathml"})};
    } catch (error) {
      return {error: error.message};
    }
  });
  process.stdout.write(JSON.stringify(out));
});
"""


class FormulaError(ValueError):
    def __init__(self, tex: str, message: str):
        super().__init__(message)
        self.tex = tex
        self.message = message


def has_math(page_html: str) -> bool:
    return 'class="arithmatex"' in page_html


def render(page_html: str, node_modules: Path) -> str:
    """Every arithmatex formula of the page, rendered by KaTeX."""
    found = [(m, False) for m in INLINE.finditer(page_html)] + [(m, True) for m in DISPLAY.finditer(page_html)]
    if not found:
        return page_html
    formulas = [(html.unescape(m.group("tex")).strip(), display) for m, display in found]
    if not (node_modules / "katex" / "package.json").is_file():
        raise FileNotFoundError(f"{node_modules / 'katex'}: KaTeX not found. Run `npm ci` beside package.json")
    result = subprocess.run(["node", "-e", _RENDER], input=json.dumps(formulas), capture_output=True, text=True,
                            env={**os.environ, "NODE_PATH": str(node_modules)})
    if result.returncode != 0:
        raise RuntimeError(f"KaTeX failed: {result.stderr.strip()[-500:]}")
    rendered = json.loads(result.stdout)
    replacements = {}
    for (match, display), (tex, _), out in zip(found, formulas, rendered):
        if "error" in out:
            raise FormulaError(tex, out["error"])
        replacements[match.group(0)] = out["html"] if not display else f'<div class="sanet-math">{out["html"]}</div>'
    return re.sub("|".join(re.escape(k) for k in sorted(replacements, key=len, reverse=True)),
                  lambda m: replacements[m.group(0)], page_html)
