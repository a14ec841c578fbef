//! The Leistungskatalog's search, German-aware: pure functions over the services'
//! names, keywords and descriptions, no HTTP.
//!
//! - **Folding**: case, umlauts and ß, both ways: `Straße`, `Strasse`, `Mängel`,
//!   `Maengel` and `Mangel` are the same (ä, ae and a all become `a`; ß becomes `ss`;
//!   other Latin accents are dropped).
//! - **Stemming**: the German Snowball stemmer (`Schlaglöcher` finds `Schlagloch`,
//!   `anmelden` finds `Anmeldung`).
//! - **Compounds**: a word found inside a longer one counts (`Parkausweis` in
//!   `Bewohnerparkausweis`); a compound found nowhere is tried by its last part, the
//!   longest that is found (`Anwohnerparkausweis` → `parkausweis`).
//! - **Typos**: Damerau-Levenshtein distance 1 for words of 5 letters or more, 2 from 9.
//! - **Several words**: each must match something. A word that names a municipality
//!   (or a postcode of one) is no search word: it ranks the services that can be applied
//!   for online there first (`Parkausweis Dresden`).
//! - **Ranking**: a hit in the name counts more than one in the keywords, which counts
//!   more than one in the description; a part of a word or a typo less than the word.

use std::collections::HashSet;

use rust_stemmers::{Algorithm, Stemmer};
use strsim::damerau_levenshtein;

/// A service as the search sees it.
pub struct Entry<'a> {
    pub name: &'a str,
    pub keywords: &'a [String],
    pub description: &'a str,
    /// ARS prefixes where it can be applied for online.
    pub available_in: &'a [String],
}

/// Something a query word may name instead of a service: a municipality by its name, or
/// by one of its postcodes.
pub struct Place<'a> {
    pub ars: &'a str,
    pub name: &'a str,
}

const NAME: f32 = 3.0;
const KEYWORD: f32 = 2.0;
const TEXT: f32 = 1.0;

const EXACT: f32 = 1.0;
const PART: f32 = 0.8;
const TYPO: f32 = 0.7;
const TYPO_PART: f32 = 0.6;
const HEAD: f32 = 0.5;

/// Words that carry nothing to search for (folded): „Ich möchte einen Parkausweis
/// beantragen“ searches for `parkausweis`.
const STOP_WORDS: &[&str] = &[
    "und",
    "oder",
    "der",
    "die",
    "das",
    "den",
    "dem",
    "des",
    "ein",
    "eine",
    "einen",
    "einem",
    "einer",
    "eines",
    "mein",
    "meine",
    "meinen",
    "meinem",
    "meiner",
    "ich",
    "wir",
    "mir",
    "mich",
    "wie",
    "wo",
    "was",
    "wann",
    "wer",
    "in",
    "im",
    "an",
    "am",
    "auf",
    "bei",
    "beim",
    "fur",
    "zu",
    "zum",
    "zur",
    "von",
    "vom",
    "mit",
    "nach",
    "online",
    "beantragen",
    "antrag",
    "antrage",
    "stellen",
    "brauche",
    "benotige",
    "mochte",
    "will",
    "kann",
    "machen",
    "hier",
    "bitte",
    "sachsen",
    "freistaat",
];

/// Lower case, umlauts and ß folded, accents dropped; `ae`, `oe`, `ue` read as ä, ö, ü.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'ä' | 'à' | 'á' | 'â' | 'ã' | 'å' | 'ą' => out.push('a'),
            'ö' | 'ò' | 'ó' | 'ô' | 'õ' | 'ø' => out.push('o'),
            'ü' | 'ù' | 'ú' | 'û' | 'ů' => out.push('u'),
            'é' | 'è' | 'ê' | 'ë' | 'ě' | 'ę' => out.push('e'),
            'í' | 'ì' | 'î' | 'ï' => out.push('i'),
            'ç' | 'č' | 'ć' => out.push('c'),
            'š' | 'ś' => out.push('s'),
            'ž' | 'ź' | 'ż' => out.push('z'),
            'ł' => out.push('l'),
            'ñ' | 'ń' => out.push('n'),
            'ř' => out.push('r'),
            'ý' => out.push('y'),
            'đ' | 'ď' => out.push('d'),
            'ß' => out.push_str("ss"),
            c => out.push(c),
        }
    }
    out.replace("ae", "a").replace("oe", "o").replace("ue", "u")
}

