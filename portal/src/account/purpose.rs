//! The purpose of the applicant's own inputs (WCAG 1.3.5): the master data (Stammdaten)
//! page and the forms mark them alike, so browsers can fill them in.

/// The purpose of an input about the applicant (WCAG 1.3.5), for `autocomplete`: only
/// in the groups that describe the applicant, never for other persons in a form.
pub fn autocomplete(path: &str) -> Option<&'static str> {
    let (group, field) = path.split_once('.')?;
    if !matches!(
        group,
        "person" | "anschrift" | "wohnanschrift" | "kontakt" | "antragsteller" | "inhaber"
    ) || field.contains('.')
    {
        return None;
    }
    Some(match field {
        "familienname" => "family-name",
        "vornamen" => "given-name",
        "geburtsdatum" => "bday",
        "strasse" => "address-line1",
        "postleitzahl" => "postal-code",
        "ort" => "address-level2",
        "email" => "email",
        "telefon" => "tel",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_applicant_s_own_inputs_have_a_purpose() {
        assert_eq!(autocomplete("person.familienname"), Some("family-name"));
        assert_eq!(
            autocomplete("wohnanschrift.postleitzahl"),
            Some("postal-code")
        );
        assert_eq!(autocomplete("beurkundete_person.familienname"), None);
        assert_eq!(autocomplete("person.geburtsname"), None);
        assert_eq!(autocomplete("familienname"), None);
    }
}
