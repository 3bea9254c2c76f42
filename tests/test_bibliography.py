"""The `bibliography:` BibTeX file as an adversarial author pastes it (issue 19): every error of
reading or formatting it is one line naming the file, the entry and its line, never a traceback;
keys match as pybtex matches them (ignoring case); @string macros that double each other are
refused before they are joined; the common LaTeX of fields is rendered, and stays escaped."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT, mkdocs_build, write_site

GOOD = r"""
@article{Park2019,
  author  = {Park, Dae Young and Lee, Kwang Hee},
  title   = {Arbitrary Style Transfer with Style-Attentional Networks},
  journal = {CVPR},
  year    = {2019}
}
"""


def bib_site(root, bib: str | bytes, page: str):
    """A site citing from `refs.bib` (written as given: text, or bytes for another encoding)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "refs.bib"
    if isinstance(bib, bytes):
        path.write_bytes(bib)
    else:
        path.write_text(textwrap.dedent(bib), encoding="utf-8")
    return write_site(root, root / "cache", {"index.md": page}, plugin_options=f"bibliography: {path}")


def build_error(root, bib, page="# Refs\n\nSee <% cite Park2019 %>.\n") -> str:
    """The build's error: one line, no traceback."""
    result = mkdocs_build(bib_site(root, bib, page), check=False)
    assert result.returncode != 0, "the build should fail"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR") and "refs.bib" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def references(root) -> str:
    html = (root / "site" / "index.html").read_text()
    return re.search(r'<ol class="sanet-references">(.*?)</ol>', html, re.S).group(1)


def test_a_key_cited_in_another_case_is_the_bibs_entry(tmp_path):
    """pybtex matches keys ignoring case: so does the page, with the .bib's spelling in its ids."""
    mkdocs_build(bib_site(tmp_path, GOOD, "# Refs\n\nSee <% cite park2019 %>, <% cite PARK2019 %>.\n"))
    html = (tmp_path / "site" / "index.html").read_text()
    assert html.count('href="#ref-Park2019"') == 2
    assert 'id="cite-Park2019-1">[1]</a>' in html and 'id="cite-Park2019-2">[1]</a>' in html
    items = re.findall(r'<li id="ref-([^"]*)">', references(tmp_path))
    assert items == ["Park2019"], items
    assert "Arbitrary style transfer" in references(tmp_path)


def test_duplicate_keys(tmp_path):
    error = build_error(tmp_path, GOOD + "\n@misc{park2019,\n  title = {Again}\n}\n")
    assert "refs.bib:9: entry 'park2019': the key is already used at line 2" in error, error
    assert "expected each key once" in error


def test_a_latin1_file(tmp_path):
    bib = "@misc{Park2019,\n  author = {M\u00fcller, J\u00fcrgen},\n  title = {T}\n}\n".encode("latin-1")
    error = build_error(tmp_path, bib)
    assert "mkdocs.yml: sanet: bibliography:" in error
    assert "refs.bib:2: entry 'Park2019': byte 0xfc is not UTF-8" in error, error
    assert "expected a UTF-8 file" in error


def test_a_missing_required_field(tmp_path):
    bib = "@article{Park2019,\n  author = {Park, Dae Young},\n  title = {T},\n  year = {2019}\n}\n"
    error = build_error(tmp_path, bib, page="# Refs\n\nText.\n\nSee <% cite Park2019 %>.\n")
    assert "docs/index.md:5: " in error, error  # the citation's page and line
    assert "refs.bib:1: entry 'Park2019': no journal field; expected one in an @article" in error, error


def test_an_unknown_entry_type(tmp_path):
    error = build_error(tmp_path, "@bibliography{Park2019,\n  title = {T}\n}\n")
    assert "refs.bib:1: entry 'Park2019': unknown entry type @bibliography; expected one of @article," in error
    assert "@misc" in error


def test_a_malformed_name(tmp_path):
    bib = "\n@misc{Park2019,\n  author = {Park, Dae, Young, Jr},\n  title = {T}\n}\n"
    error = build_error(tmp_path, bib)
    assert "refs.bib:2: entry 'Park2019': the author 'Park, Dae, Young, Jr' has too many commas" in error, error
    assert "expected 'Last, First'" in error


def test_an_undefined_string_and_a_syntax_error(tmp_path):
    error = build_error(tmp_path / "a", "@misc{Park2019,\n  title = nowhere\n}\n")
    assert "refs.bib:2: entry 'Park2019': undefined @string 'nowhere'" in error, error
    error = build_error(tmp_path / "b", "@misc{Park2019,\n  title = {T},\n  year {2019}\n}\n")
    assert "refs.bib:3: entry 'Park2019': syntax error: '=' expected" in error, error


