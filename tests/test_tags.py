"""The tag syntax: what is a tag, what stays literal, and the errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mkdocs_sanet import tags


def extract(text):
    return tags.extract(text, tags.SPECS)


def test_tag_with_attributes():
    text, found = extract('# T\n\n<% sanet_demo content="a.jpg" style=\'b c.png\' max_size="256" strength="0.5" id="x" %>\n')
    assert len(found) == 1
    tag = found[0]
    assert tag.name == "sanet_demo"
    assert tag.attributes == {"content": "a.jpg", "style": "b c.png", "max_size": 256, "strength": 0.5, "id": "x"}
    assert tag.line == 3
    assert tag.placeholder in text and "<%" not in text


def test_bare_tag_and_several_tags():
    text, found = extract("<% sanet_demo %>\n\ntext\n\n<%sanet_demo id=\"two\"%>\n")
    assert [t.line for t in found] == [1, 5]
    assert len({t.placeholder for t in found}) == 2


@pytest.mark.parametrize("markdown", [
    "```markdown\n<% sanet_demo %>\n```\n",
    "~~~~\n<% sanet_demo nonsense %>\n```\nstill code\n~~~~\n",
    "Some text.\n\n    <% sanet_demo %>\n",
    "\t<% sanet_demo %>\n",
    "Use `<% sanet_demo %>` in a page.\n",
    "Use ``<% sanet_demo `x` %>`` in a page.\n",
    "Unclosed in code: `<% sanet_demo`.\n",
])
def test_code_stays_literal(markdown):
    text, found = extract(markdown)
    assert found == []
    assert text == markdown


def test_list_continuation_is_not_code():
    text, found = extract("- item\n\n    <% sanet_demo %>\n")
    assert len(found) == 1


@pytest.mark.parametrize("markdown, indent", [
    ('!!! note\n\n    <% sanet_demo %>\n', 4),
    ('!!! note "Title"\n    <% sanet_demo %>\n', 4),
    ('???+ details "Open"\n    <% sanet_demo %>\n', 4),
    ('=== "Demo"\n    <% sanet_demo %>\n', 4),
    ('- item\n    <% sanet_demo %>\n', 4),
    ('1. item\n\n    <% sanet_demo %>\n', 4),
    ('!!! note\n    - item\n\n        <% sanet_demo %>\n', 8),
    ('!!! note\n      <% sanet_demo %>\n', 4),  # 2 more spaces than the content: still not code
])
def test_tags_in_containers(markdown, indent):
    """The indentation of a container's content is not code; the placeholder keeps it, so it stays inside."""
    text, found = extract(markdown)
    assert len(found) == 1
    assert f"\n{' ' * indent}{found[0].placeholder}\n" in text


@pytest.mark.parametrize("markdown", [
    "!!! note\n\n        <% sanet_demo %>\n",
    "!!! note\n    ```\n    <% sanet_demo %>\n    ```\n",
    "- item\n\n    ```markdown\n    <% sanet_demo %>\n    ```\n",
    '=== "Code"\n\n    ~~~\n    <% sanet_demo nonsense %>\n    ~~~\n',
    "- item\n\n        <% sanet_demo %>\n",
    "!!! note\n    Text.\n\nText.\n\n    <% sanet_demo %>\n",  # the admonition has ended
])
def test_code_in_containers_stays_literal(markdown):
    text, found = extract(markdown)
    assert found == []
    assert text == markdown


def test_first_line_numbers_the_tags_and_errors():
    _, found = extract_from("x\n\n<% sanet_demo %>\n", first_line=5)
    assert found[0].line == 7
    with pytest.raises(tags.TagError) as error:
        extract_from("x\n<% sanet_dmeo %>\n", first_line=5)
    assert error.value.line == 6


def extract_from(text, first_line):
    return tags.extract(text, tags.SPECS, first_line=first_line)


def test_inline_placeholder_is_raw_html():
    text, found = extract("## Results <% cite park2019sanet %>\n")
    assert text == f"## Results {found[0].placeholder}\n"
    assert found[0].placeholder == f'<span data-sanet-tag="{tags.TOKEN}-0"></span>'


def test_negative_zero_strength_is_zero():
    _, found = extract('<% sanet_demo strength="-0" %>\n')
    assert str(found[0].attributes["strength"]) == "0.0"


