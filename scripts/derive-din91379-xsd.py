#!/usr/bin/env python3
"""Writes mappings/xoev/din-91379.xsd from the character table in forms/src/text.rs and
its list of normed sequences, forms/src/din91379_sequences.txt, so the schema and the
intake check can never disagree.

    python3 scripts/derive-din91379-xsd.py           # write it
    python3 scripts/derive-din91379-xsd.py --check   # exit 1 if the file is stale
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
src = (root / "forms/src/text.rs").read_text(encoding="utf-8")
single_part = src[src.index("const SINGLE"):src.index("static SEQUENCES")]
sequences = (root / "forms/src/din91379_sequences.txt").read_text(encoding="utf-8")


def ref(codepoint):
    return "&#x%04X;" % codepoint


def encode(sequence):
    return "".join(ref(int(hexa, 16)) for hexa in sequence.split("+"))


alternatives = []
for start, end in re.findall(r"\('\\u\{([0-9A-F]+)\}', '\\u\{([0-9A-F]+)\}'\)", single_part):
    start, end = int(start, 16), int(end, 16)
    alternatives.append(ref(start) if start == end else "[%s-%s]" % (ref(start), ref(end)))
for line in sequences.splitlines():
    if line.startswith("#") or not line.strip():
        continue
    base, *marks = line.split()
    encoded = [encode(m) for m in marks]
    tail = "(" + "|".join(encoded) + ")" if len(encoded) > 1 else encoded[0]
    alternatives.append(ref(int(base, 16)) + tail)
pattern = "(" + "|".join(alternatives) + ")*"

schema = f'''<?xml version="1.0" encoding="UTF-8"?>
<!--
  kopplung's own schema of DIN 91379 datatype C (the normed Latin characters), in the
  namespace of the XÖV datatypes so that message schemas can refer to it. The character
  set is the same as the one forms/src/text.rs checks at intake; this file is
  generated from that table (see docs/mappings.md, "Schemas").
-->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           targetNamespace="urn:xoev-de:kosit:xoev:datentyp:din-91379_2022-08"
           elementFormDefault="unqualified" attributeFormDefault="unqualified">
  <xs:simpleType name="datatypeC">
    <xs:restriction base="xs:string">
      <xs:pattern value="{pattern}"/>
    </xs:restriction>
  </xs:simpleType>
</xs:schema>
'''
target = root / "mappings/xoev/din-91379.xsd"
if "--check" in sys.argv[1:]:
    if target.read_text(encoding="utf-8") != schema:
        sys.exit(f"{target}: stale; run python3 scripts/derive-din91379-xsd.py")
else:
    target.write_text(schema, encoding="utf-8")
