"""Citations: `<% cite key %>` against a BibTeX file, numbered by first use on the page, and a
references section at the end of the page, formatted by pybtex's plain style.

BibTeX is pasted from anywhere, so nothing in it reaches the page unescaped: text is escaped,
links (url, doi, eprint, and any other pybtex makes) are http(s) only, percent-encoded and
escaped as attribute values; any other link is shown as text.

Nothing in the file ends in a traceback either: every error of reading or formatting it is a
BibliographyError of one line, `FILE:LINE: entry 'KEY': what is wrong; what was expected`.
Reading is bounded: `@string` macros are joined by pybtex, so macros that repeat each other
double at each line; a value longer than MAX_VALUE characters, or values that add up to more
than MAX_TOTAL, are refused before they are joined. The LaTeX in fields is read here (see
`latex_text`), not by pybtex (which keeps every command as text: `\\url https://...`)."""

from __future__ import annotations

import codecs
import contextlib
import html
import re
import threading
import unicodedata
from pathlib import Path
from urllib.parse import quote, urlsplit

# Characters a URL may keep as they are; everything else (quotes, <, >, spaces...) is percent-encoded.
URL_SAFE = "/:?#[]@!$&'()*+,;=%~-._"
# Links pybtex's plain style builds as prefix + the field as written: the field is encoded as one path.
BUILT_LINKS = ("https://doi.org/", "https://arxiv.org/abs/")
TAGS = {"em", "strong", "b", "i", "sup", "sub", "code"}

# The longest value (a field, or a @string macro) once its macros are joined, in characters, and all
# of a file's values together (or twice the file's own length, when that is more).
MAX_VALUE = 1_000_000
MAX_TOTAL = 32_000_000
# Entry types BibTeX knows under another name than pybtex's plain style.
TYPE_ALIASES = {"conference": "inproceedings"}


class BibliographyError(ValueError):
    pass


class _Refused(Exception):
    """A value over the size limits, raised from inside pybtex's scanner (which would otherwise join it)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


def _short(text: str, limit: int = 80) -> str:
    """A piece of the file quoted in a message: one line, and not all of a long value."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _entry(key: str | None) -> str:
    return f"entry '{_short(key)}': " if key else ""


def _reader_class():
    from pybtex.database.input.bibtex import LowLevelParser

    class Reader(LowLevelParser):
        """pybtex's scanner, recording the line each command starts at and bounding each value."""

        kind = "entry"
        entry_line = 1
        expanded = 0
        max_total = MAX_TOTAL

        def parse_command(self):
            self.entry_line = self.lineno  # the scanner stands just after the command's '@'
            self.kind = "entry"
            return super().parse_command()

        def parse_string_body(self, body_end):
            self.kind = "string"
            return super().parse_string_body(body_end)

        def parse_preamble_body(self, body_end):
            self.kind = "preamble"
            return super().parse_preamble_body(body_end)

        def parse_value(self):
            super().parse_value()  # a list of parts: macros are references to one string until joined
            size = sum(map(len, self.current_value))
            if self.kind == "string":
                what = f"@string '{_short(self.current_field_name)}'"
            elif self.kind == "preamble":
                what = "@preamble"
            else:
                what = f"{_entry(self.current_entry_key)}field '{_short(self.current_field_name)}'"
            if size > MAX_VALUE:
                raise _Refused(self.lineno, (
                    f"{what} expands to {size:,} characters (@string macros that repeat each other?); "
                    f"expected at most {MAX_VALUE:,}"))
            self.expanded += size
            if self.expanded > self.max_total:
                raise _Refused(self.lineno, (
                    f"{what}: the file's values expand to more than {self.max_total:,} characters "
                    f"(@string macros used over and over?); expected at most that"))

    return Reader