def test_crossrefs_in_a_circle(tmp_path):
    bib = ("@inproceedings{Park2019,\n  author = {A, B},\n  title = {T},\n  crossref = {cvpr}\n}\n"
           "@proceedings{cvpr,\n  title = {CVPR},\n  year = {2019},\n  crossref = {park2019}\n}\n")
    error = build_error(tmp_path, bib)
    assert "refs.bib:1: entry 'Park2019': crossrefs go round in a circle (Park2019 -> cvpr -> Park2019)" in error


DOUBLING = "\n".join(['@string{m0 = "xx"}'] + [f"@string{{m{i} = m{i - 1} # m{i - 1}}}" for i in range(1, 29)]
                     + ["@misc{Park2019, title = m28}", ""])


def test_string_macros_that_double_each_other_are_refused(tmp_path):
    """29 lines that pybtex would join into 4 GiB: refused at the macro that passes the limit, under
    a memory limit of 1 GiB (today's main runs out of it)."""
    path = tmp_path / "refs.bib"
    path.write_text(DOUBLING)
    script = textwrap.dedent(f"""\
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from mkdocs_sanet.citations import Bibliography, BibliographyError
        try:
            Bibliography(__import__("pathlib").Path({str(path)!r}))
        except BibliographyError as error:
            print(error)
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refs.bib:20: @string 'm19' expands to 1,048,576 characters" in result.stdout, result.stdout
    assert "expected at most 1,000,000" in result.stdout


def test_string_macros_used_over_and_over_are_refused(tmp_path):
    """Each value under the limit, but thousands of them: the file's total is bounded too."""
    bib = "\n".join(['@string{m0 = "xx"}'] + [f"@string{{m{i} = m{i - 1} # m{i - 1}}}" for i in range(1, 19)]
                    + [f"@misc{{k{j}, title = m18}}" for j in range(70)] + [GOOD])
    error = build_error(tmp_path, bib)
    assert "entry 'k59': field 'title': the file's values expand to more than 32,000,000 characters" in error, error


LATEX = r"""
@misc{Park2019,
  author       = {M{\"u}ller, J{\'e}r{\^o}me and \"Ozil, \'Emile and G\"odel, Kurt},
  title        = {A \emph{Big} \textbf{bold} \textit{slanted} idea, \foo{plain} and {\em old style}},
  howpublished = {\url{https://example.org/a_b%20c~d--e}},
  note         = {See \href{https://example.org/page}{the page}, \unknowncommand{its text} \LaTeX},
  year         = {2019}
}
@misc{hostile,
  title = {\emph{<script>alert(1)</script>} \url{javascript:alert(2)} \href{javascript:alert(3)}{click}},
  note  = {\textbf{<img src=x onerror=alert(4)>} \href{https://x.org/"><img src=x>}{x}}
}
"""


@pytest.fixture(scope="module")
def latex_refs(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("latex")
    mkdocs_build(bib_site(root, LATEX, "# Refs\n\nSee <% cite Park2019 %> and <% cite hostile %>.\n"))
    return references(root)


def test_latex_links_are_links(latex_refs):
    # \url{...}: today "\url https://..."; the URL as written (% ~ -- kept), in the link and its text.
    assert ('<a href="https://example.org/a_b%20c~d--e" rel="noopener">'
            '<span class="bibtex-protected">https://example.org/a_b%20c~d--e</span></a>') in latex_refs, latex_refs
    assert re.search(r'<a href="https://example.org/page" rel="noopener">(<span[^>]*>)?the page', latex_refs)
    assert "\\url" not in latex_refs and "\\href" not in latex_refs and "url https" not in latex_refs


def test_latex_font_commands_and_accents(latex_refs):
    assert re.search(r"<em>(<span[^>]*>)?Big", latex_refs), latex_refs
    assert re.search(r"<strong>(<span[^>]*>)?bold", latex_refs)
    assert re.search(r"<i>(<span[^>]*>)?slanted", latex_refs)
    assert re.search(r"<em>old style</em>", latex_refs)
    for name in ("Jérôme", "Müller", "Özil", "Émile", "Gödel"):
        assert name in re.sub(r"<[^>]+>", "", latex_refs), name


def test_unknown_latex_commands_show_their_text(latex_refs):
    text = re.sub(r"<[^>]+>", "", latex_refs)
    assert "plain" in text and "its text" in text and "LaTeX" in text
    assert "\\" not in latex_refs and "unknowncommand" not in latex_refs and "foo" not in latex_refs


def test_latex_stays_escaped(latex_refs):
    assert "<script" not in latex_refs and "<img" not in latex_refs, latex_refs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in latex_refs
    assert "javascript:" not in re.findall(r'href="([^"]*)"', latex_refs)
    assert all(href.startswith(("https://", "http://")) for href in re.findall(r'href="([^"]*)"', latex_refs))
    assert 'href="https://x.org/%22%3E%3Cimg%20src=x%3E"' in latex_refs
