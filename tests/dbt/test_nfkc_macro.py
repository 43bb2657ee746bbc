"""GIVEN the dbt macro nfkc() (dbt_project/macros/nfkc.sql), WHEN DuckDB evaluates it, THEN it equals NFKC on the
characters it covers and NFC elsewhere, for every character of the Basic Multilingual Plane, alone and beside
half-width katakana and its sound marks; and the characters its fast path leaves untouched really are untouched.

The macro file is plain Jinja (no dbt context needed), so it is rendered here with jinja2 and evaluated over real
DuckDB tables: no dbt run, a few seconds.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import duckdb
import jinja2
import pyarrow as pa
import pytest

MACROS = Path(__file__).resolve().parents[2] / "dbt_project" / "macros" / "nfkc.sql"
# What the macro maps: the ideographic space, full-width ASCII, half-width katakana and punctuation (U+FF01-FF9F)
# and the signs U+FFE0-FFEE, each to its NFKC form when that is one character. Half-width Hangul is not covered.
COVERED = [0x3000, *range(0xFF01, 0xFFA0), *range(0xFFE0, 0xFFEF)]
# DuckDB's trim() strips the Unicode space separators (category Zs), not only ' '.
SPACES = "".join(chr(cp) for cp in range(0x10000) if unicodedata.category(chr(cp)) == "Zs")


@pytest.fixture(scope="module")
def macros():
    return jinja2.Environment().from_string(MACROS.read_text(encoding="utf-8")).module


def reference(text: str | None) -> str | None:
    if text is None:
        return None
    mapping = {chr(cp): unicodedata.normalize("NFKC", chr(cp)) for cp in COVERED}
    mapped = "".join(m if len(m := mapping.get(ch, ch)) == 1 else ch for ch in text)
    return unicodedata.normalize("NFC", mapped).strip(SPACES) or None


def assigned_bmp() -> list[str]:
    # Characters assigned in Python's Unicode database: DuckDB's NFC may know later assignments Python does not.
    return [chr(cp) for cp in range(1, 0x10000)
            if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) != "Cn"]


def evaluate(macros, values: list[str | None]) -> list[str | None]:
    con = duckdb.connect()
    con.register("v", pa.table({"i": pa.array(range(len(values))), "s": pa.array(values, pa.string())}))
    rows = con.execute(f"select {macros.nfkc('s')} from v order by i").fetchall()
    return [r[0] for r in rows]


def test_every_character_alone_and_beside_half_width_kana(macros) -> None:
    chars = assigned_bmp()
    values = [*chars, *("ｶ" + c for c in chars), *(c + "ﾞ" for c in chars), *(" " + c + "ﾟ " for c in chars)]
    got = evaluate(macros, values)
    wrong = [(v, g, reference(v)) for v, g in zip(values, got, strict=True) if g != reference(v)]
    assert not wrong, f"{len(wrong)} differ from NFKC/NFC, e.g. {wrong[:5]}"


def test_japanese_text_as_shops_send_it(macros) -> None:
    values = [None, "", "   ", "　", "ﾔﾏﾀﾞ ﾀﾛｳ", "０９０（１２３４）５６７８", "〒１３５－００６３", "ＡＢＣ－１２３",
              "東京都江東区青海２－４－３２", "ｶﾞｷﾞｸﾞｹﾞｺﾞ ﾊﾟﾋﾟﾌﾟ", "￥１，０００", "e\u0301", "\uf900",
              "𠮷野家", "ヤマダ　タロウ", " plain ascii  "]
    assert evaluate(macros, values) == [reference(v) for v in values]
    assert evaluate(macros, ["ﾔﾏﾀﾞ ﾀﾛｳ", "０９０（１２３４）５６７８", "　", ""]) == [
        "ヤマダ タロウ", "090(1234)5678", None, None]


def test_the_fast_path_characters_never_change(macros) -> None:
    """Text made only of these characters is trimmed and nothing else: each must be unmapped, unchanged by NFC,
    of combining class 0, and never the second character of a canonical composition (so no neighbour alters it)."""
    seconds = set()
    for cp in range(0x110000):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = [chr(int(p, 16)) for p in decomposition.split()]
            if len(parts) == 2 and unicodedata.normalize("NFC", "".join(parts)) == chr(cp):
                seconds.add(parts[1])
    seconds |= {chr(cp) for cp in [*range(0x1161, 0x1176), *range(0x11A8, 0x11C3)]}  # Hangul V and T jamo
    ranges = re.findall(r"\\x\{([0-9A-F]+)\}-\\x\{([0-9A-F]+)\}", str(macros.ichigen_nfkc_stable()))
    assert ranges, "no ranges found in ichigen_nfkc_stable"
    unstable = [hex(cp) for first, last in ranges for cp in range(int(first, 16), int(last, 16) + 1)
                if unicodedata.category(chr(cp)) == "Cn" or unicodedata.normalize("NFC", chr(cp)) != chr(cp)
                or unicodedata.combining(chr(cp)) != 0 or chr(cp) in seconds or cp in COVERED]
    assert not unstable


def test_normalised_once_per_distinct_buyer_joins_back_to_every_row(macros) -> None:
    """GIVEN orders whose buyer columns repeat across orders, hold NULLs and need NFKC, WHEN the buyers are normalised
    once per distinct combination (nfkc_per_distinct) and joined back on their hash (per_distinct_match), THEN every order gets
    exactly the values nfkc() gives it row by row: none lost, none doubled, NULL matching NULL."""
    family = ["ﾔﾏﾀﾞ", "山田", None, "ＳＭＩＴＨ"]
    phone = ["０９０－１２３４－５６７８", "03-1234-5678", None]
    city = ["江東区青海２－４", None, "  大阪市  "]
    rows = [(n, family[n % 4], phone[n % 3], city[n % 5 % 3]) for n in range(60)]
    con = duckdb.connect()
    con.register("landed", pa.table({"order_id": [r[0] for r in rows], "family_name": [r[1] for r in rows],
                                     "phone": [r[2] for r in rows], "city": [r[3] for r in rows]}))
    inputs = ["family_name", "phone", "city"]
    outputs = {"buyer_name": "concat_ws(' ', family_name, '様')", "buyer_phone": "phone", "buyer_city": "city"}
    once = con.execute(
        f"with buyers as ({macros.nfkc_per_distinct('landed', inputs, outputs)}) "
        f"select landed.order_id, b.buyer_name, b.buyer_phone, b.buyer_city from landed "
        f"left join buyers as b on {macros.per_distinct_match('b', 'landed', inputs)} order by 1").fetchall()
    per_row = con.execute(
        f"select order_id, {macros.nfkc(outputs['buyer_name'])}, {macros.nfkc('phone')}, {macros.nfkc('city')} "
        f"from landed order by 1").fetchall()
    assert once == per_row
    assert len(once) == 60 and ("ﾔﾏﾀﾞ 様" not in {r[1] for r in once}) and None in {r[2] for r in once}
    distinct = con.execute(f"select count(*) from ({macros.nfkc_per_distinct('landed', inputs, outputs)})").fetchone()
    assert distinct[0] == len({r[1:] for r in rows}) < 60