/// The folded words of a text; a hyphenated word also as one (`hundesteuer-anmeldung`
/// gives `hundesteur`, `anmeldung` and `hundesteuranmeldung`).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in text.split(|c: char| !(c.is_alphanumeric() || c == '-')) {
        let parts: Vec<&str> = chunk.split('-').filter(|p| !p.is_empty()).collect();
        out.extend(parts.iter().map(|p| fold(p)));
        if parts.len() > 1 {
            out.push(fold(&parts.concat()));
        }
    }
    out
}

/// A folded word with its stem.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    folded: String,
    stem: String,
}

impl Word {
    fn new(stemmer: &Stemmer, folded: String) -> Self {
        let stem = stemmer.stem(&folded).into_owned();
        Self { folded, stem }
    }
}

/// How many edits a query word of `letters` letters may be away from a word.
fn typo_budget(letters: usize) -> usize {
    match letters {
        0..5 => 0,
        5..9 => 1,
        _ => 2,
    }
}

/// The last `len` characters of `text`, if it is longer.
fn ending(text: &str, len: usize) -> Option<&str> {
    let count = text.chars().count();
    if len == 0 || len >= count {
        return None;
    }
    let at = text.char_indices().nth(count - len).map(|(i, _)| i)?;
    Some(&text[at..])
}

/// How well a query word matches a word of a service, 0 for not at all.
fn quality(term: &Word, word: &Word) -> f32 {
    if term.stem == word.stem || term.folded == word.folded {
        return EXACT;
    }
    if term.stem.chars().count() >= 4 && word.folded.contains(&term.stem) {
        return PART;
    }
    let letters = term.folded.chars().count();
    let budget = typo_budget(letters);
    if budget == 0 {
        return 0.0;
    }
    if damerau_levenshtein(&term.folded, &word.folded) <= budget {
        return TYPO;
    }
    // A typo in the last part of a compound (`Parkauswies` in `Bewohnerparkausweis`):
    // the end of a longer word, of about the query word's length; not for short query
    // words, whose one edit would find too much (`Gebühr` in `Geburtsregister`).
    if letters < 6 || word.folded.chars().count() < letters + 3 {
        return 0.0;
    }
    let near = |len| {
        ending(&word.folded, len)
            .is_some_and(|part| damerau_levenshtein(&term.folded, part) <= budget)
    };
    if (letters - budget..=letters + budget).any(near) {
        TYPO_PART
    } else {
        0.0
    }
}

/// A service's words, by field weight.
struct Indexed {
    fields: [(f32, Vec<Word>); 3],
}

impl Indexed {
    fn new(stemmer: &Stemmer, entry: &Entry<'_>) -> Self {
        let index = |text: &str| -> Vec<Word> {
            words(text)
                .into_iter()
                .map(|w| Word::new(stemmer, w))
                .collect()
        };
        Self {
            fields: [
                (NAME, index(entry.name)),
                (KEYWORD, index(&entry.keywords.join(" "))),
                (TEXT, index(entry.description)),
            ],
        }
    }

    /// The best weighted hit of a query word, 0 for none.
    fn score(&self, term: &Word) -> f32 {
        self.fields
            .iter()
            .flat_map(|(weight, words)| words.iter().map(move |w| weight * quality(term, w)))
            .fold(0.0, f32::max)
    }

    /// Whether the word is found as it is or as part of a word (no typo).
    fn contains(&self, term: &Word) -> bool {
        self.fields
            .iter()
            .flat_map(|(_, words)| words)
            .any(|w| quality(term, w) >= PART)
    }
}

/// A query split into its search words and the municipalities it names.
#[derive(Debug, PartialEq)]
pub struct Query {
    terms: Vec<String>,
    /// The ARS of the municipalities named.
    places: Vec<String>,
}

