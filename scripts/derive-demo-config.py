#!/usr/bin/env python3
"""Derives config/regions.csv and config/routing.toml from ../shared/data/gemeinden-sachsen.csv.

Run from the workspace root after the municipality list changes:
    python3 scripts/derive-demo-config.py
"""
import csv
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
source = root.parent / "shared" / "data" / "gemeinden-sachsen.csv"
rows = list(csv.DictReader(source.open(encoding="utf-8")))

with (root / "config" / "regions.csv").open("w", encoding="utf-8", newline="") as out:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ars", "name", "kreis"])
    for row in sorted(rows, key=lambda r: r["ars"]):
        writer.writerow([row["ars"], row["name"], row["kreis_schluessel"]])

cities = {"14511": ("chemnitz", "Stadt Chemnitz"),
          "14612": ("dresden", "Landeshauptstadt Dresden"),
          "14713": ("leipzig", "Stadt Leipzig")}
kreise = {}
for row in rows:
    kreise.setdefault(row["kreis_schluessel"], row["kreis_name"])

# What the portal's Behördenkatalog shows of each authority: seat, phone and opening
# hours (demo values on the authorities' public seats; the e-mail domains are
# `.example` so that no demo message reaches a real office).
CONTACTS = {
    "chemnitz": ("Markt 1, 09111 Chemnitz", "+49 371 488-0"),
    "erzgebirgskreis": ("Paulus-Jenisius-Straße 24, 09456 Annaberg-Buchholz", "+49 3733 831-0"),
    "mittelsachsen": ("Frauensteiner Straße 43, 09599 Freiberg", "+49 3731 799-0"),
    "vogtlandkreis": ("Postplatz 5, 08523 Plauen", "+49 3741 300-0"),
    "zwickau": ("Robert-Müller-Straße 4–8, 08056 Zwickau", "+49 375 4402-0"),
    "dresden": ("Dr.-Külz-Ring 19, 01067 Dresden", "+49 351 488-0"),
    "bautzen": ("Bahnhofstraße 9, 02625 Bautzen", "+49 3591 5251-0"),
    "goerlitz": ("Bahnhofstraße 24, 02826 Görlitz", "+49 3581 663-0"),
    "meissen": ("Brauhausstraße 21, 01662 Meißen", "+49 3521 725-0"),
    "saechsische-schweiz-osterzgebirge": ("Schloßhof 2/4, 01796 Pirna", "+49 3501 515-0"),
    "leipzig": ("Martin-Luther-Ring 4–6, 04109 Leipzig", "+49 341 123-0"),
    "landkreis-leipzig": ("Stauffenbergstraße 4, 04552 Borna", "+49 3433 241-0"),
    "nordsachsen": ("Schloßstraße 27, 04860 Torgau", "+49 3421 758-0"),
    "chemnitz-buergerbuero": ("Düsseldorfer Platz 1, 09111 Chemnitz", "+49 371 488-3331"),
    "dresden-buergerbuero": ("Theaterstraße 11, 01067 Dresden", "+49 351 488-6311"),
    "leipzig-buergerbuero": ("Otto-Schill-Straße 2, 04109 Leipzig", "+49 341 123-4420"),
}
OFFICE_HOURS = ["Mo 9–12 Uhr", "Di und Do 9–18 Uhr", "Mi 8–12 Uhr", "Fr 9–12 Uhr", "Sa 9–12 Uhr (nur Terminvergabe)"]
DISTRICT_HOURS = ["Mo, Mi, Fr 9–12 Uhr", "Di 9–12 und 13–18 Uhr", "Do 9–12 und 13–16 Uhr"]


def procedure_lines(procedure, authority, envelope):
    """A `[[procedure]]` of the demo, delivered over AMQP to the queue `kopplung.<id>`."""
    return [
        "[[procedure]]",
        f'id = "{procedure}"',
        f'authority = "{authority}"',
        f'envelope = "{envelope}"',
        f'certificate = "procedures/{procedure}.crt"',
        f'receipt_certificate = "procedures/{procedure}-signatur.crt"',
        # Its token for the hub's API: attachments fetched by claim check (the demo
        # writes the file).
        f'token_file = "procedure-tokens/{procedure}"',
        "[procedure.delivery]",
        'transport = "amqp"',
        f'queue = "kopplung.{procedure}"',
    ]