@pytest.mark.parametrize("markdown, line, message", [
    ('<% sanet_demo id="a" %>\n\n<% sanet_demo id="a" %>\n', 3, 'id "a" is used twice on this page (first on line 1)'),
    ("<% row %>\n<% row %>\n", 2, "row inside the row opened on line 1"),
    ("<% endrow %>\n", 1, "endrow without a row before it"),
    ("x\n<% row %>\n", 2, "row without an endrow after it"),
])
def test_page_checks(markdown, line, message):
    _, found = extract(markdown)
    with pytest.raises(tags.TagError) as error:
        tags.check_page(found)
    assert (error.value.line, error.value.message) == (line, message)


def test_demo_ids_against_the_page():
    """A default id skips the ids the page has (a heading "Sanet demo 1"); a given one that collides is an error."""
    _, found = extract('<% sanet_demo %>\n\n<% sanet_demo id="sanet-demo-2" %>\n\n<% sanet_demo %>\n')
    html = '<h2 id="sanet-demo-1">Sanet demo 1</h2>' + "".join(f"<p>{t.placeholder}</p>" for t in found)
    tags.settle_ids(html, found)
    assert [t.attributes["id"] for t in found] == ["sanet-demo-3", "sanet-demo-2", "sanet-demo-4"]
    _, found = extract('# T\n\n<% sanet_demo id="results" %>\n')
    with pytest.raises(tags.TagError) as error:
        tags.settle_ids('<h2 id="results">Results</h2>', found)
    assert error.value.line == 3 and 'id "results" is already the id of a heading' in error.value.message


@pytest.mark.parametrize("markdown, line, message", [
    ("x\n<% sanet_demo size=\"3\" %>\n", 2,
     "unknown attribute 'size' for 'sanet_demo' (known attributes: content, contents, id, keep_colors, max_size, mix, passes, strength, style, style2, styles, webcam)"),
    ("<% sanet_dmeo %>\n", 1, "unknown tag 'sanet_dmeo' (known tags: cite, endrow, figure, row, sanet_architecture"),
    ("\n\n<% %>\n", 3, "malformed tag '<% %>': expected a tag name after '<%'"),
    ("<% sanet_demo max_size=512 %>\n", 1, "malformed attribute in 'sanet_demo' at 'max_size=512': expected key=\"value\""),
    ("<% sanet_demo max_size=\"big\" %>\n", 1, "'sanet_demo' attribute max_size=\"big\": expected a whole number from 32 to 1024"),
    ("<% sanet_demo max_size=\"8\" %>\n", 1, "'sanet_demo' attribute max_size=\"8\": expected a whole number from 32 to 1024"),
    ("<% sanet_demo strength=\"2\" %>\n", 1, "'sanet_demo' attribute strength=\"2\": expected a number from 0 to 1"),
    ("<% sanet_demo id=\"9 lives\" %>\n", 1, "'sanet_demo' attribute id=\"9 lives\": expected a letter followed by"),
    ("<% sanet_demo id=\"a\" id=\"b\" %>\n", 1, "attribute 'id' given twice in 'sanet_demo'"),
    ("a\nb\n<% sanet_demo\n%>\n", 3, "malformed tag: '<%' without a closing '%>' on the same line"),
    ("Text <% sanet_demo %> text\n", 1, "'sanet_demo' must stand alone on its line"),
])
def test_errors_name_line_and_expectation(markdown, line, message):
    with pytest.raises(tags.TagError) as error:
        extract(markdown)
    assert error.value.line == line
    assert message in error.value.message


def test_substitute_replaces_paragraph():
    _, found = extract("<% sanet_demo %>\n")
    html = f"<h1>T</h1>\n<p>{found[0].placeholder}</p>\n"
    assert tags.substitute(html, found, lambda tag: "<div>demo</div>") == "<h1>T</h1>\n<div>demo</div>\n"


def test_substitute_many_tags():
    """2,100 tags, block and inline: every placeholder replaced by its own tag's HTML, each rendered once."""
    markdown = "".join(f"Text <% cite k{i} %> and <% cite k{i}b %>.\n<% sanet_architecture %>\n" for i in range(700))
    text, found = extract(markdown)
    assert len(found) == 2100
    # What Markdown makes of it: the inline placeholders as they are, each block one in a paragraph.
    html = "\n".join(f"<p>{line.strip()}</p>" for line in text.split("\n") if line.strip())
    calls = []

    def render(tag):
        calls.append(tag.index)
        return f"<div>{tag.index}</div>" if tag.block else f"[{tag.attributes['key']}]"

    out = tags.substitute(html, found, render)
    assert sorted(calls) == list(range(2100))
    assert tags.leftover(out) is None and tags.TOKEN not in out and "data-sanet-tag" not in out
    assert "<p>Text [k699] and [k699b].</p>\n<div>2099</div>" in out


