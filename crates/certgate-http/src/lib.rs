//! The HTTP layer every CA client uses: one reqwest client builder with timeouts, the
//! classification of failures into retryable and permanent ([`CallError`]), Retry-After, and
//! [`Secret`], which never prints its value.

use certgate_core::config::SecretRef;
use certgate_core::StepError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use std::fmt;
use std::time::{Duration, SystemTime};

/// Timeouts for calls to a CA.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// The defaults, with the request timeout of a provider's `api.timeout_ms` if set.
    pub fn for_api(api: &certgate_core::config::ApiConfig) -> Self {
        let mut t = Timeouts::default();
        if let Some(ms) = api.timeout_ms {
            t.request = Duration::from_millis(ms);
            t.connect = t.connect.min(t.request);
        }
        t
    }
}

/// The reqwest client every CA client is built on.
pub fn client(timeouts: Timeouts) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .user_agent(concat!("certgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS backend is compiled in")
}

/// A credential read from the environment. Debug and Display print `**REDACTED**`.
#[derive(Clone)]
pub struct Secret {
    source: SecretRef,
}

impl Secret {
    pub fn new(source: SecretRef) -> Self {
        Secret { source }
    }

    /// The value, read from the environment at the moment of use. A missing variable is a
    /// permanent failure that names the variable (never the value).
    pub fn expose(&self) -> Result<String, CallError> {
        self.source
            .resolve()
            .ok_or_else(|| CallError::MissingCredential(self.source.var.clone()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(${{{}}} = **REDACTED**)", self.source.var)
    }
}

/// A header value that carries a credential: marked sensitive so that no HTTP layer logs or
/// indexes it.
pub fn sensitive(value: &str) -> Result<reqwest::header::HeaderValue, CallError> {
    let mut v = reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| CallError::Decode("a credential is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// What went wrong calling a CA, by what it means for a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("the CA did not answer in time")]
    Timeout,
    #[error("cannot reach the CA: {0}")]
    Connect(String),
    #[error("the CA's rate limit was reached: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("the CA failed ({status}): {message}")]
    Server {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The gateway's own credentials were refused: an operator must fix the config.
    #[error("the CA refused certgate's credentials ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    #[error("the CA does not know it ({status}): {message}")]
    NotFound { status: u16, message: String },
    #[error("the CA refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the CA's answer could not be read: {0}")]
    Decode(String),
    #[error("the credential ${{{0}}} is not set in the environment")]
    MissingCredential(String),
}

impl CallError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CallError::Timeout
                | CallError::Connect(_)
                | CallError::RateLimited { .. }
                | CallError::Server { .. }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::RateLimited { retry_after, .. } | CallError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Classifies an HTTP failure status with the CA's message.
    pub fn from_status(status: StatusCode, headers: &HeaderMap, message: String) -> CallError {
        let code = status.as_u16();
        let retry_after = retry_after(headers);
        match status {
            StatusCode::TOO_MANY_REQUESTS => CallError::RateLimited {
                message,
                retry_after,
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CallError::Unauthorized {
                status: code,
                message,
            },
            StatusCode::NOT_FOUND => CallError::NotFound {
                status: code,
                message,
            },
            StatusCode::REQUEST_TIMEOUT => CallError::Timeout,
            s if s.is_server_error() => CallError::Server {
                status: code,
                message,
                retry_after,
            },
            _ => CallError::Rejected {
                status: code,
                message,
            },
        }
    }
}

impl From<reqwest::Error> for CallError {
    /// Transport failures. The URL is dropped from the message: it may carry credentials.
    fn from(e: reqwest::Error) -> Self {
        let e = e.without_url();
        if e.is_timeout() {
            CallError::Timeout
        } else if e.is_connect() || e.is_request() {
            CallError::Connect(e.to_string())
        } else if e.is_decode() || e.is_body() {
            CallError::Decode(e.to_string())
        } else {
            CallError::Connect(e.to_string())
        }
    }
}

impl From<CallError> for StepError {
    fn from(e: CallError) -> Self {
        let retry_after = e.retry_after();
        if e.is_retryable() {
            StepError::Retryable {
                message: e.to_string(),
                retry_after,
            }
        } else {
            StepError::Permanent {
                message: e.to_string(),
            }
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Sends `request`; a non-success status becomes a [`CallError`] carrying the message that
/// `read_error` extracts from the CA's error body.
pub async fn send(
    request: reqwest::RequestBuilder,
    read_error: fn(&str) -> Option<String>,
) -> Result<reqwest::Response, CallError> {
    let response = request.send().await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    let message = read_error(&body).unwrap_or_else(|| summary(&body, status));
    Err(CallError::from_status(status, &headers, message))
}

/// The start of a body, or the status's reason when it is empty.
pub fn summary(body: &str, status: StatusCode) -> String {
    let text: String = body.trim().chars().take(300).collect();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_are_classified() {
        let h = HeaderMap::new();
        let c = |s: u16| CallError::from_status(StatusCode::from_u16(s).unwrap(), &h, "m".into());
        assert!(c(429).is_retryable());
        assert!(c(500).is_retryable());
        assert!(c(503).is_retryable());
        assert!(!c(400).is_retryable());
        assert!(!c(401).is_retryable());
        assert!(!c(403).is_retryable());
        assert!(!c(404).is_retryable());
        assert!(matches!(c(403), CallError::Unauthorized { .. }));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn secrets_never_print() {
        std::env::set_var("CERTGATE_HTTP_TEST_SECRET", "hunter2");
        let s = Secret::new(SecretRef::parse("${CERTGATE_HTTP_TEST_SECRET}").unwrap());
        assert_eq!(s.expose().unwrap(), "hunter2");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("REDACTED"),
            "{shown}"
        );
        let missing = Secret::new(SecretRef::parse("${CERTGATE_HTTP_TEST_UNSET}").unwrap());
        let e = missing.expose().unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("CERTGATE_HTTP_TEST_UNSET"));
    }

    #[tokio::test]
    async fn transport_failures_are_retryable() {
        use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(500)))
            .mount(&server)
            .await;
        let c = client(Timeouts {
            connect: Duration::from_millis(200),
            request: Duration::from_millis(100),
        });
        let e = send(c.get(server.uri()), |_| None).await.unwrap_err();
        assert_eq!(e, CallError::Timeout);
        assert!(StepError::from(e).is_retryable());
        // Nothing listens on port 9 of localhost.
        let e = send(c.get("http://127.0.0.1:9/"), |_| None)
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Connect(_)), "{e:?}");
        assert!(e.is_retryable());
    }
}

pub mod pacer;