def contact_lines(slug):
    """The optional Behördenkatalog keys of an [[authority]]."""
    address, phone = CONTACTS[slug]
    hours = OFFICE_HOURS if slug.endswith("-buergerbuero") else DISTRICT_HOURS
    return [
        f'address = "{address}"',
        f'phone = "{phone}"',
        f'email = "poststelle@{slug}.example"',
        "opening_hours = [" + ", ".join(f'"{h}"' for h in hours) + "]",
    ]

slug_map = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", " ": "-", ",": ""})
MAENGEL = "99999001000000"
lines = [
    "# Routing table of the demo: authorities, their specialist procedures, and routes.",
    "# Derived from the Destatis municipality list by scripts/derive-demo-config.py;",
    "# edit by hand freely, the script only gives a starting point.",
    "#",
    "# Route: (LeiKa key, ARS or ARS prefix) -> procedure; the longest prefix wins.",
    f"# The Mängelanzeige key {MAENGEL} is LOCAL (no LeiKa key exists), see mappings/maengelanzeige.",
    "",
]
for key in sorted(kreise):
    if key in cities:
        slug, name = cities[key]
        authority = name
    else:
        name = kreise[key]
        slug = name.lower().translate(slug_map)
        authority = f"Landratsamt {name}" if name != "Leipzig" else "Landratsamt Landkreis Leipzig"
        if name == "Leipzig":
            slug = "landkreis-leipzig"
    procedure = f"{slug}-maengel"
    lines += [
        "[[authority]]",
        f'id = "{slug}"',
        f'name = "{authority}"',
        f'kennung = "dvdv:{key}000:maengel"',
        *contact_lines(slug),
        "",
        *procedure_lines(procedure, slug, "cms"),
    ]
    # The districts' procedures answer on an AMQP reply queue; the cities' over HTTP.
    if key not in cities:
        lines.append(f'reply_queue = "kopplung.{procedure}.events"')
    lines += [
        "",
        "[[route]]",
        f'service = "{MAENGEL}"',
        f'region = "{key}"',
        f'procedure = "{procedure}"',
        "",
    ]
# The cities' citizens' offices take the other services online; elsewhere they are not
# (yet) available online, which the finder shows.
CITY_SERVICES = [
    ("99115005000000", "Wohnsitzanmeldung"),
    ("99115003000000", "Meldebescheinigung"),
    ("99050012104000", "Gewerbe-Anmeldung"),
    ("99108001000000", "Bewohnerparkausweis"),
    ("99014002000000", "Urkundenbestellung"),
]
lines += [
    "# Services of the citizens' offices (Bürgerbüros) of the three cities:",
    "# " + ", ".join(f"{name} {key}" for key, name in CITY_SERVICES) + ".",
    "",
]
for key, (slug, name) in sorted(cities.items()):
    procedure = f"{slug}-buergerbuero"
    # Leipzig's citizens' office runs a FIT-Connect style procedure: the jose profile.
    envelope = "jose" if slug == "leipzig" else "cms"
    lines += [
        "[[authority]]",
        f'id = "{slug}-buergerbuero"',
        f'name = "{name}, Bürgerbüro"',
        f'kennung = "dvdv:{key}000:buergerbuero"',
        *contact_lines(f"{slug}-buergerbuero"),
        "",
        *procedure_lines(procedure, f"{slug}-buergerbuero", envelope),
        "",
    ]
    for service, _ in CITY_SERVICES:
        lines += [
            "[[route]]",
            f'service = "{service}"',
            f'region = "{key}"',
            f'procedure = "{procedure}"',
            "",
        ]
(root / "config" / "routing.toml").write_text("\n".join(lines), encoding="utf-8")
print(f"{len(rows)} municipalities, {len(kreise)} districts")
