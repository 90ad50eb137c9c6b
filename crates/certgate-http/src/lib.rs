//! The HTTP layer every CA client uses: one reqwest client builder with timeouts, what a
//! failure means for a step ([`CallFailure`]: whether the request went out, whether the CA may
//! have acted), Retry-After, and [`Secret`], which never prints its value.

use certgate_core::config::SecretRef;
use certgate_core::{CaMessage, CallFailure};
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

    /// The value, read from the environment at the moment of use. A missing variable means
    /// nothing can be sent; the failure names the variable (never a value).
    pub fn expose(&self) -> Result<String, CallFailure> {
        self.source.resolve().ok_or_else(|| {
            CallFailure::NotSent(format!(
                "the credential ${{{}}} is not set in the environment",
                self.source.var
            ))
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(${{{}}} = **REDACTED**)", self.source.var)
    }
}

/// Every credential a client needs is set: `CaClient::ready` for clients built on secrets.
pub fn ready(secrets: &[&Secret]) -> Result<(), String> {
    for s in secrets {
        if let Err(CallFailure::NotSent(why)) = s.expose() {
            return Err(why);
        }
    }
    Ok(())
}

/// A header value that carries a credential: marked sensitive so that no HTTP layer logs or
/// indexes it.
pub fn sensitive(value: &str) -> Result<reqwest::header::HeaderValue, CallFailure> {
    let mut v = reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| CallFailure::NotSent("a credential is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// A CA's answer with a failure status, before its client says what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    pub status: StatusCode,
    /// The CA's code and message from its error body.
    pub answer: CaMessage,
    pub retry_after: Option<Duration>,
}

impl ErrorAnswer {
    /// What the status usually means: 429 throttled; 408 and 5xx no usable answer (the CA may
    /// have acted); 401/403 the gateway's own credentials; other 4xx a refusal.
    pub fn classify(self) -> CallFailure {
        let code = self.status.as_u16();
        let text = &self.answer.message;
        let message = |what: &str| {
            CaMessage::new(self.answer.code.clone(), format!("{what} ({code}): {text}"))
        };
        match self.status {
            StatusCode::TOO_MANY_REQUESTS => CallFailure::Throttled {
                answer: CaMessage::new(
                    self.answer.code.clone(),
                    format!("the CA's rate limit was reached: {text}"),
                ),
                retry_after: self.retry_after,
            },
            StatusCode::REQUEST_TIMEOUT => CallFailure::NoAnswer {
                message: "the CA did not answer in time".into(),
                retry_after: self.retry_after,
            },
            s if s.is_server_error() => CallFailure::NoAnswer {
                message: format!("the CA failed ({code}): {text}"),
                retry_after: self.retry_after,
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                CallFailure::Refused(message("the CA refused certgate's credentials"))
            }
            StatusCode::NOT_FOUND => CallFailure::Refused(message("the CA does not know it")),
            _ => CallFailure::Refused(message("the CA refused the request")),
        }
    }
}

/// Why a request brought no success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No usable answer (nothing sent, unreachable, timed out, reset).
    Failed(CallFailure),
    /// The CA answered with a failure status.
    Answered(ErrorAnswer),
}

impl From<SendError> for CallFailure {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Failed(f) => f,
            SendError::Answered(a) => a.classify(),
        }
    }
}

impl From<CallFailure> for SendError {
    fn from(f: CallFailure) -> Self {
        SendError::Failed(f)
    }
}

/// A transport failure, by whether the request can have reached the CA. The URL is dropped
/// from the message: it may carry credentials.
pub fn transport(e: reqwest::Error) -> CallFailure {
    let e = e.without_url();
    if e.is_connect() {
        // No connection was made: nothing was sent.
        CallFailure::Unreachable(format!("cannot reach the CA: {e}"))
    } else if e.is_timeout() {
        CallFailure::NoAnswer {
            message: "the CA did not answer in time".into(),
            retry_after: None,
        }
    } else if e.is_decode() || e.is_body() {
        CallFailure::NoAnswer {
            message: format!("the CA's answer could not be read: {e}"),
            retry_after: None,
        }
    } else {
        CallFailure::NoAnswer {
            message: format!("the connection to the CA failed: {e}"),
            retry_after: None,
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

/// Sends `request`; a failure status becomes an [`ErrorAnswer`] carrying what `read_error`
/// extracts from the CA's error body. The HTTP status is recorded on the current span's
/// `http_status` field (the executor's per-call log line).
pub async fn send(
    request: reqwest::RequestBuilder,
    read_error: fn(&str) -> Option<CaMessage>,
) -> Result<reqwest::Response, SendError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    tracing::Span::current().record("http_status", status.as_u16());
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let answer = read_error(&body).unwrap_or_else(|| CaMessage::text(summary(&body, status)));
    Err(SendError::Answered(ErrorAnswer {
        status,
        answer,
        retry_after,
    }))
}

/// Reads a success body as JSON; an unreadable one leaves the outcome unknown.
pub async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, CallFailure> {
    response.json().await.map_err(transport)
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
        let c = |s: u16| {
            ErrorAnswer {
                status: StatusCode::from_u16(s).unwrap(),
                answer: CaMessage::new(Some("c".into()), "c: m"),
                retry_after: None,
            }
            .classify()
        };
        assert!(matches!(c(429), CallFailure::Throttled { .. }));
        assert!(matches!(c(500), CallFailure::NoAnswer { .. }));
        assert!(matches!(c(503), CallFailure::NoAnswer { .. }));
        assert!(matches!(c(408), CallFailure::NoAnswer { .. }));
        for refused in [400, 401, 403, 404, 409] {
            assert!(matches!(c(refused), CallFailure::Refused(_)), "{refused}");
        }
        assert_eq!(
            c(404),
            CallFailure::Refused(CaMessage::new(
                Some("c".into()),
                "the CA does not know it (404): c: m"
            ))
        );
        assert_eq!(c(401).code(), Some("c"));
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
        assert_eq!(ready(&[&s]), Ok(()));
        let missing = Secret::new(SecretRef::parse("${CERTGATE_HTTP_TEST_UNSET}").unwrap());
        let e = missing.expose().unwrap_err();
        assert!(matches!(e, CallFailure::NotSent(_)));
        assert!(e
            .to_string()
            .starts_with("not sent: the credential ${CERTGATE_HTTP_TEST_UNSET}"));
        assert!(ready(&[&s, &missing])
            .unwrap_err()
            .contains("CERTGATE_HTTP_TEST_UNSET"));
    }

    #[tokio::test]
    async fn transport_failures_say_whether_the_request_went_out() {
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
        // The request reached the CA; its answer did not come back in time.
        let e = CallFailure::from(send(c.get(server.uri()), |_| None).await.unwrap_err());
        assert_eq!(
            e,
            CallFailure::NoAnswer {
                message: "the CA did not answer in time".into(),
                retry_after: None
            }
        );
        // Nothing listens on port 9 of localhost: nothing was sent.
        let e = CallFailure::from(
            send(c.get("http://127.0.0.1:9/"), |_| None)
                .await
                .unwrap_err(),
        );
        assert!(matches!(e, CallFailure::Unreachable(_)), "{e:?}");
    }
}