def _parser_class():
    from pybtex.database import BibliographyDataError, InvalidNameString
    from pybtex.bibtex.utils import split_name_list, split_tex_string
    from pybtex.database.input.bibtex import Parser
    from pybtex.textutils import normalize_whitespace

    Reader = _reader_class()

    class BibParser(Parser):
        """pybtex's BibTeX parser, reading through Reader, stopping at the first error (whatever
        pybtex's strict mode is), with the line of each entry kept in `lines` and a duplicate key
        named with both of its lines."""

        def __init__(self, text_length: int):
            super().__init__(encoding="utf-8")
            from pybtex.utils import CaseInsensitiveDict

            self.lines = CaseInsensitiveDict()  # keys as pybtex matches them: ignoring case
            self.text_length = text_length
            self.reader = None

        def handle_error(self, error):
            raise error

        def parse_string(self, text):
            self.unnamed_entry_counter = 1
            self.reader = Reader(text, keyless_entries=self.keyless_entries, handle_error=self.handle_error,
                                 want_entry=self.data.want_entry, filename=self.filename, macros=self.macros)
            self.reader.max_total = max(MAX_TOTAL, 2 * self.text_length)
            for command, body in self.reader:
                kind = command.lower()
                if kind == "preamble":
                    self.process_preamble(*body)
                elif kind != "string":
                    self.process_entry(command, *body)
            return self.data

        def process_entry(self, entry_type, key, fields):
            line = self.reader.entry_line
            if key in self.lines:
                raise _Refused(line, (
                    f"entry '{_short(key)}': the key is already used at line {self.lines[key]} (keys are compared "
                    f"ignoring case, as pybtex does); expected each key once"))
            seen = set()
            for name, value in fields:
                if name.lower() in seen:
                    raise _Refused(line, (f"entry '{_short(key)}': the field '{_short(name)}' is given twice; "
                                          f"expected each field once"))
                seen.add(name.lower())
                if name in self.person_fields:
                    for person in split_name_list(normalize_whitespace("".join(value))):
                        if len(split_tex_string(person, ",")) > 3:
                            raise _Refused(line, (
                                f"entry '{_short(key)}': the {name} '{_short(person)}' has too many commas; expected "
                                f"'Last, First', 'Last, Jr, First' or 'First Last', names separated by ' and '"))
            fields = [(name, _unwrapped_url(name, value)) for name, value in fields]
            try:
                super().process_entry(entry_type, key, fields)
            except (InvalidNameString, BibliographyDataError) as error:
                raise _Refused(line, f"entry '{_short(key)}': {_short(error, 200)}") from None
            self.lines[key] = line
            entry = self.data.entries[key]
            entry.type = TYPE_ALIASES.get(entry.type, entry.type)

    return BibParser


def _unwrapped_url(name: str, value: list[str]) -> list[str]:
    r"""`url = {\url{https://...}}`, as some exports write it: the URL itself."""
    if name.lower() == "url":
        joined = "".join(value).strip()
        match = re.fullmatch(r"\\url\s*\{([^{}]*)\}", joined)
        if match:
            return [match.group(1)]
    return value


