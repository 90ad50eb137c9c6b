//! Order facts: what the reseller tells certgate about an order (API.md's `order` object), and
//! the checks that make them consistent before any policy looks at them.

use crate::money::{Amount, Money};
use crate::validation::{self, Errors, InvalidInput};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// Validation level of the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Validation {
    Dv,
    Ov,
    Ev,
}

/// What the certificate is for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    #[default]
    Ssl,
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub validation: Validation,
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(nullable)]
    pub kind: ProductKind,
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(nullable)]
    pub free: bool,
}

/// Where the certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Purchased,
    Uploaded,
}

/// The order's state as the reseller (or the CA) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Pending,
    AwaitingApproval,
    EmailedToRecipient,
    Issued,
    Revoked,
    Expired,
    Canceled,
}

impl OrderState {
    /// Not issued yet: the order can still be stopped.
    pub fn is_unissued(self) -> bool {
        matches!(
            self,
            OrderState::Pending | OrderState::AwaitingApproval | OrderState::EmailedToRecipient
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStatus {
    #[default]
    NotSubmitted,
    Submitted,
    Validated,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChargedTo {
    AccountBalance,
    #[default]
    Other,
}

/// The order facts of API.md. Required: `id`, `product`, `origin`, `state`, `purchased_at`,
/// `expires_at`, `paid`; everything else may be absent or null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Order {
    #[schema(schema_with = schema::id)]
    pub id: String,
    #[serde(default)]
    #[schema(schema_with = schema::optional_id)]
    pub supplier_order_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schema::optional_id)]
    pub certificate_id: Option<String>,
    /// The order's id on the reseller platform (channel `opensrs`), when bought there.
    #[serde(default)]
    #[schema(schema_with = schema::optional_id)]
    pub platform_order_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schema::common_name)]
    pub common_name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schema::technical_email)]
    pub technical_email: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schema::brand)]
    pub brand: Option<String>,
    pub product: Product,
    pub origin: Origin,
    pub state: OrderState,
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(nullable)]
    pub validation_status: ValidationStatus,
    #[serde(with = "instant")]
    pub purchased_at: DateTime<Utc>,
    #[serde(default, with = "instant::option")]
    pub issued_at: Option<DateTime<Utc>>,
    #[serde(with = "instant")]
    pub expires_at: DateTime<Utc>,
    #[serde(default, with = "instant::option")]
    pub revoked_at: Option<DateTime<Utc>>,
    pub paid: Money,
    #[serde(default)]
    pub voucher: Option<Money>,
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(nullable)]
    pub approval_required: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(nullable)]
    pub reissue: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(nullable)]
    pub generated: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(nullable)]
    pub charged_to: ChargedTo,
}

/// The longest an order's identifiers may be.
const MAX_ID: usize = 128;
const MAX_BRAND: usize = 64;

/// The OpenAPI schemas of the order's text fields, from the limits [`Order::validate`] checks.
mod schema {
    use super::{MAX_BRAND, MAX_ID};
    use crate::validation::{self, optional_text_schema, string_schema};
    use utoipa::openapi::schema::ObjectBuilder;

    pub fn id() -> ObjectBuilder {
        string_schema(validation::id_pattern(), MAX_ID, false).min_length(Some(1))
    }

    pub fn optional_id() -> ObjectBuilder {
        optional_text_schema(MAX_ID)
    }

    pub fn brand() -> ObjectBuilder {
        optional_text_schema(MAX_BRAND)
    }

    pub fn common_name() -> ObjectBuilder {
        string_schema(
            validation::common_name_pattern(),
            validation::MAX_COMMON_NAME,
            true,
        )
    }

    pub fn technical_email() -> ObjectBuilder {
        string_schema(validation::email_pattern(), validation::MAX_EMAIL, true)
    }
}

impl Order {
    /// A certificate whose `expires_at <= as_of` is expired whatever its `state` says.
    pub fn is_expired(&self, as_of: DateTime<Utc>) -> bool {
        self.state == OrderState::Expired || self.expires_at <= as_of
    }

    /// The part of the price covered by a voucher (zero when none).
    pub fn voucher_amount(&self) -> Amount {
        self.voucher.map_or(Amount::ZERO, |v| v.amount)
    }

