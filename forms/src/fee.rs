//! The fee a citizen pays online before submitting (`fee` in `service.toml`): a fixed
//! amount, or an amount per unit of a number field of the form (`je = "anzahl"`: three
//! certificates cost three times the fee). What is due is computed from the entries in
//! one place, so the portal charges, the confirmation names and the message carries the
//! same amount.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::form::{FieldKind, FormDefinition};

/// A fee in euros, as `service.toml` sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fee {
    /// Decimal with two places, e.g. `"30.50"`; per unit where `je` is set.
    pub betrag: String,
    pub beschreibung: String,
    /// A whole-number field of the form (e.g. `anzahl`): the fee is due for each unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub je: Option<String>,
}

impl Fee {
    /// The amount in cents, if `betrag` is an amount like `30.50`.
    pub fn cents(&self) -> Option<u64> {
        cents_of(&self.betrag)
    }

    /// Whether the definition holds together with its form: an amount, and `je` naming a
    /// required whole-number field of it. The reason if not.
    pub fn validate(&self, form: &FormDefinition) -> Result<(), String> {
        if self.cents().is_none() {
            return Err(format!(
                "fee.betrag `{}` is not an amount like 30.50",
                self.betrag
            ));
        }
        let Some(unit) = &self.je else {
            return Ok(());
        };
        match form.fields.iter().find(|f| &f.name == unit) {
            Some(field)
                if matches!(field.kind, FieldKind::Number) && field.integer && field.required =>
            {
                Ok(())
            }
            Some(_) => Err(format!(
                "fee.je `{unit}` is not a required whole-number field (type = \"number\", integer = true, required = true)"
            )),
            None => Err(format!("fee.je `{unit}` names no field of form.toml")),
        }
    }

    /// What is due for these entries (the form's data): the fee itself, or for `je` the
    /// amount times the units, with a description that shows the sum. Entries without a
    /// count (not yet filled in) owe one unit.
    pub fn due(&self, data: &Value) -> Fee {
        let (Some(unit), Some(each)) = (&self.je, self.cents()) else {
            return Fee {
                je: None,
                ..self.clone()
            };
        };
        let count = units(&data[unit.as_str()]);
        if count == 1 {
            return Fee {
                je: None,
                ..self.clone()
            };
        }
        Fee {
            betrag: amount_of(each.saturating_mul(count)),
            beschreibung: format!(
                "{} ({count} × {} €)",
                self.beschreibung,
                self.betrag.replace('.', ",")
            ),
            je: None,
        }
    }
}

/// A count as the form stores it (a number or its text); at least one.
fn units(value: &Value) -> u64 {
    let count = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    count.unwrap_or(1).max(1)
}

/// `30.50` → 3050.
pub fn cents_of(amount: &str) -> Option<u64> {
    let (euros, cents) = amount.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(euros) || cents.len() != 2 || !digits(cents) {
        return None;
    }
    euros
        .parse::<u64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents.parse().ok()?)
}

/// 3050 → `30.50`.
pub fn amount_of(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn per_certificate() -> Fee {
        Fee {
            betrag: "12.00".into(),
            beschreibung: "Gebühr je Urkunde".into(),
            je: Some("anzahl".into()),
        }
    }

    #[test]
    fn a_fee_per_unit_is_due_for_every_unit() {
        let three = per_certificate().due(&json!({"anzahl": 3}));
        assert_eq!(three.betrag, "36.00");
        assert_eq!(three.beschreibung, "Gebühr je Urkunde (3 × 12,00 €)");
        assert_eq!(three.je, None);
        // As the form posts it, and not yet filled in.
        assert_eq!(
            per_certificate().due(&json!({"anzahl": "10"})).betrag,
            "120.00"
        );
        let one = per_certificate().due(&json!({}));
        assert_eq!(
            (one.betrag.as_str(), one.beschreibung.as_str()),
            ("12.00", "Gebühr je Urkunde")
        );
        assert_eq!(per_certificate().due(&json!({"anzahl": 0})).betrag, "12.00");
    }

    #[test]
    fn a_fixed_fee_stays_what_it_is() {
        let fixed = Fee {
            betrag: "30.70".into(),
            beschreibung: "Gebühr für ein Jahr".into(),
            je: None,
        };
        assert_eq!(fixed.due(&json!({"anzahl": 4})), fixed);
    }

    #[test]
    fn a_fee_per_unit_must_name_a_required_whole_number_field() {
        let form: FormDefinition = toml::from_str(
            r#"
            [[field]]
            name = "anzahl"
            label = "Anzahl"
            type = "number"
            required = true
            integer = true

            [[field]]
            name = "bemerkung"
            label = "Bemerkung"
            type = "text"
            "#,
        )
        .unwrap();
        assert_eq!(per_certificate().validate(&form), Ok(()));
        let on = |unit: &str| Fee {
            je: Some(unit.into()),
            ..per_certificate()
        };
        assert_eq!(
            on("exemplare").validate(&form),
            Err("fee.je `exemplare` names no field of form.toml".into())
        );
        assert!(
            on("bemerkung")
                .validate(&form)
                .unwrap_err()
                .contains("not a required whole-number field")
        );
        let no_amount = Fee {
            betrag: "12".into(),
            ..per_certificate()
        };
        assert_eq!(
            no_amount.validate(&form),
            Err("fee.betrag `12` is not an amount like 30.50".into())
        );
    }

    #[test]
    fn amounts_are_read_and_written_in_cents() {
        assert_eq!(cents_of("30.50"), Some(3050));
        assert_eq!(cents_of("0.05"), Some(5));
        for bad in ["30", "30.5", "30,50", ".50", "3a.00", "30.500"] {
            assert_eq!(cents_of(bad), None, "{bad}");
        }
        assert_eq!(amount_of(3050), "30.50");
        assert_eq!(amount_of(5), "0.05");
    }
}
