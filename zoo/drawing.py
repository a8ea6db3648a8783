"""What zoo's HTML pages share: matplotlib figures drawn with a font that has Hangul, PNG
pictures embedded in the page, escaping, the style sheet.

`zoo report` (zoo.html_report) and `zoo compare --html` (zoo.compare_page) draw through `draw`,
which registers the Korean font that arrives with zoo's dependencies (Noto Sans KR, from the
`pylopdf-fonts-ko` wheel) with matplotlib's font manager when a picture is drawn, never when zoo
is imported. Without that package a system font with Hangul is used where one is installed, and
the page says when some character could not be drawn.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import io
import os
import tempfile
import unicodedata
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs

T = TypeVar("T")

# The font drawn for Hangul: Noto Sans KR (SIL Open Font License 1.1), shipped by this package.
KOREAN_FONT_PACKAGE = "pylopdf_fonts_ko"
KOREAN_FONT_FILE = "NotoSansKR-Regular.otf"

# Fonts with Hangul (and other CJK) glyphs, tried after the bundled one when installed.
CJK_FONTS = (
    "Noto Sans CJK KR",
    "Noto Sans KR",
    "NanumGothic",
    "Malgun Gothic",
    "Apple SD Gothic Neo",
    "AppleGothic",
    "UnDotum",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
)

MISSING_GLYPHS_NOTICE = (
    '<p class="notice">Some characters of the label or model names could not be drawn in the '
    "pictures: no font on this machine has them (install zoo's dependency pylopdf-fonts-ko, or "
    "a system font such as Noto Sans CJK). The tables show every name.</p>"
)


@attrs.frozen(kw_only=True)
class Picture:
    """A drawn picture: its file name, what it shows (the alt text) and its PNG bytes."""

    name: str
    alt: str
    png: bytes


def bundled_font() -> Path | None:
    """The Korean font file that zoo's dependencies ship, or None where it is not installed.

    Found without importing the package that holds it."""
    spec = importlib.util.find_spec(KOREAN_FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / KOREAN_FONT_FILE
    return path if path.is_file() else None


def fonts() -> list[str]:
    """The font families to draw with, in order: matplotlib's default (Latin, digits), the
    bundled Korean font (registered now), then any CJK font the system has. matplotlib takes
    each character from the first family of the list that has it."""
    from matplotlib import font_manager, rcParams

    manager = font_manager.fontManager
    families = [*rcParams["font.sans-serif"][:1]]
    path = bundled_font()
    if path is not None:
        if not any(entry.fname == str(path) for entry in manager.ttflist):
            manager.addfont(str(path))
        families.append(font_manager.ttfFontProperty(font_manager.get_font(path)).name)
    installed = {entry.name for entry in manager.ttflist}
    families += [f for f in CJK_FONTS if f in installed and f not in families]
    return families


def draw(make: Callable[[], T]) -> tuple[T, bool]:
    """Call `make` (which draws figures) with zoo's fonts, leaving matplotlib's settings as
    they were; return what it returned and whether some glyph was missing from every font.
    Other warnings are passed on."""
    import matplotlib

    with (
        warnings.catch_warnings(record=True) as caught,
        matplotlib.rc_context({"font.family": fonts()}),
    ):
        warnings.simplefilter("always")
        result = make()
    missing = [w for w in caught if "missing from" in str(w.message)]
    for w in caught:
        if w not in missing:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, bool(missing)


def figure(width: float, height: float):
    """A figure on its own Agg canvas: no pyplot, no global backend switch, nothing left open."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def shown(text: Any) -> str:
    """A name as a picture draws it: NFC, so that Hangul written as separate jamo (NFD) is drawn
    as syllables (matplotlib does not compose them)."""
    return unicodedata.normalize("NFC", str(text))


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def figure_html(picture: Picture, caption: str | None = None) -> str:
    """The picture as an `<img>` with its PNG inlined (base64), so the page needs no other file."""
    data = base64.b64encode(picture.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(picture.alt)}">'
        f"<figcaption>{escape(caption or picture.name)}</figcaption></figure>"
    )


def page_head(title: str, css: str = "") -> list[str]:
    """The first lines of a page: doctype, charset, title and the style sheet."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}{css}</style></head><body>",
    ]


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans KR", sans-serif;
       margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h1 small { color: #59636e; font-weight: normal; }
h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: 0.3rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1.2rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #e5e9ed; }
th { text-align: left; } td { text-align: right; }
.note { color: #8c959f; font-size: 0.85em; font-weight: normal; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #59636e; font-size: 0.85em; }
p.notice { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.5rem 0.8rem; }
"""