    /// Checks the facts against each other. Every error names its field under `order.`.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let mut errors = Errors::default();
        if self.id.trim().is_empty() {
            errors.push("order.id", "must not be empty");
        }
        errors.text("order.id", &self.id, MAX_ID, false);
        for (field, value, max) in [
            ("order.supplier_order_id", &self.supplier_order_id, MAX_ID),
            ("order.certificate_id", &self.certificate_id, MAX_ID),
            ("order.platform_order_id", &self.platform_order_id, MAX_ID),
            ("order.brand", &self.brand, MAX_BRAND),
        ] {
            if let Some(v) = value {
                errors.text(field, v, max, false);
            }
        }
        if let Some(cn) = &self.common_name {
            if errors.text("order.common_name", cn, validation::MAX_COMMON_NAME, false) {
                if let Err(message) = validation::common_name(cn) {
                    errors.push("order.common_name", message);
                }
            }
        }
        if let Some(email) = &self.technical_email {
            if errors.text("order.technical_email", email, validation::MAX_EMAIL, false) {
                if let Err(message) = validation::email(email) {
                    errors.push("order.technical_email", message);
                }
            }
        }
        for (field, money) in [
            ("order.paid.amount", Some(self.paid)),
            ("order.voucher.amount", self.voucher),
        ] {
            if let Some(m) = money {
                if let Err(message) = m.check_minor_units() {
                    errors.push(field, message);
                }
            }
        }
        if let Some(issued) = self.issued_at {
            if issued < self.purchased_at {
                errors.push("order.issued_at", "is before order.purchased_at");
            }
            if self.expires_at < issued {
                errors.push("order.expires_at", "is before order.issued_at");
            }
        } else if self.expires_at < self.purchased_at {
            errors.push("order.expires_at", "is before order.purchased_at");
        }
        if let Some(revoked) = self.revoked_at {
            if revoked < self.issued_at.unwrap_or(self.purchased_at) {
                errors.push(
                    "order.revoked_at",
                    "is before the certificate was issued (order.issued_at)",
                );
            }
        }
        if matches!(self.state, OrderState::Issued | OrderState::Revoked)
            && self.issued_at.is_none()
        {
            errors.push(
                "order.issued_at",
                "is required when order.state is issued or revoked",
            );
        }
        if let Some(voucher) = self.voucher {
            if voucher.currency != self.paid.currency {
                errors.push(
                    "order.voucher.currency",
                    format!(
                        "is {} but order.paid.currency is {}; one order has one currency",
                        voucher.currency, self.paid.currency
                    ),
                );
            }
        }
        errors.finish()
    }
}

/// `null` reads as the type's default, so optional flags may be absent or null alike.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// RFC 3339 instants with a message that says what was expected; any offset is read and kept
/// as UTC. Impossible dates (February 30th) are refused here.
pub mod instant {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                format!("`{s}` is not an RFC 3339 instant such as 2026-01-02T10:00:00Z ({e})")
            })
    }

    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&s).map_err(de::Error::custom)
    }

    /// The same for optional instants (absent or null is `None`).
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{de, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<std::borrow::Cow<'de, str>>::deserialize(d)?
                .map(|s| super::parse(&s).map_err(de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Order, String> {
        serde_json::from_value::<Order>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn api_example_parses_and_validates() {
        let order = parse(sample()).unwrap();
        order.validate().unwrap();
        assert_eq!(order.voucher_amount().to_string(), "20.00");
    }

    #[test]
    fn nulls_read_as_defaults() {
        let mut v = sample();
        v["validation_status"] = json!(null);
        v["charged_to"] = json!(null);
        v["reissue"] = json!(null);
        v["product"]["kind"] = json!(null);
        let order = parse(v).unwrap();
        assert_eq!(order.validation_status, ValidationStatus::NotSubmitted);
        assert_eq!(order.charged_to, ChargedTo::Other);
        assert!(!order.reissue);
        assert_eq!(order.product.kind, ProductKind::Ssl);
    }

    #[test]
    fn unknown_fields_and_impossible_dates_are_refused() {
        let mut v = sample();
        v["colour"] = json!("blue");
        assert!(parse(v).unwrap_err().contains("colour"));
        let mut v = sample();
        v["issued_at"] = json!("2026-02-30T00:00:00Z");
        assert!(parse(v).unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn offsets_are_read_as_utc() {
        let mut v = sample();
        v["issued_at"] = json!("2026-01-05T11:00:00+02:00");
        let order = parse(v).unwrap();
        assert_eq!(
            order.issued_at.unwrap(),
            "2026-01-05T09:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    fn fields(v: serde_json::Value) -> Vec<String> {
        parse(v)
            .unwrap()
            .validate()
            .unwrap_err()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn dates_out_of_order_name_the_field() {
        let mut v = sample();
        v["issued_at"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(fields(v), ["order.issued_at"]);
        let mut v = sample();
        v["expires_at"] = json!("2026-01-04T00:00:00Z");
        assert_eq!(fields(v), ["order.expires_at"]);
        let mut v = sample();
        v["revoked_at"] = json!("2026-01-03T00:00:00Z");
        assert_eq!(fields(v), ["order.revoked_at"]);
        let mut v = sample();
        v["issued_at"] = json!(null);
        assert_eq!(fields(v), ["order.issued_at"]);
    }

    #[test]
    fn mixed_currencies_name_the_voucher() {
        let mut v = sample();
        v["voucher"]["currency"] = json!("EUR");
        assert_eq!(fields(v), ["order.voucher.currency"]);
    }

    #[test]
    fn expiry_overrides_the_state() {
        let order = parse(sample()).unwrap();
        let before = "2027-01-05T08:59:59Z".parse().unwrap();
        let at = "2027-01-05T09:00:00Z".parse().unwrap();
        assert!(!order.is_expired(before));
        assert!(order.is_expired(at));
    }
}
