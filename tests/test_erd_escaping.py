"""Issue 17: ER diagrams pasted identifiers into Mermaid: `my note` did not parse, raw HTML passed through."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from playlist_tools import schema

# The lines of an ER diagram as Mermaid 11's ER lexer reads them (its ATTRIBUTE_WORD, its "..." strings, which
# may hold no " and, for names, no % or \): a line that matches none of these does not parse.
WORD = r"[A-Za-z_\u00C0-\uFFFF][A-Za-z0-9\-_\[\]()\u00C0-\uFFFF]*"
TEXT = r'"[^"%\\\r\n<>]*"'
LINE = re.compile(
    rf"erDiagram|    {WORD}(\[{TEXT}\])?(:::{WORD})? \{{|        {WORD} {WORD}( PK| FK| PK, FK)?( {TEXT})?|    \}}"
    rf"|    {WORD} (\|\||\|o)--o\{{ {WORD} : {TEXT}|    classDef {WORD} .*"
)


def test_identifiers_that_are_no_mermaid_words_are_drawn_and_escaped(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(
            'CREATE TABLE "my table" (id int PRIMARY KEY, "my note" text, "<b>bold</b>" int, "50% off" text, '
            '"say ""hi""" text, "back\\slash" text)'
        ))
        connection.execute(sa.text(
            'CREATE TABLE "<script>x</script>" (id int PRIMARY KEY, '
            '"owner id" int REFERENCES "my table" (id))'
        ))
    text = str(schema.erd(engine))
    bad = [line for line in text.splitlines() if not LINE.fullmatch(line)]
    assert bad == []
    assert "<" not in text and ">" not in text  # no HTML reaches the renderer
    assert '        text my_note "column my note"' in text
    assert '    my_table["my table"] {' in text
    assert '    _script_x__script_["#lt;script#gt;x#lt;/script#gt;"] {' in text
    assert 'text say__hi_ "column say #quot;hi#quot;"' in text
    assert 'text _50__off "column 50#37; off"' in text
    assert '    my_table ||--o{ _script_x__script_ : "owner id"' in text.replace("|o--o{", "||--o{")


def test_plain_names_are_drawn_as_before(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (id int PRIMARY KEY, price numeric(10,2))"))
    assert str(schema.erd(engine)).splitlines() == [
        "erDiagram",
        "    t {",
        "        integer id PK",
        '        numeric price "numeric(10,2)"',
        "    }",
    ]
