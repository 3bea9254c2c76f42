"""The plugin's part of Markdown's own conversion: a postprocessor that turns the plugin's
placeholders and arithmatex's math into HTML.

It runs inside every conversion that MkDocs or another plugin makes with the site's
`markdown_extensions`: a page's own (MkDocs' `Page.render`), and the excerpts that
mkdocs-material's blog plugin renders from a post's Markdown on the blog's index, archive and
category pages, where no page event of this plugin runs. Both register a `relpath`
treeprocessor whose `file.url` is the URL of the page the HTML lands on (for an excerpt: the
view's), so relative URLs come out right in both.
"""

from __future__ import annotations

from typing import Callable

from markdown import Extension, Markdown
from markdown.postprocessors import Postprocessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

# After Markdown's "raw_html" (30: inline placeholders are stashed raw HTML, arithmatex's output
# too) and "amp_substitute" (20); before pymdownx's path converter and b64 (2), which then see the
# demo's relative URLs like any other HTML of the page.
PRIORITY = 15
# The table of contents runs the postprocessors on headings' HTML during the treeprocessors: those
# fragments are left alone (the toc strips their tags). A preprocessor that runs first and a
# treeprocessor that runs last mark where the document's own postprocessing starts.
FIRST, LAST = 1000, -1000


class SANetPostprocessor(Postprocessor):
    def __init__(self, md: Markdown, render: Callable[[str, object], str]):
        super().__init__(md)
        self.render = render
        self.document = False

    def run(self, text: str) -> str:
        if not self.document:
            return text
        # Without MkDocs' relpath treeprocessor the conversion is not a page's (some other use of
        # Markdown): there is no page URL to make relative URLs from, so leave the HTML as it is.
        if "relpath" not in self.md.treeprocessors:
            return text
        return self.render(text, self.md.treeprocessors["relpath"].file)


class _Start(Preprocessor):
    def __init__(self, md: Markdown, post: SANetPostprocessor):
        super().__init__(md)
        self.post = post

    def run(self, lines: list[str]) -> list[str]:
        self.post.document = False
        return lines


class _TreeDone(Treeprocessor):
    def __init__(self, md: Markdown, post: SANetPostprocessor):
        super().__init__(md)
        self.post = post

    def run(self, root) -> None:
        self.post.document = True


class SANetExtension(Extension):
    """render(html, file) -> html: the plugin's rendering, for the page at `file.url`."""

    def __init__(self, render: Callable[[str, object], str]):
        super().__init__()
        self.render = render

    def extendMarkdown(self, md: Markdown) -> None:
        post = SANetPostprocessor(md, self.render)
        md.preprocessors.register(_Start(md, post), "sanet-start", FIRST)
        md.treeprocessors.register(_TreeDone(md, post), "sanet-tree-done", LAST)
        md.postprocessors.register(post, "sanet", PRIORITY)
