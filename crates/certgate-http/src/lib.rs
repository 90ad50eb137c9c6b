//! The HTTP layer every CA client uses: one reqwest client builder with timeouts that never
//! follows a redirect, what a failure means for a step ([`CallFailure`]: whether the request
//! went out, whether the CA may have acted), Retry-After, answer bodies read up to
//! [`MAX_BODY`], URLs whose variable parts are single percent-encoded path segments
//! ([`url_with`]), and [`Secret`], which never prints its value.

use certgate_core::config::SecretRef;
use certgate_core::{CaMessage, CallFailure};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::fmt;
use std::time::{Duration, SystemTime};

/// The most of a CA's answer certgate reads: a longer success answer is unreadable (the CA may
/// have acted), a longer error answer is cut.
pub const MAX_BODY: usize = 1 << 20;

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
            request: certgate_core::config::DEFAULT_CALL_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// The defaults, with the request timeout of a provider's `api.timeout_ms` if set.
    pub fn for_api(api: &certgate_core::config::ApiConfig) -> Self {
        let request = api.call_timeout();
        Timeouts {
            request,
            connect: Timeouts::default().connect.min(request),
        }
    }
}

/// The reqwest client every CA client is built on. It never follows a redirect: a CA's
/// credentials go to the CA's configured address and nowhere else ([`send`] turns a 3xx into
/// an unreachable CA).
pub fn client(timeouts: Timeouts) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .redirect(reqwest::redirect::Policy::none())
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

/// What stays as it is in a path segment: letters, digits and `-._~`; everything else
/// (`/ ? # %`, spaces, non-ASCII) is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `base` with `segments` appended to its path, each one percent-encoded path segment whatever
/// it holds. An empty, `.` or `..` segment (which a URL would fold into its neighbours) is
/// refused before anything is sent.
pub fn url_with(base: &Url, segments: &[&str]) -> Result<Url, CallFailure> {
    let mut path = base.path().trim_end_matches('/').to_owned();
    for segment in segments {
        if matches!(*segment, "" | "." | "..") {
            return Err(CallFailure::NotSent(format!(
                "`{segment}` cannot be one segment of a URL path"
            )));
        }
        path.push('/');
        path.extend(utf8_percent_encode(segment, SEGMENT));
    }
    let mut url = base.clone();
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
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

/// The longest a CA's `Retry-After` is obeyed: longer (a year, say) would stop an account's
/// every operation without a word; after this the account probes again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// `Retry-After` as seconds or an HTTP date, at most [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
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
    if status.is_redirection() {
        return Err(SendError::Failed(redirected(status, response.headers())));
    }
    let retry_after = retry_after(response.headers());
    let body = match read_capped(response).await {
        Ok((bytes, _)) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let answer = read_error(&body).unwrap_or_else(|| CaMessage::text(summary(&body, status)));
    Err(SendError::Answered(ErrorAnswer {
        status,
        answer,
        retry_after,
    }))
}

/// A 3xx: never followed (the credentials would go along), so the CA counts as unreachable.
/// The message names where it pointed, without what a URL may carry besides the place
/// (credentials, a query, a fragment).
fn redirected(status: StatusCode, headers: &HeaderMap) -> CallFailure {
    let to = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "nowhere".to_owned(), place);
    CallFailure::Unreachable(format!(
        "the CA answered {} redirecting to {to}: certgate never follows a redirect (the CA's credentials go to its configured address only)",
        status.as_u16()
    ))
}

/// The place a `Location` names: scheme, host, port and path of an absolute URL, the path of
/// a relative one, at most 120 characters.
fn place(location: &str) -> String {
    let shown = match Url::parse(location) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port().map_or(String::new(), |p| format!(":{p}")),
            u.path()
        ),
        Err(_) => location
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    shown
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect()
}

