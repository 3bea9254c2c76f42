"""The tag syntax: what is a tag, what stays literal, and the errors."""

from __future__ import annotations

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


@pytest.mark.parametrize("markdown, line, message", [
    ("x\n<% sanet_demo size=\"3\" %>\n", 2,
     "unknown attribute 'size' for 'sanet_demo' (known attributes: content, id, max_size, strength, style)"),
    ("<% sanet_dmeo %>\n", 1, "unknown tag 'sanet_dmeo' (known tags: cite, endrow, figure, row, sanet_architecture"),
    ("\n\n<% %>\n", 3, "malformed tag '<% %>': expected a tag name after '<%'"),
    ("<% sanet_demo max_size=512 %>\n", 1, "malformed attribute in 'sanet_demo' at 'max_size=512': expected key=\"value\""),
    ("<% sanet_demo max_size=\"big\" %>\n", 1, "'sanet_demo' attribute max_size=\"big\": expected a whole number from 32 to 4096"),
    ("<% sanet_demo max_size=\"8\" %>\n", 1, "'sanet_demo' attribute max_size=\"8\": expected a whole number from 32 to 4096"),
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
