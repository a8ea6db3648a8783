"""A data file's bytes as text: one encoding for the whole file, or a `DataError` with the line.

`auto` reads UTF-8 (a byte-order mark is dropped), else cp949 (a superset of euc-kr, what Korean
spreadsheets write). A file that is partly UTF-8 and partly something else (rows appended by
another program) is refused at the first line that is not UTF-8: decoding it whole as cp949
would turn its UTF-8 rows into other Korean syllables (과제 becomes 怨쇱젣) without a word. An
encoding named explicitly is obeyed. A file that is no text at all (an image, a workbook, a NUL
byte) says what it is.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from zoo.errors import DataError
from zoo.options import Options

# The line breaks of the csv module (it reads lines as io.StringIO(newline="") splits them).
LINE_BREAK = re.compile(r"\r\n|\r|\n")
LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")

# The first bytes of files that are no text at all, and what they are.
SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx workbook?)",
    b"\xd0\xcf\x11\xe0": "an old Office file (an Excel .xls workbook?)",
    b"PAR1": "a Parquet file (name it .parquet)",
}
NOT_A_TABLE = "save the table as CSV (UTF-8) with a header line naming its columns"


def line_at(data: str | bytes, offset: int) -> int:
    """The line (from 1) that holds position `offset`."""
    pattern = LINE_BREAK_BYTES if isinstance(data, bytes) else LINE_BREAK
    return 1 + len(pattern.findall(data, 0, offset))


def read_text(path: Path, encoding: str, setting: str, options: Options) -> tuple[str, str]:
    """The file's text and the name of the encoding that decoded it ("utf-8-sig" or "cp949"
    for `auto`; the name given otherwise)."""
    raw = _read_bytes(path, setting)
    _refuse_what_is_no_text(raw, path, setting)
    if encoding == "auto":
        return _decode_auto(raw, path, setting, options)
    # A byte-order mark is never part of the data (Excel writes one); utf-8-sig drops it.
    codec = "utf-8-sig" if encoding in ("utf-8", "utf8") else encoding
    try:
        return raw.decode(codec), encoding
    except LookupError:
        raise DataError(
            f"{setting}: unknown encoding {encoding!r}",
            hint=options.tell("encoding", "utf-8, cp949 or another Python codec name"),
        ) from None
    except UnicodeDecodeError as exc:
        raise _not_text(path, raw, exc, (encoding,), setting, options) from None


def _read_bytes(path: Path, setting: str) -> bytes:
    if path.is_dir():
        raise DataError(
            f"{setting}: {path} is a folder, not a file",
            hint="name the CSV or TSV file itself, not the folder that holds it",
        )
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{setting}: file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def _refuse_what_is_no_text(raw: bytes, path: Path, setting: str) -> None:
    kind = next((kind for magic, kind in SIGNATURES.items() if raw.startswith(magic)), None)
    if kind is not None:
        raise DataError(f"{setting}: {path} is {kind}, not a CSV or TSV table", hint=NOT_A_TABLE)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_like_utf16(raw[:64]):
        # Excel's "Unicode Text", with or without its byte-order mark
        raise DataError(
            f"{setting}: {path} is UTF-16 text, which zoo does not read",
            hint="save it as UTF-8 (in Excel: CSV UTF-8)",
        )
    nul = raw.find(b"\0")
    if nul >= 0:
        raise DataError(
            f"{setting}: {path} has a NUL byte (0x00) on line {line_at(raw, nul)}, "
            "which no text file has",
            hint="the file is binary or damaged there; " + NOT_A_TABLE,
        )


def _decode_auto(raw: bytes, path: Path, setting: str, options: Options) -> tuple[str, str]:
    has_bom = raw.startswith(codecs.BOM_UTF8)
    start = len(codecs.BOM_UTF8) if has_bom else 0
    try:
        return raw[start:].decode("utf-8"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        # Positions in the whole file, byte-order mark included.
        not_utf8 = UnicodeDecodeError("utf-8", raw, start + exc.start, start + exc.end, exc.reason)
    utf8_line = _utf8_evidence(raw[start:], has_bom)
    if utf8_line is not None:
        line = line_at(raw, not_utf8.start)
        raise DataError(
            f"{setting}: {path} mixes encodings: line {utf8_line} is UTF-8, but line {line} is "
            f"not (it has the byte 0x{raw[not_utf8.start]:02x}{_reads_as_cp949(raw, line)})",
            hint="save the whole file as UTF-8 (re-save or re-type the lines that are not); "
            "zoo reads a file in one encoding",
        )
    try:
        return raw.decode("cp949"), "cp949"
    except UnicodeDecodeError:
        raise _not_text(path, raw, not_utf8, ("utf-8-sig", "cp949"), setting, options) from None


def _looks_like_utf16(head: bytes) -> bool:
    """ASCII text in UTF-16 without a byte-order mark: every other byte is NUL."""
    if len(head) < 4:
        return False
    return any(half == bytes(len(half)) for half in (head[0::2], head[1::2]))


def _utf8_evidence(body: bytes, has_bom: bool) -> int | None:
    """The first line that shows the file was written as UTF-8, or None.

    cp949 Korean text is almost never valid UTF-8: its Hangul lead bytes (0xb0-0xc8) are UTF-8
    continuation bytes or two-byte leads, so a cp949 line that happens to be valid UTF-8 decodes
    to Latin letters below U+0800 (짱 reads as ¯; 61 of 105,355 lines of the shared Korean data
    sets saved as cp949, none with a character from U+0800 on). So a byte-order mark, a valid
    UTF-8 line with a character from U+0800 on (Korean, CJK) or one that is not cp949, or valid
    UTF-8 lines at least as many as the other non-ASCII lines, say UTF-8.
    """
    if has_bom:
        return 1
    utf8_lines, other_lines, first_utf8 = 0, 0, None
    for number, line in enumerate(LINE_BREAK_BYTES.split(body), start=1):
        if line.isascii():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            other_lines += 1
            continue
        utf8_lines += 1
        first_utf8 = first_utf8 or number
        if max(map(ord, text)) >= 0x800 or not _is_cp949(line):
            return number
    return first_utf8 if utf8_lines and utf8_lines >= other_lines else None


def _is_cp949(data: bytes) -> bool:
    try:
        data.decode("cp949")
    except UnicodeDecodeError:
        return False
    return True


def _reads_as_cp949(raw: bytes, line: int) -> str:
    return ", and reads as cp949" if _is_cp949(LINE_BREAK_BYTES.split(raw)[line - 1]) else ""


def _not_text(
    path: Path,
    raw: bytes,
    exc: UnicodeDecodeError,
    tried: tuple[str, ...],
    setting: str,
    options: Options,
) -> DataError:
    name = "UTF-8" if tried[0].startswith(("utf-8", "utf8")) else tried[0]
    return DataError(
        f"{setting}: {path} is not text in {' or '.join(tried)} "
        f"(line {line_at(raw, exc.start)} has the byte 0x{raw[exc.start]:02x}, which is not "
        f"{name})",
        hint="save it as UTF-8, or " + options.tell("encoding", "the file's encoding"),
    )
