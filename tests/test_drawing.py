"""`zoo.drawing`: the pictures of zoo's pages draw Korean with the font that zoo's dependencies
ship, registered when a picture is drawn and not when zoo is imported."""

from __future__ import annotations

import subprocess
import sys
import unicodedata
import warnings

from zoo.drawing import bundled_font, draw, figure, fonts, png

KOREAN = ("코드", "웹", "이론", "시스템 운영", "원격")


def labelled_picture(labels) -> bytes:
    fig = figure(6.0, 3.0)
    ax = fig.add_subplot()
    ax.bar(range(len(labels)), range(1, len(labels) + 1))
    ax.set_xticks(range(len(labels)), labels)
    ax.set_title(" / ".join(labels))
    return png(fig)


def test_the_korean_font_arrives_with_zoos_dependencies():
    path = bundled_font()
    assert path is not None, "pip install pylopdf-fonts-ko (a dependency of zoo)"
    assert path.name == "NotoSansKR-Regular.otf" and path.stat().st_size > 1_000_000
    assert "Noto Sans KR" in fonts()


def test_korean_labels_are_drawn_without_a_missing_glyph():
    # Unfiltered: every warning matplotlib gives while drawing is seen here.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image, missing = draw(lambda: labelled_picture(KOREAN))
    assert image.startswith(b"\x89PNG")
    assert not missing
    assert not [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_drawing_without_the_korean_font_says_glyphs_are_missing(monkeypatch):
    import matplotlib

    monkeypatch.setattr("zoo.drawing.fonts", lambda: ["DejaVu Sans"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _image, missing = draw(lambda: labelled_picture(KOREAN))
    assert missing
    assert not [w for w in caught if "missing from" in str(w.message)]  # said once, on the page
    assert matplotlib.rcParams["font.family"] == ["sans-serif"]


def test_nfd_names_are_drawn_as_syllables():
    from zoo.drawing import shown

    nfd = unicodedata.normalize("NFD", "시스템 운영")
    assert nfd != "시스템 운영"
    assert shown(nfd) == "시스템 운영"


def test_importing_zoo_imports_neither_matplotlib_nor_the_font_package():
    code = (
        "import sys, zoo, zoo.drawing, zoo.html_report, zoo.compare_page; "
        "print(sorted(m for m in ('matplotlib', 'pylopdf_fonts_ko') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