impl Query {
    pub fn parse(text: &str, places: &[Place<'_>]) -> Self {
        let folded: Vec<String> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '-'))
            .flat_map(|w| w.split('-'))
            .filter(|w| !w.is_empty())
            .map(fold)
            .collect();
        let names: Vec<(Vec<String>, &str)> = places
            .iter()
            .flat_map(|p| place_names(p.name).into_iter().map(move |n| (n, p.ars)))
            .collect();
        let (mut terms, mut found) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < folded.len() {
            // The longest place name that starts here.
            let hit = names
                .iter()
                .filter(|(name, _)| folded[at..].starts_with(name))
                .map(|(name, _)| name.len())
                .max();
            match hit {
                Some(len) => {
                    for (name, ars) in &names {
                        if name.len() == len && folded[at..].starts_with(name) {
                            found.push((*ars).to_owned());
                        }
                    }
                    at += len;
                }
                None => {
                    terms.push(folded[at].clone());
                    at += 1;
                }
            }
        }
        let content: Vec<String> = terms
            .iter()
            .filter(|t| !STOP_WORDS.contains(&t.as_str()))
            .cloned()
            .collect();
        found.sort();
        found.dedup();
        Self {
            terms: if content.is_empty() { terms } else { content },
            places: found,
        }
    }
}

/// The folded word sequences a municipality goes by: its German name without `, Stadt`
/// (`Bautzen / Budyšin, Stadt` → `bautzen`), before a qualifier (`Breitenbrunn/Erzgeb.`
/// → `breitenbrunn`), the first part of a hyphenated name (`Aue-Bad Schlema` → `aue`).
fn place_names(name: &str) -> Vec<Vec<String>> {
    let german = name
        .split(',')
        .next()
        .unwrap_or(name)
        .split(" / ")
        .next()
        .unwrap_or(name);
    let split = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(fold)
            .collect()
    };
    let mut out = vec![split(german)];
    for separator in ['/', '-'] {
        if let Some((first, _)) = german.split_once(separator) {
            out.push(split(first));
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// The services that match `query`, best first, as indexes into `entries`.
pub fn rank(entries: &[Entry<'_>], query: &Query) -> Vec<usize> {
    let stemmer = Stemmer::create(Algorithm::German);
    let indexed: Vec<Indexed> = entries.iter().map(|e| Indexed::new(&stemmer, e)).collect();
    let terms: Vec<(Word, f32)> = query
        .terms
        .iter()
        .map(|t| resolve(&stemmer, &indexed, t))
        .collect();
    let here = |entry: &Entry<'_>| {
        query.places.iter().any(|ars| {
            entry
                .available_in
                .iter()
                .any(|prefix| ars.starts_with(prefix.as_str()))
        })
    };
    let mut hits: Vec<(usize, f32, bool)> = Vec::new();
    for (i, (entry, index)) in entries.iter().zip(&indexed).enumerate() {
        let mut total = 0.0;
        let mut all = true;
        for (term, factor) in &terms {
            let score = index.score(term) * factor;
            all &= score > 0.0;
            total += score;
        }
        // Only a place named: the services that can be applied for online there.
        let place_only = terms.is_empty() && here(entry);
        if (all && !terms.is_empty()) || place_only {
            hits.push((i, total, here(entry)));
        }
    }
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)));
    hits.into_iter().map(|(i, _, _)| i).collect()
}

/// The word to look for, and how much a hit counts: the query word itself, or, when it
/// is found nowhere, its longest last part that is found (a compound's head) — if that
/// is more than half of the word: `Anwohnerparkausweis` is searched as `parkausweis`,
/// but `Führerschein` not as `schein`.
fn resolve(stemmer: &Stemmer, indexed: &[Indexed], term: &str) -> (Word, f32) {
    let word = Word::new(stemmer, term.to_owned());
    if indexed.iter().any(|i| i.score(&word) > 0.0) {
        return (word, 1.0);
    }
    let chars: Vec<char> = term.chars().collect();
    let mut seen = HashSet::new();
    for start in 3..chars.len().div_ceil(2) {
        let head: String = chars[start..].iter().collect();
        if !seen.insert(head.clone()) {
            continue;
        }
        let head = Word::new(stemmer, head);
        if indexed.iter().any(|i| i.contains(&head)) {
            return (head, HEAD);
        }
    }
    (word, 1.0)
}

#[cfg(test)]
mod tests;
