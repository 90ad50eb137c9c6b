//! Calendar days and business days, exactly as POLICY.md's Terms define them.
//!
//! - "within N calendar days after T" holds while `as_of <= T + N*24h` ([`days_after`]);
//! - a business day is Monday to Friday minus the provider's holidays;
//! - a deadline that leaves the CA N business days before a limit L is found by stepping back
//!   from L one business day at a time, N times, keeping the time of day ([`Calendar::step_back`]);
//! - N business days after T (a refund due after the CA's processing time) is found by stepping
//!   forward the same way ([`Calendar::step_forward`]).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};

/// `t + n*24h`.
pub fn days_after(t: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    t + Duration::days(i64::from(n))
}

/// `t - n*24h`.
pub fn days_before(t: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    t - Duration::days(i64::from(n))
}

/// A provider's business-day calendar: weekdays minus its holidays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Sorted and deduplicated, so lookups are a binary search.
    holidays: Vec<NaiveDate>,
}

impl Calendar {
    pub fn new(holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        let mut holidays: Vec<NaiveDate> = holidays.into_iter().collect();
        holidays.sort_unstable();
        holidays.dedup();
        Self { holidays }
    }

    pub fn holidays(&self) -> &[NaiveDate] {
        &self.holidays
    }

    pub fn is_business_day(&self, day: NaiveDate) -> bool {
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
            && self.holidays.binary_search(&day).is_err()
    }

    /// Steps back from `limit` one business day at a time, `n` times, keeping the time of day.
    /// `limit` itself need not be a business day.
    pub fn step_back(&self, limit: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let mut t = limit;
        for _ in 0..n {
            t -= Duration::days(1);
            while !self.is_business_day(t.date_naive()) {
                t -= Duration::days(1);
            }
        }
        t
    }

    /// Steps forward from `start` one business day at a time, `n` times, keeping the time of
    /// day: `n` business days after `start`.
    pub fn step_forward(&self, start: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let mut t = start;
        for _ in 0..n {
            t += Duration::days(1);
            while !self.is_business_day(t.date_naive()) {
                t += Duration::days(1);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn calendar_days_are_24_hour_instants() {
        let t = at("2026-06-01T08:30:00Z");
        assert_eq!(days_after(t, 28), at("2026-06-29T08:30:00Z"));
        assert_eq!(days_before(t, 15), at("2026-05-17T08:30:00Z"));
    }

    #[test]
    fn five_steps_back_from_a_monday() {
        // EXAMPLES.md #1: Mon 29 -> Fri 26, Thu 25, Wed 24, Tue 23, Mon 22.
        let cal = Calendar::default();
        assert_eq!(
            cal.step_back(at("2026-06-29T08:30:00Z"), 5),
            at("2026-06-22T08:30:00Z")
        );
    }

    #[test]
    fn a_holiday_is_skipped() {
        // EXAMPLES.md #2: with Thu 25 a holiday the fifth step lands on Fri 19.
        let cal = Calendar::new([day("2026-06-25")]);
        assert_eq!(
            cal.step_back(at("2026-06-29T08:30:00Z"), 5),
            at("2026-06-19T08:30:00Z")
        );
    }

    #[test]
    fn a_limit_on_a_weekend_steps_to_the_friday_before() {
        let cal = Calendar::default();
        // Saturday 12:00 -> Friday 12:00; Sunday too.
        assert_eq!(
            cal.step_back(at("2026-06-27T12:00:00Z"), 1),
            at("2026-06-26T12:00:00Z")
        );
        assert_eq!(
            cal.step_back(at("2026-06-28T12:00:00Z"), 1),
            at("2026-06-26T12:00:00Z")
        );
        // Monday 09:00 -> previous Friday 09:00, or Thursday if that Friday is a holiday.
        assert_eq!(
            cal.step_back(at("2026-06-29T09:00:00Z"), 1),
            at("2026-06-26T09:00:00Z")
        );
        let cal = Calendar::new([day("2026-06-26")]);
        assert_eq!(
            cal.step_back(at("2026-06-29T09:00:00Z"), 1),
            at("2026-06-25T09:00:00Z")
        );
    }

    #[test]
    fn stepping_forward_skips_weekends_and_holidays() {
        let cal = Calendar::new([day("2026-07-03")]);
        // Wed 1 July + 2 business days: Thu 2, (Fri 3 holiday, weekend) Mon 6.
        assert_eq!(
            cal.step_forward(at("2026-07-01T10:00:00Z"), 2),
            at("2026-07-06T10:00:00Z")
        );
        // From a Saturday, the first business day is Monday.
        assert_eq!(
            Calendar::default().step_forward(at("2026-06-27T12:00:00Z"), 1),
            at("2026-06-29T12:00:00Z")
        );
        let t = at("2026-06-27T12:00:00Z");
        assert_eq!(cal.step_forward(t, 0), t);
    }

    #[test]
    fn zero_steps_is_the_limit_itself() {
        let t = at("2026-06-27T12:00:00Z");
        assert_eq!(Calendar::default().step_back(t, 0), t);
    }

    #[test]
    fn holidays_are_sorted_and_deduplicated() {
        let cal = Calendar::new([day("2026-12-25"), day("2026-01-01"), day("2026-12-25")]);
        assert_eq!(cal.holidays(), &[day("2026-01-01"), day("2026-12-25")]);
        assert!(!cal.is_business_day(day("2026-12-25")));
        assert!(cal.is_business_day(day("2026-12-24")));
    }
}
