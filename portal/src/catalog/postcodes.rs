//! Which Saxon municipalities a postcode (Postleitzahl) reaches, for the
//! Zuständigkeitsfinder and the search. The table is `portal/data/postleitzahlen-sachsen.csv`,
//! derived by `scripts/derive-postleitzahlen.py` from OpenStreetMap data
//! (© OpenStreetMap contributors, ODbL 1.0; see its header and docs/portal.md).

const TABLE: &str = include_str!("../../data/postleitzahlen-sachsen.csv");

/// Every row: (postcode, ARS), ordered by postcode.
pub fn all() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLE
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("plz,"))
        .filter_map(|line| {
            let mut fields = line.splitn(3, ',');
            Some((fields.next()?, fields.next()?))
        })
}

/// Whether `text` has the shape of a German postcode: five digits.
pub fn is_postcode(text: &str) -> bool {
    text.len() == 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The ARS of the municipalities the postcode reaches; none for an unknown one.
pub fn municipalities(postcode: &str) -> Vec<&'static str> {
    all()
        .filter(|(code, _)| *code == postcode)
        .map(|(_, ars)| ars)
        .collect()
}

/// The postcodes of a municipality.
pub fn of(ars: &str) -> Vec<&'static str> {
    all()
        .filter(|(_, a)| *a == ars)
        .map(|(code, _)| code)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_a_postcode_and_a_municipality_the_hub_knows() {
        let regions = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/regions.csv"),
        )
        .unwrap();
        let known: std::collections::HashSet<&str> = regions
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .collect();
        let rows: Vec<_> = all().collect();
        assert!(rows.len() > 500, "{} rows", rows.len());
        for (code, ars) in &rows {
            assert!(is_postcode(code), "{code}");
            assert!(
                known.contains(ars),
                "{code}: {ars} is no municipality of regions.csv"
            );
        }
        // Every municipality has at least one postcode.
        let covered: std::collections::HashSet<&str> = rows.iter().map(|(_, a)| *a).collect();
        assert_eq!(covered.len(), known.len());
    }

    #[test]
    fn a_postcode_leads_to_its_municipality_or_to_several() {
        assert_eq!(municipalities("01067"), ["146120000000"]);
        assert_eq!(municipalities("04103"), ["147130000000"]);
        assert_eq!(municipalities("09600").len(), 2);
        assert!(municipalities("10115").is_empty());
        assert!(of("146270210210").contains(&"01445"));
        assert!(is_postcode("01067"));
        assert!(!is_postcode("1067") && !is_postcode("0106a") && !is_postcode("146120000000"));
    }
}