def _read_text(path: Path) -> str:
    """The file as text, or a BibliographyError naming the line (and entry) that is not UTF-8."""
    if path.exists() and not path.is_file():
        raise BibliographyError(f"{path}: expected a BibTeX file (it is not a regular file)")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BibliographyError(f"{path}: not a readable BibTeX file ({error.strerror or error})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        at = data.rfind(b"@", 0, error.start)
        found = re.match(rb"@\s*[A-Za-z]+\s*[{(]\s*([^\s,}]+)\s*,", data[at:at + 300]) if at >= 0 else None
        key = found.group(1).decode("utf-8", "replace") if found else None
        raise BibliographyError(
            f"{path}:{line}: {_entry(key)}byte 0x{data[error.start]:02x} is not UTF-8 (a Latin-1 or Windows "
            f"file?); expected a UTF-8 file: save it as UTF-8") from None


class Bibliography:
    def __init__(self, path: Path):
        from pybtex.scanner import PybtexSyntaxError
        from pybtex.exceptions import PybtexError

        self.path = path
        text = _read_text(path)
        parser = _parser_class()(len(text))
        parser.filename = str(path)
        try:
            self.database = parser.parse_string(text)
        except _Refused as error:
            raise BibliographyError(f"{path}:{error.line}: {error.message}") from None
        except PybtexSyntaxError as error:
            raise BibliographyError(f"{path}:{error.lineno}: {_entry(getattr(error.parser, 'current_entry_key', None))}"
                                    f"{_syntax(error)}") from None
        except (PybtexError, RecursionError) as error:
            reader = parser.reader
            line = reader.entry_line if reader else 1
            raise BibliographyError(f"{path}:{line}: not a readable BibTeX file ({_short(error, 200)})") from None
        self.lines = parser.lines
        self._formatted: dict[str, str] = {}  # by the .bib's spelling of the key
        self._style = None

    def __contains__(self, key: str) -> bool:
        return key in self.database.entries

    def key(self, cited: str) -> str:
        """The .bib's spelling of a cited key: pybtex matches keys ignoring case."""
        return self.database.entries[cited].key

    def check(self, cited: str) -> str:
        """Formats the entry of a cited key (once), and returns its key as the .bib spells it; a
        BibliographyError if pybtex's plain style cannot format it."""
        key = self.key(cited)
        if key not in self._formatted:
            self._formatted[key] = self._format(key)
        return key

    def formatted(self, keys: list[str]) -> dict[str, str]:
        """HTML of each entry, pybtex's plain style."""
        return {k: self._formatted[self.check(k)] for k in keys}

    def _format(self, key: str) -> str:
        from pybtex.exceptions import PybtexError
        from pybtex.plugin import find_plugin
        from pybtex.style.template import FieldIsMissing

        entry = self.database.entries[key]
        where = f"{self.path}:{self.lines.get(key, 1)}: entry '{_short(key)}'"
        if self._style is None:  # pybtex looks its plugins up in the installed packages' entry points: once
            self._style = find_plugin("pybtex.style.formatting", "plain")()
        style = self._style
        known = _entry_types(style)
        if entry.type not in known:
            raise BibliographyError(f"{where}: unknown entry type @{_short(entry.original_type)}; expected one of "
                                    f"{', '.join('@' + name for name in sorted(known))}")
        self._check_crossrefs(key, where)
        try:
            with _latex_fields():
                text = style.format_entry("", entry, bib_data=self.database).text
            return text.render(_safe_backend())
        except FieldIsMissing as error:
            raise BibliographyError(f"{where}: no {error.field_name} field; expected one in an "
                                    f"@{entry.type} (pybtex's plain style needs it)") from None
        except (PybtexError, RecursionError, ValueError, TypeError, KeyError, AttributeError) as error:
            why = f"{type(error).__name__}: {_short(error, 200)}"
            raise BibliographyError(f"{where}: pybtex could not format it ({why})") from None

    def _check_crossrefs(self, key: str, where: str) -> None:
        seen = [key]
        entry = self.database.entries[key]
        while "crossref" in entry.fields:
            target = entry.fields["crossref"]
            if target not in self.database.entries:
                raise BibliographyError(f"{where}: crossref '{_short(target)}' is not in the file; expected the key of "
                                        f"another entry")
            entry = self.database.entries[target]
            if entry.key.lower() in (k.lower() for k in seen):
                chain = _short(" -> ".join([*seen, entry.key]), 200)
                raise BibliographyError(f"{where}: crossrefs go round in a circle ({chain}); expected them to end")
            seen.append(entry.key)


def _syntax(error) -> str:
    message = error.args[0] if error.args else str(error)
    hints = {"premature end of file": "the file ends inside this entry; expected its closing } or )",
             "unbalanced braces": "unbalanced braces; expected each { closed by a } inside the value"}
    if error.error_type == "undefined string":
        return f"undefined @string '{_short(message)}'; expected it defined above, or the value in braces or quotes"
    return hints.get(message, f"{error.error_type}: {_short(message, 200)}")


def _entry_types(style) -> set[str]:
    return {name[len("get_"):-len("_template")] for name in dir(style)
            if name.startswith("get_") and name.endswith("_template")}


# -- LaTeX in fields --------------------------------------------------------------------------------

# pybtex turns a field (and each part of a name) into rich text with Text.from_latex, which keeps
# braces as protected text and LaTeX commands as they are. While the plugin formats an entry, its
# own reading takes that place (the lock: one formatting at a time, as the class is shared).
_LOCK = threading.Lock()


@contextlib.contextmanager
def _latex_fields():
    from pybtex import richtext

    with _LOCK:
        original = richtext.Text.__dict__["from_latex"]
        richtext.Text.from_latex = classmethod(lambda cls, latex: latex_text(latex))
        try:
            yield
        finally:
            richtext.Text.from_latex = original


# An accent command and the combining character it puts on the letter after it.
ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
           ".": "\u0307", "c": "\u0327", "v": "\u030c", "u": "\u0306", "H": "\u030b", "r": "\u030a",
           "k": "\u0328", "d": "\u0323", "b": "\u0331"}
LETTERS = {"ss": "ß", "o": "ø", "O": "Ø", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å",
           "AA": "Å", "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ", "dh": "ð", "DH": "Ð", "th": "þ", "TH": "Þ",
           "ng": "ŋ", "NG": "Ŋ", "LaTeX": "LaTeX", "TeX": "TeX", "BibTeX": "BibTeX", "ldots": "…",
           "dots": "…", "textendash": "–", "textemdash": "—", "textquoteright": "’", "textquoteleft": "‘"}
