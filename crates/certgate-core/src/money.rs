//! Money as a decimal amount and an ISO 4217 currency. Amounts travel as strings
//! (`"120.00"`): a JSON number is refused, so no float ever touches money. An amount has at
//! most its currency's minor-unit digits; the OpenAPI schemas here are built from the same
//! patterns the parser uses.

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// How many decimal places its minor unit has (2 for USD, 0 for JPY, 3 for KWD); `None`
    /// for a currency without one (gold, special drawing rights).
    pub fn minor_digits(&self) -> Option<u32> {
        lookup(&self.0).flatten()
    }
}

/// Every ISO 4217 code with its minor unit's digits, sorted by code: found by a binary search
/// (iso_currency's `from_code` compares the code with each in turn, and every amount read or
/// written asks).
static CODES: LazyLock<Vec<([u8; 3], Option<u32>)>> = LazyLock::new(|| {
    use iso_currency::IntoEnumIterator;
    let mut codes: Vec<_> = iso_currency::Currency::iter()
        .filter_map(|c| {
            let code = <[u8; 3]>::try_from(c.code().as_bytes()).ok()?;
            Some((code, c.exponent().map(u32::from)))
        })
        .collect();
    codes.sort_unstable();
    codes
});

/// `Some(minor digits)` for an ISO 4217 code, `None` for anything else.
fn lookup(code: &[u8]) -> Option<Option<u32>> {
    CODES
        .binary_search_by(|(c, _)| c.as_slice().cmp(code))
        .ok()
        .map(|i| CODES[i].1)
}

impl FromStr for Currency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            [a, b, c] if lookup(s.as_bytes()).is_some() => Ok(Currency([*a, *b, *c])),
            _ => Err(format!(
                "`{s}` is not an ISO 4217 currency code (three upper-case letters such as USD)"
            )),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A non-negative decimal amount, written as a string on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(Decimal);

impl Amount {
    pub const ZERO: Amount = Amount(Decimal::ZERO);

    pub fn new(value: Decimal) -> Option<Self> {
        (!value.is_sign_negative() || value.is_zero()).then_some(Amount(value))
    }

    pub fn value(self) -> Decimal {
        self.0
    }

    /// `self - other`, never below zero.
    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount((self.0 - other.0).max(Decimal::ZERO))
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// `self + other` (a sum of at most [`MAX_INTEGER_DIGITS`]-digit amounts stays far within
    /// the decimal's range).
    pub fn plus(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

/// The most digits before an amount's decimal point (a trillion is plenty for a certificate).
pub const MAX_INTEGER_DIGITS: u32 = 15;
/// The most digits after it, for a currency without a minor unit (gold, SDR).
pub const MAX_FRACTION_DIGITS: u32 = 12;

/// An amount as written on the wire with at most `places` digits after the point: digits, and
/// an optional fraction (`120`, `120.5`, `120.00`); no sign, exponent or spaces.
pub fn amount_pattern(places: u32) -> String {
    let fraction = match places {
        0 => String::new(),
        n => format!(r"(?:\.[0-9]{{1,{n}}})?"),
    };
    format!("^[0-9]{{1,{MAX_INTEGER_DIGITS}}}{fraction}$")
}

static AMOUNT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(&amount_pattern(MAX_FRACTION_DIGITS)).expect("the amount pattern compiles")
});

impl FromStr for Amount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('-') && AMOUNT.is_match(&s[1..]) {
            return Err(format!("`{s}` is negative; money amounts are >= 0"));
        }
        if !AMOUNT.is_match(s) {
            return Err(format!(
                "`{s}` is not a decimal amount such as \"120.00\" (at most {MAX_INTEGER_DIGITS} digits before the point)"
            ));
        }
        let value = Decimal::from_str_exact(s).map_err(|e| format!("`{s}`: {e}"))?;
        Ok(Amount(value))
    }
}

impl Amount {
    /// Written with at least `places` decimal places: `120` at 2 is `120.00`, `0.125` stays
    /// `0.125`.
    fn with_places(self, places: u32) -> Decimal {
        let mut v = self.0.normalize();
        if v.scale() < places {
            v.rescale(places);
        }
        v
    }
}