/// Up to [`MAX_BODY`] bytes of a body, and whether there was more.
async fn read_capped(mut response: reqwest::Response) -> Result<(Vec<u8>, bool), CallFailure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        let room = MAX_BODY - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// A success body, at most [`MAX_BODY`]: a longer one cannot be read, and the CA may have
/// acted on the request.
pub async fn body(response: reqwest::Response) -> Result<Vec<u8>, CallFailure> {
    match read_capped(response).await? {
        (body, false) => Ok(body),
        (_, true) => Err(CallFailure::NoAnswer {
            message: format!("the CA's answer is longer than {MAX_BODY} bytes: not read"),
            retry_after: None,
        }),
    }
}

/// A success body as text (see [`body`]).
pub async fn text(response: reqwest::Response) -> Result<String, CallFailure> {
    let bytes = body(response).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads a success body as JSON; an unreadable one leaves the outcome unknown.
pub async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, CallFailure> {
    let bytes = body(response).await?;
    serde_json::from_slice(&bytes).map_err(|e| CallFailure::NoAnswer {
        message: format!("the CA's answer could not be read: {e}"),
        retry_after: None,
    })
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
        // A CA that asks for a year gets an hour.
        h.insert(RETRY_AFTER, HeaderValue::from_static("31536000"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        let next_year =
            httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(31_536_000));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&next_year).unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
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

    #[test]
    fn every_value_is_one_path_segment() {
        let base = Url::parse("https://ca.example/services/v2/").unwrap();
        for hostile in [
            "../../admin/users/export?all=1#",
            "a/b",
            "50%off",
            "a b",
            "ünï",
            "x?y#z",
            "...",
        ] {
            let url = url_with(&base, &["order", hostile, "status"]).unwrap();
            assert_eq!(url.host_str(), Some("ca.example"), "{hostile}");
            assert_eq!(url.query(), None, "{hostile}");
            assert_eq!(url.fragment(), None, "{hostile}");
            let segments: Vec<String> = url
                .path_segments()
                .unwrap()
                .map(|s| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .unwrap()
                        .into_owned()
                })
                .collect();
            assert_eq!(
                segments,
                ["services", "v2", "order", hostile, "status"],
                "{url}"
            );
        }
        for folded in ["", ".", ".."] {
            assert!(matches!(
                url_with(&base, &["order", folded]),
                Err(CallFailure::NotSent(_))
            ));
        }
    }

    #[test]
    fn a_redirect_is_named_by_its_place_alone() {
        assert_eq!(
            place("http://user:pass@evil.example:8443/services/v2/x?token=AAAA#f"),
            "http://evil.example:8443/services/v2/x"
        );
        assert_eq!(place("/login?next=/admin"), "/login");
        assert!(place(&format!("https://ca.example/{}", "a".repeat(500))).len() <= 120);
    }

    #[tokio::test]
    async fn redirects_are_never_followed_and_bodies_are_capped() {
        use wiremock::matchers::{any, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let elsewhere = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&elsewhere)
            .await;
        let ca = MockServer::start().await;
        Mock::given(path("/moved"))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", format!("{}/steal", elsewhere.uri())),
            )
            .mount(&ca)
            .await;
        Mock::given(path("/big"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; MAX_BODY + 1]))
            .mount(&ca)
            .await;
        Mock::given(path("/big-error"))
            .respond_with(ResponseTemplate::new(400).set_body_bytes(vec![b'e'; MAX_BODY * 3]))
            .mount(&ca)
            .await;
        let c = client(Timeouts::default());
        let secret = sensitive("dc-key").unwrap();
        let e = send(
            c.get(format!("{}/moved", ca.uri()))
                .header("X-DC-DEVKEY", secret),
            |_| None,
        )
        .await
        .unwrap_err();
        match CallFailure::from(e) {
            CallFailure::Unreachable(m) => {
                assert!(m.contains("302") && m.contains("/steal"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let res = send(c.get(format!("{}/big", ca.uri())), |_| None)
            .await
            .unwrap();
        assert!(matches!(body(res).await, Err(CallFailure::NoAnswer { .. })));
        let e = send(c.get(format!("{}/big-error", ca.uri())), |_| None)
            .await
            .unwrap_err();
        assert!(matches!(CallFailure::from(e), CallFailure::Refused(_)));
    }
}
