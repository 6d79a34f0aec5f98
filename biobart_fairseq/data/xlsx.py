"""A small, dependency-free .xlsx reader (and a writer for test fixtures).

Why our own: the MEDIQA 2021 Task 2 validation answers workbook is saved as *Strict* Office
Open XML (``conformance="strict"``).  Strict files use the ISO namespaces
(``http://purl.oclc.org/ooxml/...``) instead of the transitional ``schemas.openxmlformats.org``
ones, and openpyxl 3.1 (hence ``pandas.read_excel``) silently returns a workbook with no
worksheets.  Here every XML element is matched by its *local* name, so both flavours read the
same, and only the first worksheet's cell *values* are needed (strings, shared strings, inline
strings, numbers, booleans).
"""

import posixpath
import re
import zipfile
import xml.etree.ElementTree as ET
from typing import List
from xml.sax.saxutils import escape

_CELL_REF = re.compile(r"([A-Z]+)(\d+)")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(elem, name):
    return [c for c in elem if _local(c.tag) == name]


def _text_of(elem) -> str:
    """Concatenate every <t> below elem (rich text runs hold several), skipping phonetic runs."""
    parts = []
    for node in elem.iter():
        if _local(node.tag) == "rPh":  # phonetic guide: not part of the cell value
            continue
        if _local(node.tag) == "t" and node.text:
            parts.append(node.text)
    return "".join(parts)


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - ord("A") + 1)
    return n - 1


def _first_sheet_path(zf: zipfile.ZipFile) -> str:
    """Path of the first worksheet, following workbook.xml -> its relationships (works for
    both namespaces); falls back to the conventional name."""
    names = set(zf.namelist())
    try:
        wb = ET.fromstring(zf.read("xl/workbook.xml"))
        rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
        sheets = [e for e in wb.iter() if _local(e.tag) == "sheet"]
        if sheets:
            rid = next((v for k, v in sheets[0].attrib.items() if _local(k) == "id"), None)
            for rel in rels:
                if rel.attrib.get("Id") == rid:
                    target = rel.attrib["Target"]
                    path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
                    if path in names:
                        return path
    except KeyError:
        pass
    candidates = sorted(n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))
    if not candidates:
        raise ValueError("no worksheet in the workbook")
    return candidates[0]


def read_xlsx(path) -> List[List[str]]:
    """Rows of the first worksheet as lists of strings (missing cells are "").

    Numbers keep their spreadsheet text form, except that integral floats ("3.0") become "3"
    so ids compare equal to the ids of the text files."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path}: not an .xlsx (zip) file: {e}") from None
    with zf:
        shared = []
        if "xl/sharedStrings.xml" in zf.namelist():
            sst = ET.fromstring(zf.read("xl/sharedStrings.xml"))
            shared = [_text_of(si) for si in _children(sst, "si")]
        try:
            sheet = ET.fromstring(zf.read(_first_sheet_path(zf)))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    rows = []
    for row in (e for e in sheet.iter() if _local(e.tag) == "row"):
        values = {}
        for pos, cell in enumerate(_children(row, "c")):
            ref = cell.attrib.get("r")
            m = _CELL_REF.match(ref or "")
            col = _column_index(m.group(1)) if m else pos
            kind = cell.attrib.get("t", "n")
            v = next((c for c in cell if _local(c.tag) == "v"), None)
            if kind == "s" and v is not None and v.text is not None:
                value = shared[int(v.text)]
            elif kind == "inlineStr":
                value = _text_of(cell)
            elif v is not None and v.text is not None:
                value = v.text
                if kind == "n" and re.fullmatch(r"-?\d+\.0+", value):
                    value = value.split(".")[0]
            else:
                value = ""
            values[col] = value
        width = max(values) + 1 if values else 0
        rows.append([values.get(i, "") for i in range(width)])
    return rows


def read_xlsx_records(path):
    """(header, records): the first row as column names and each later row as a dict.
    Rows are numbered from 2 as in a spreadsheet; the number is stored under ``"_row"``."""
    rows = read_xlsx(path)
    if not rows:
        raise ValueError(f"{path}: the first worksheet is empty")
    header = [h.strip() for h in rows[0]]
    records = []
    for i, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue  # trailing formatted-but-empty rows are not records
        rec = {h: (row[j] if j < len(row) else "") for j, h in enumerate(header) if h}
        rec["_row"] = i
        records.append(rec)
    return header, records


# --- writer (tests and hand-written samples only) ----------------------------------------
_NS = {
    "transitional": ("http://schemas.openxmlformats.org/spreadsheetml/2006/main",
                     "http://schemas.openxmlformats.org/officeDocument/2006/relationships"),
    "strict": ("http://purl.oclc.org/ooxml/spreadsheetml/main",
               "http://purl.oclc.org/ooxml/officeDocument/relationships"),
}


def _col_letters(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def write_xlsx(path, rows, flavour="transitional"):
    """Write rows (lists of str) as a minimal one-sheet workbook with shared strings.
    ``flavour="strict"`` writes the ISO (Strict OOXML) namespaces, as the MEDIQA file uses."""
    main, rel = _NS[flavour]
    strings, index = [], {}
    sheet_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            value = str(value)
            if value not in index:
                index[value] = len(strings)
                strings.append(value)
            cells.append(f'<c r="{_col_letters(c)}{r}" t="s"><v>{index[value]}</v></c>')
        sheet_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    sst = "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in strings)
    conformance = ' conformance="strict"' if flavour == "strict" else ""
    pkg_rel = "http://schemas.openxmlformats.org/package/2006/relationships"
    doc_rel = ("http://purl.oclc.org/ooxml/officeDocument/relationships" if flavour == "strict"
               else "http://schemas.openxmlformats.org/officeDocument/2006/relationships")
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            "</Types>"),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg_rel}">'
            f'<Relationship Id="rId1" Type="{doc_rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}"{conformance}>'
            '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg_rel}">'
            f'<Relationship Id="rId1" Type="{doc_rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{doc_rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}"><sheetData>{"".join(sheet_rows)}</sheetData></worksheet>'),
        "xl/sharedStrings.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{main}" count="{len(strings)}" uniqueCount="{len(strings)}">{sst}</sst>'),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