# Commands whose argument is a piece of text in a tag, and the old switches ({\em text}) that do the same.
FONT_COMMANDS = {"emph": "em", "textit": "i", "textsl": "i", "textbf": "strong", "texttt": "code",
                 "textsuperscript": "sup", "textsubscript": "sub"}
FONT_SWITCHES = {"em": "em", "it": "i", "itshape": "i", "sl": "i", "bf": "strong", "bfseries": "strong",
                 "tt": "code"}
# Commands that show nothing, with their argument (BibTeX's sorting trick).
SILENT = {"noopsort", "relax", "protect", "nocite"}
# Control symbols that stand for their character (\& \% ...), and those that stand for a space.
ESCAPED = set("&%$#_{}@/")
SPACES = {" ": " ", ",": "\u2009", ";": " ", "!": "", "\\": " ", "-": ""}
TOKENS = re.compile(r"\\([A-Za-z]+)\s*|\\(.)|\\$|(\{)|(\})|([^\\{}]+)", re.S)
PLAIN = [("---", "—"), ("--", "–"), ("~", "\u00a0"), ("``", "“"), ("''", "”")]


def _tree(latex: str) -> list:
    """The tokens of a field as a tree: str (text), ("cmd", name), ("sym", char), ("group", items, raw)."""
    root: list = []
    stack = [(root, 0)]
    for match in TOKENS.finditer(latex):
        word, symbol, opening, closing, text = match.groups()
        items = stack[-1][0]
        if word is not None:
            items.append(("cmd", word))
        elif symbol is not None:
            items.append(("sym", symbol))
        elif opening:
            group: list = []
            items.append(("group", group, ""))
            stack.append((group, match.end()))
        elif closing:
            if len(stack) == 1:
                items.append("}")  # an unbalanced brace: shown as it is
            else:
                group, start = stack.pop()
                parent = stack[-1][0]
                parent[-1] = ("group", group, latex[start:match.start()])
        elif text is not None:
            items.append(text)
    while len(stack) > 1:  # an unclosed group ends with the field
        group, start = stack.pop()
        stack[-1][0][-1] = ("group", group, latex[start:])
    return root


def _plain(text: str) -> str:
    for latex, character in PLAIN:
        text = text.replace(latex, character)
    return text


def _flat(items: list) -> str:
    """The text of a few tokens, for an accent's letter and a link's URL."""
    from pybtex.richtext import Text

    return str(Text(*_convert(items)))


def _accented(letter: str, accent: str) -> str:
    base = {"ı": "i", "ȷ": "j"}.get(letter[:1], letter[:1])
    return unicodedata.normalize("NFC", base + ACCENTS[accent]) + letter[1:] if base else ""


def _argument(items: list, i: int):
    """The group at items[i] (spaces before it skipped): (its tokens, its raw text, the next index), or None."""
    while i < len(items) and isinstance(items[i], str) and not items[i].strip():
        i += 1
    if i < len(items) and isinstance(items[i], tuple) and items[i][0] == "group":
        return items[i][1], items[i][2], i + 1
    return None