def test_leftover_placeholders():
    block, inline = tags.BLOCK_PLACEHOLDER.format(12), tags.INLINE_PLACEHOLDER.format(3)
    assert tags.leftover(f"<p>{block}</p>") == f"<p>{block}</p>"
    assert tags.leftover(f"<h2>A {inline}</h2>") == inline
    assert tags.leftover("<p>no tags</p>") is None
    # What the placeholders looked like before they carried the token is an author's text.
    assert tags.leftover('<p>SANETTAG12X</p><h2>A <span data-sanet-tag="3"></span></h2>') is None


# -- issue 19: where tags sit, placeholders, scale -----------------------------------------------

@pytest.mark.parametrize("markdown, prefix", [
    ("> <% sanet_demo %>\n", "> "),
    ("> Text.\n> <% sanet_demo %>\n> More.\n", "> "),
    ("> > <% sanet_demo %>\n", "> > "),
    (">    <% sanet_demo %>\n", "> "),  # indented by 3 more: still not code
    ("> - item\n>     <% sanet_demo %>\n", ">     "),
    ("- item\n\n    > <% sanet_demo %>\n", "    > "),
    ("[^1]: A note.\n\n    <% sanet_demo %>\n", "    "),
    ("[^1]: A note.\n    <% sanet_demo %>\n    After.\n", "    "),
    ("Term\n:   Definition\n    <% sanet_demo %>\n", "    "),
    ("Term\n\n:   Definition\n\n    <% sanet_demo %>\n", "    "),
])
def test_block_tags_in_blockquotes_footnotes_definitions(markdown, prefix):
    """The placeholder keeps the blockquote's markers and the container's indentation, with one
    blank line (of that blockquote) around it, never two in a row (two would end a footnote)."""
    text, found = extract(markdown)
    assert len(found) == 1 and found[0].block
    lines = text.split("\n")
    at = lines.index(prefix + found[0].placeholder)
    assert not lines[at - 1].replace(">", "").strip() and not lines[at + 1].replace(">", "").strip()
    assert lines[at - 2].replace(">", "").strip() or at - 2 < 0
    assert "\n\n\n" not in text.replace(">", "").replace(" ", "")


@pytest.mark.parametrize("markdown", [
    "- <% sanet_demo %>\n- b\n",
    "1. <% sanet_demo %>\n",
    "[^1]: <% sanet_demo %>\n",
    "Term\n:   <% sanet_demo %>\n",
    "> - <% sanet_demo %>\n",
])
def test_block_tag_right_after_an_item_marker(markdown):
    """The first thing in a list item, a footnote or a definition: the placeholder stays in place."""
    text, found = extract(markdown)
    assert len(found) == 1 and found[0].block
    assert text == markdown.replace("<% sanet_demo %>", found[0].placeholder)


@pytest.mark.parametrize("markdown", [
    "<!-- <% sanet_demo %> -->\n",
    "Text <!-- <% cite park2019sanet %> --> text.\n",
    "<!--\n\n<% sanet_demo %>\n\n<% cite park2019sanet %>\n-->\n",
    "<!-- <% sanet_dmeo %> <% nonsense -->\n",  # a comment's tags are not even read
    "> <!-- <% sanet_demo %>\n> -->\n",
    "- item\n\n    <!-- <% sanet_demo %> -->\n",
    ">     <% sanet_demo %>\n",  # indented code inside a blockquote
    "> ```\n> <% sanet_demo %>\n> ```\n",  # a fence inside a blockquote
])
def test_tags_in_html_comments_and_quoted_code_do_nothing(markdown):
    text, found = extract(markdown)
    assert found == []
    assert text == markdown


def test_comment_rules():
    """A comment ends at its first '-->'; an '<!--' without any '-->' after it is text (Markdown
    shows it), so the tags after it work; a comment inside inline code is code."""
    _, found = extract("<!-- a --> <% cite a %> <!-- <% cite b %> --> <% cite c %>\n")
    assert [t.attributes["key"] for t in found] == ["a", "c"]
    _, found = extract("An unclosed <!-- comment <% cite a %>\n\n<% sanet_demo %>\n")
    assert [t.name for t in found] == ["cite", "sanet_demo"]
    _, found = extract("Code: `<!--` <% cite a %>\n\nand `-->` <% cite b %>\n")
    assert [t.attributes["key"] for t in found] == ["a", "b"]
    _, found = extract("```\n<!--\n```\n\n<% cite a %>\n\n-->\n")  # '<!--' in a fence is code
    assert len(found) == 1
    # A '-->' in a fence closes nothing (Markdown reads fences first): this '<!--' is text.
    _, found = extract("<!--\n```\n-->\n```\n<% cite a %>\n")
    assert len(found) == 1