impl fmt::Display for Amount {
    /// At least two decimal places: `120` prints as `120.00`, `0.125` stays `0.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.with_places(2))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AmountVisitor;

        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string such as \"120.00\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                Err(E::custom(format!(
                    "money must be a decimal string such as \"120.00\", not the JSON number {v}"
                )))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                self.visit_f64(v as f64)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                self.visit_f64(v as f64)
            }
        }

        d.deserialize_any(AmountVisitor)
    }
}

/// An amount in a currency; written with the currency's minor-unit places (`120.00` USD,
/// `1000` JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub amount: Amount,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Amount, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Refuses an amount finer than its currency's minor unit (`200.001` USD): it could not be
    /// paid or refunded as given.
    pub fn check_minor_units(&self) -> Result<(), String> {
        match self.currency.minor_digits() {
            Some(digits) if self.amount.value().scale() > digits => Err(format!(
                "has more decimal places than {} has ({digits})",
                self.currency
            )),
            _ => Ok(()),
        }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(Amount::ZERO, currency)
    }

    /// The amount as written on the wire: with the currency's minor-unit places.
    pub fn amount_text(&self) -> String {
        self.amount
            .with_places(self.currency.minor_digits().unwrap_or(2))
            .to_string()
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("Money", 2)?;
        m.serialize_field("amount", &self.amount_text())?;
        m.serialize_field("currency", &self.currency)?;
        m.end()
    }
}

/// Every ISO 4217 code, grouped by its minor-unit digits (`None`: no minor unit).
fn currencies_by_digits() -> std::collections::BTreeMap<Option<u32>, Vec<&'static str>> {
    use iso_currency::IntoEnumIterator;
    let mut groups = std::collections::BTreeMap::<_, Vec<_>>::new();
    for c in iso_currency::Currency::iter() {
        groups
            .entry(c.exponent().map(u32::from))
            .or_default()
            .push(c.code());
    }
    groups
}

fn string(pattern: String, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
}

impl utoipa::PartialSchema for Currency {
    fn schema() -> RefOr<Schema> {
        let codes = currencies_by_digits().into_values().flatten();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes))
            .description(Some("An ISO 4217 currency code"))
            .into()
    }
}
impl utoipa::ToSchema for Currency {}

impl utoipa::PartialSchema for Amount {
    fn schema() -> RefOr<Schema> {
        string(
            amount_pattern(MAX_FRACTION_DIGITS),
            "A decimal amount as a string, never a JSON number",
        )
        .examples(["120.00"])
        .into()
    }
}
impl utoipa::ToSchema for Amount {}

impl Money {
    /// Money's shapes, one per minor-unit size: USD's amount has at most 2 decimal places,
    /// JPY's none, KWD's 3. Open, so that an object carrying money and more can build on them.
    pub fn shapes() -> impl Iterator<Item = ObjectBuilder> {
        currencies_by_digits().into_iter().map(|(digits, codes)| {
            let places = digits.unwrap_or(MAX_FRACTION_DIGITS);
            ObjectBuilder::new()
                .property(
                    "amount",
                    string(amount_pattern(places), "A decimal amount as a string"),
                )
                .required("amount")
                .property(
                    "currency",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(codes)),
                )
                .required("currency")
        })
    }
}

impl utoipa::PartialSchema for Money {
    /// One closed alternative per minor-unit size ([`Money::shapes`]).
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "An amount and its ISO 4217 currency; the amount has at most the currency's minor-unit decimal places",
        ));
        for shape in Money::shapes() {
            one_of = one_of.item(
                shape.additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false))),
            );
        }
        one_of.into()
    }
}
impl utoipa::ToSchema for Money {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_table_agrees_with_iso_currency() {
        use iso_currency::IntoEnumIterator;
        for c in iso_currency::Currency::iter() {
            let ours: Currency = c.code().parse().unwrap();
            assert_eq!(
                ours.minor_digits(),
                c.exponent().map(u32::from),
                "{}",
                c.code()
            );
        }
        for bad in ["usd", "XXY", "US", "USDD", "ZZZ"] {
            assert_eq!(
                bad.parse::<Currency>().is_ok(),
                iso_currency::Currency::from_code(bad).is_some(),
                "{bad}"
            );
        }
    }

