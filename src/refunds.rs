//! `certgate refunds report`: the refund ledger's sums by provider and currency (the same
//! figures as `GET /v1/refunds/summary`) as a table, CSV or JSON.

use certgate_engine::ledger::ProviderTotals;

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

const HEADER: [&str; 7] = [
    "provider",
    "currency",
    "expected",
    "credited",
    "outstanding",
    "overdue",
    "mismatched",
];

fn cells(t: &ProviderTotals) -> [String; 7] {
    [
        t.provider.clone(),
        t.currency.to_string(),
        t.expected.clone(),
        t.credited.clone(),
        t.outstanding.clone(),
        t.overdue.to_string(),
        t.mismatched.to_string(),
    ]
}

/// The report of `totals` in `format`.
pub fn render(totals: &[ProviderTotals], format: Format) -> Result<String, ReportError> {
    Ok(match format {
        Format::Json => {
            serde_json::to_string_pretty(&serde_json::json!({ "by_provider": totals }))? + "\n"
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(HEADER)?;
            for t in totals {
                w.write_record(cells(t))?;
            }
            String::from_utf8(w.into_inner().map_err(|e| e.into_error())?)
                .expect("CSV of UTF-8 text is UTF-8")
        }
        Format::Table => {
            let rows: Vec<[String; 7]> = totals.iter().map(cells).collect();
            let mut widths = HEADER.map(str::len);
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let mut out = String::new();
            let header = HEADER.map(str::to_owned);
            for row in std::iter::once(&header).chain(&rows) {
                let line: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .enumerate()
                    .map(|(i, (cell, w))| {
                        // Names left, figures right.
                        if i < 2 {
                            format!("{cell:<w$}")
                        } else {
                            format!("{cell:>w$}")
                        }
                    })
                    .collect();
                out.push_str(line.join("  ").trim_end());
                out.push('\n');
            }
            if rows.is_empty() {
                out.push_str("(no refunds yet)\n");
            }
            out
        }
    })
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write CSV: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals() -> Vec<ProviderTotals> {
        vec![ProviderTotals {
            provider: "digicert".into(),
            currency: "USD".parse().unwrap(),
            expected: "240.00".into(),
            credited: "100.00".into(),
            outstanding: "120.00".into(),
            overdue: 1,
            mismatched: 1,
        }]
    }

    #[test]
    fn every_format_carries_the_same_figures() {
        let table = render(&totals(), Format::Table).unwrap();
        assert_eq!(
            table,
            "provider  currency  expected  credited  outstanding  overdue  mismatched\n\
             digicert  USD         240.00    100.00       120.00        1           1\n"
        );
        let csv = render(&totals(), Format::Csv).unwrap();
        assert_eq!(
            csv,
            "provider,currency,expected,credited,outstanding,overdue,mismatched\n\
             digicert,USD,240.00,100.00,120.00,1,1\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&totals(), Format::Json).unwrap()).unwrap();
        assert_eq!(json["by_provider"][0]["outstanding"], "120.00");
        assert!(render(&[], Format::Table)
            .unwrap()
            .contains("no refunds yet"));
    }
}