@pytest.mark.parametrize("markdown, keys", [
    ("`` ` <% cite a %> `` <% cite b %>\n", ["b"]),  # a span closes at a run of as many backticks
    ("` <% cite a %> `` <% cite b %> `\n", []),
    ("Text ``` <% cite a %>\n", ["a"]),  # a run that nothing closes is text
    ('<% figure src="a.png" caption="Use `x`" %>\n', None),  # backticks inside a tag are its text
])
def test_inline_code_spans(markdown, keys):
    _, found = extract(markdown)
    if keys is None:
        assert [t.name for t in found] == ["figure"]
    else:
        assert [t.attributes["key"] for t in found] == keys


def test_placeholders_cannot_collide_with_an_authors_text():
    """What the placeholders looked like before (SANETTAG0X, a span data-sanet-tag="0") is text."""
    markdown = ('SANETTAG0X and <span data-sanet-tag="1"></span>\n\n```\nSANETTAG0X\n```\n\n'
                '<% sanet_demo %>\n\nClaim <% cite a %>.\n\n## Title <% cite a %>\n')
    text, found = extract(markdown)
    assert tags.TOKEN.isalnum() and len(tags.TOKEN) >= 12
    assert all(tags.TOKEN in tag.placeholder for tag in found)
    html = text.replace("<% ", "")
    numbers = tags.placeholder_numbers(f"<p>{html}</p>")
    assert numbers == {0, 1, 2}
    out = tags.substitute(f"<p>{text}</p>", found, lambda tag: f"<{tag.name}>")
    assert "SANETTAG0X" in out and '<span data-sanet-tag="1"></span>' in out and "<sanet_demo>" in out
    # In a heading an inline tag is raw HTML (the toc strips it); elsewhere a word.
    assert found[1].placeholder == tags.WORD_PLACEHOLDER.format(1)
    assert found[2].placeholder == tags.INLINE_PLACEHOLDER.format(2)
    _, found = extract("Title <% cite a %>\n=====\n")
    assert found[0].placeholder == tags.INLINE_PLACEHOLDER.format(0)


def test_footnote_backref_stays_after_the_demo():
    _, found = extract("[^1]: <% sanet_demo %>\n")
    html = (f'<li id="fn:1"><p>{found[0].placeholder}&#160;<a class="footnote-backref" href="#fnref:1" '
            f'title="Back">&#8617;</a></p></li>')
    assert tags.substitute(html, found, lambda tag: "<div>demo</div>") == (
        '<li id="fn:1"><div>demo</div><p><a class="footnote-backref" href="#fnref:1" title="Back">&#8617;</a></p></li>')


def test_long_lines_scan_in_linear_time():
    """A long line of '<%' (quadratic before: each '<%' searched the rest of the line for '%>'),
    of backticks, of comments, of tags: correct results. Run in a subprocess with a generous
    limit, so that a return of the quadratic scan fails instead of hanging the suite; the time is
    not asserted."""
    script = """if True:
        from mkdocs_sanet import tags
        def error(text):
            try:
                tags.extract(text, tags.SPECS)
            except tags.TagError as error:
                return error.line, error.message
        assert error("x\\n" + "<% " * 300000) == (2, "malformed tag: '<%' without a closing '%>' on the same line")
        line, message = error("<% " * 300000 + "%>")
        assert line == 1 and message.startswith("malformed tag '<% <% ") and len(message) < 200, message
        _, found = tags.extract("x " + "`" * 300000 + " " + "` `` " * 100000 + " <% cite a %>", tags.SPECS)
        assert len(found) == 1
        _, found = tags.extract(" ".join("<!-- <% cite a %> --> <% cite b %>" for _ in range(100000)), tags.SPECS)
        assert len(found) == 100000 and {t.attributes["key"] for t in found} == {"b"}
        _, found = tags.extract(" ".join("<% cite a %>" for _ in range(100000)), tags.SPECS)
        assert len(found) == 100000
        print("ok")
    """
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(Path(tags.__file__).parent.parent)})
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_many_tags_on_one_page():
    """10,000 demos and 100,000 citations on one page: each found once, each placeholder its own."""
    text, found = extract("".join("<% sanet_demo %>\n\n" for _ in range(10000)))
    assert len(found) == 10000 and len({t.placeholder for t in found}) == 10000
    assert text.count(tags.TOKEN) == 10000
    text, found = extract("\n\n".join(" ".join("Claim <% cite a %>." for _ in range(10)) for _ in range(10000)))
    html = tags.substitute(text, found, lambda tag: f"[{tag.index}]")
    assert len(found) == 100000 and tags.leftover(html) is None and html.count("[") == 100000