    #[test]
    fn amounts_are_decimal_strings() {
        let m: Money = serde_json::from_str(r#"{"amount":"120.00","currency":"USD"}"#).unwrap();
        assert_eq!(m.amount.to_string(), "120.00");
        assert_eq!(m.currency.as_str(), "USD");
        assert_eq!("120".parse::<Amount>().unwrap().to_string(), "120.00");
        assert_eq!("0.125".parse::<Amount>().unwrap().to_string(), "0.125");
    }

    #[test]
    fn numbers_negative_and_malformed_amounts_are_refused() {
        let number = serde_json::from_str::<Money>(r#"{"amount":120.5,"currency":"USD"}"#);
        assert!(number.unwrap_err().to_string().contains("decimal string"));
        for bad in [
            "-1.00",
            "-0.00",
            "abc",
            "",
            "1e3",
            "1_000",
            " 1",
            ".5",
            "1.",
            "+1",
            "1234567890123456",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} must be refused");
        }
        assert!("-1".parse::<Amount>().unwrap_err().contains("negative"));
    }

    #[test]
    fn an_amount_has_at_most_its_currencys_minor_unit_digits() {
        let money = |amount: &str, currency: &str| {
            serde_json::from_value::<Money>(
                serde_json::json!({"amount": amount, "currency": currency}),
            )
            .unwrap()
        };
        assert!(money("200.00", "USD").check_minor_units().is_ok());
        assert!(money("200.001", "USD").check_minor_units().is_err());
        assert!(money("200.000", "USD").check_minor_units().is_err());
        assert!(money("1.500", "KWD").check_minor_units().is_ok());
        assert!(money("1000.5", "JPY").check_minor_units().is_err());
        // Written back at the currency's places.
        let json = |m: Money| serde_json::to_value(m).unwrap()["amount"].clone();
        assert_eq!(json(money("1000", "JPY")), "1000");
        assert_eq!(json(money("120", "USD")), "120.00");
        assert_eq!(json(money("1.5", "KWD")), "1.500");
    }

    #[test]
    fn the_money_schema_agrees_with_the_parser() {
        let schema = serde_json::to_value(<Money as utoipa::PartialSchema>::schema()).unwrap();
        let alternatives = schema["oneOf"].as_array().unwrap();
        let usd = alternatives
            .iter()
            .find(|a| {
                a["properties"]["currency"]["enum"]
                    .as_array()
                    .unwrap()
                    .contains(&"USD".into())
            })
            .unwrap();
        let pattern =
            regex::Regex::new(usd["properties"]["amount"]["pattern"].as_str().unwrap()).unwrap();
        for amount in [
            "0",
            "120",
            "120.5",
            "120.00",
            "200.001",
            "1.",
            "-1",
            "1234567890123456",
        ] {
            let parsed = amount.parse::<Amount>().ok().map(|a| {
                Money::new(a, "USD".parse().unwrap())
                    .check_minor_units()
                    .is_ok()
            });
            assert_eq!(pattern.is_match(amount), parsed == Some(true), "{amount}");
        }
    }

    #[test]
    fn currencies_are_iso_codes() {
        assert!("usd".parse::<Currency>().is_err());
        assert!("US".parse::<Currency>().is_err());
        assert!("EURO".parse::<Currency>().is_err());
        assert_eq!("EUR".parse::<Currency>().unwrap().to_string(), "EUR");
    }

    #[test]
    fn subtraction_never_goes_below_zero() {
        let a: Amount = "20.00".parse().unwrap();
        let b: Amount = "50.00".parse().unwrap();
        assert_eq!(a.saturating_sub(b), Amount::ZERO);
        assert_eq!(b.saturating_sub(a).to_string(), "30.00");
    }
}
