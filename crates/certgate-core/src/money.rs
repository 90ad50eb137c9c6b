//! Money as a decimal amount and an ISO 4217 currency. Amounts travel as strings
//! (`"120.00"`): a JSON number is refused, so no float ever touches money.

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

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
        iso_currency::Currency::from_code(self.as_str())
            .and_then(|c| c.exponent())
            .map(u32::from)
    }
}

impl FromStr for Currency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            [a, b, c] if iso_currency::Currency::from_code(s).is_some() => {
                Ok(Currency([*a, *b, *c]))
            }
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
}

impl FromStr for Amount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || format!("`{s}` is not a decimal amount such as \"120.00\"");
        if s.is_empty() || s.contains(['e', 'E', '_', ' ']) {
            return Err(malformed());
        }
        let value = Decimal::from_str_exact(s).map_err(|_| malformed())?;
        Amount::new(value).ok_or_else(|| format!("`{s}` is negative; money amounts are >= 0"))
    }
}

impl fmt::Display for Amount {
    /// At least two decimal places: `120` prints as `120.00`, `0.125` stays `0.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = self.0.normalize();
        if v.scale() < 2 {
            v.rescale(2);
        }
        write!(f, "{v}")
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

/// An amount in a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
            Some(digits) if self.amount.value().normalize().scale() > digits => Err(format!(
                "has more decimal places than {} has ({digits})",
                self.currency
            )),
            _ => Ok(()),
        }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(Amount::ZERO, currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in ["-1.00", "abc", "", "1e3", "1_000", " 1"] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} must be refused");
        }
        assert!("-0.00".parse::<Amount>().is_ok(), "negative zero is zero");
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