def _convert(items: list) -> list:
    from pybtex.richtext import HRef, Protected, String, Tag

    out: list = []
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if isinstance(item, str):
            out.append(String(_plain(item)))
            continue
        kind, name = item[0], item[1]
        if kind == "group":
            first = next((x for x in name if not (isinstance(x, str) and not x.strip())), None)
            if isinstance(first, tuple) and first[0] == "cmd" and first[1] in FONT_SWITCHES:
                rest = name[name.index(first) + 1:]
                out.append(Protected(Tag(FONT_SWITCHES[first[1]], *_convert(rest))))
            elif isinstance(first, tuple) and first[0] in ("cmd", "sym") and (first[1] in ACCENTS
                                                                               or first[1] in LETTERS):
                out.extend(_convert(name))  # {\"u}: a letter, as BibTeX sees it, not protected text
            else:
                out.append(Protected(*_convert(name)))
            continue
        if name in ACCENTS and (kind == "sym" or len(name) == 1):
            argument = _argument(items, i)
            if argument:
                letter, i = _flat(argument[0]), argument[2]
            elif i < len(items) and isinstance(items[i], str):
                letter, items[i] = items[i][:1], items[i][1:]  # \'e: the letter after it
            elif i < len(items) and isinstance(items[i], tuple) and items[i][0] == "cmd" and items[i][1] in LETTERS:
                letter, i = LETTERS[items[i][1]], i + 1
            else:
                letter = ""
            out.append(String(_accented(letter, name) if letter else ""))
        elif kind == "sym":
            out.append(String(name if name in ESCAPED else SPACES.get(name, name)))
        elif name in LETTERS:  # a word (\LaTeX) keeps its case, as {\LaTeX} would
            letters = String(LETTERS[name])
            out.append(Protected(letters) if len(LETTERS[name]) > 2 else letters)
        elif name == "url" and (argument := _argument(items, i)):
            url, i = argument[1].strip(), argument[2]
            out.append(HRef(url, Protected(String(url))))  # shown as written, even in a title
        elif name == "href" and (argument := _argument(items, i)):
            url, i = argument[1].strip(), argument[2]
            text = _argument(items, i)
            if text:
                i = text[2]
                out.append(HRef(url, Protected(*_convert(text[0]))))
            else:
                out.append(HRef(url, Protected(String(url))))
        elif name in FONT_COMMANDS and (argument := _argument(items, i)):
            i = argument[2]
            out.append(Tag(FONT_COMMANDS[name], Protected(*_convert(argument[0]))))
        elif name in SILENT:
            argument = _argument(items, i) if name == "noopsort" else None
            if argument:
                i = argument[2]
        elif argument := _argument(items, i):
            # Any other command with an argument: the argument's text, as BibTeX shows it.
            i = argument[2]
            out.append(Protected(*_convert(argument[0])))
        else:
            # Any other command without one: a symbol latexcodec knows (\copyright), or nothing.
            import latexcodec  # noqa: F401  (registers the codec)

            decoded = codecs.decode("\\" + name, "ulatex")
            if "\\" not in decoded:
                out.append(String(decoded))
    return out


def latex_text(latex: str):
    r"""The rich text (pybtex's) of a field's LaTeX: braces protect text from case changes, as in
    BibTeX; accents (\'e, \"{o}, {\"u}) and letters (\ss, \o) are Unicode; \url{}, \href{}{} are
    links (checked when they are rendered); \emph{}, \textbf{}, \textit{}, \texttt{} and {\em ...}
    are tags; any other command shows its argument, or nothing."""
    from pybtex.richtext import Text

    return Text(*_convert(_tree(latex)))


# -- HTML ---------------------------------------------------------------------------------------------

def safe_url(url: str) -> str | None:
    """An http(s) URL made safe for an href (percent-encoded, then attribute-escaped), or None."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    for prefix in BUILT_LINKS:
        if url.startswith(prefix):
            return html.escape(prefix + quote(url[len(prefix):], safe="/:;()"), quote=True)
    return html.escape(quote(url, safe=URL_SAFE), quote=True)


def _safe_backend():
    """pybtex's HTML backend, with links checked and escaped and only harmless tags."""
    from pybtex.backends.html import Backend

    class SafeBackend(Backend):
        def format_str(self, text):
            return html.escape(text, quote=True)

        def format_protected(self, text):
            return f'<span class="bibtex-protected">{text}</span>'

        def format_tag(self, tag, text):
            if tag not in TAGS:
                return text
            return f"<{tag}>{text}</{tag}>" if text else ""

        def format_href(self, url, text, external=False):
            href = safe_url(url)
            if href is None:
                return text
            return f'<a href="{href}" rel="noopener">{text}</a>' if text else ""

    return SafeBackend()


class PageCitations:
    """The numbering of one page's citations."""

    def __init__(self):
        self.order: list[str] = []
        self.numbers: dict[str, int] = {}
        self.uses: dict[str, int] = {}

    def cite(self, key: str) -> str:
        """The link of one citation; each has its own id: cite-<key>-<its rank among the key's citations>."""
        if key not in self.numbers:
            self.order.append(key)
            self.numbers[key] = len(self.order)
        number = self.numbers[key]
        self.uses[key] = self.uses.get(key, 0) + 1
        return (f'<a class="sanet-cite" href="#ref-{html.escape(key)}" '
                f'id="cite-{html.escape(key)}-{self.uses[key]}">[{number}]</a>')

    def references(self, bibliography: Bibliography) -> str:
        if not self.order:
            return ""
        formatted = bibliography.formatted(self.order)
        items = "".join(f'<li id="ref-{html.escape(key)}">{formatted[key]}</li>' for key in self.order)
        return f'<h2 id="references">References</h2><ol class="sanet-references">{items}</ol>'
