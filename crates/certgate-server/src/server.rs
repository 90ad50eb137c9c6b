//! The HTTP edge: accepting connections under limits. A connection that has not sent a
//! request's headers within `header_read_timeout_ms` is closed; at most `max_connections` are
//! open at once (more wait in the listen backlog); after shutdown is asked, open requests get
//! `shutdown_grace_ms` and are then closed. Each request carries its client's address
//! ([`axum::extract::ConnectInfo`]) for the limits on failed authentication.

use crate::config::ServerConfig;
use crate::AppState;
use axum::extract::ConnectInfo;
use certgate_core::TenantId;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Serves the API on `listener` until `shutdown` completes; then lets open requests finish
/// for the grace and returns (closing what is still open).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits: ServerConfig = state.server.clone();
    let limits = &limits;
    let app = crate::app(state);
    // HTTP/1.1 only: its header read timeout runs from the accept (and from the end of the
    // previous request), where a protocol sniffer would first wait for bytes unbounded.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A connection is accepted only with a permit: beyond the cap, clients wait in the
        // kernel's backlog instead of holding memory here.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, client) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // A client that stops reading its answer holds nothing for long: a write that makes
        // no progress within the request timeout ends the connection.
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.request_timeout()));
        let stream = Box::pin(stream);
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(client));
                app.clone().oneshot(request)
            },
        );
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%client, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace()) => {
            tracing::warn!(grace_ms = limits.shutdown_grace_ms,
                "requests still open after the shutdown grace are closed");
        }
    }
    Ok(())
}

/// The address a request came from (none when the router is called without a socket, as in
/// tests).
pub fn client_of<B>(request: &axum::http::Request<B>) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The client address of a request, as an extractor (never fails).
#[derive(Debug, Clone, Copy)]
pub struct Client(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// How many of something each tenant holds now (sweeps running), each below a cap.
#[derive(Debug, Default)]
pub struct TenantSlots {
    held: std::sync::Mutex<std::collections::HashMap<TenantId, u32>>,
}

/// One slot of a tenant's, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: AppState,
    tenant: TenantId,
}

impl TenantSlots {
    /// A slot of `tenant`'s in `state.sweeps` if it holds fewer than `cap`.
    pub fn take(state: &AppState, tenant: &TenantId, cap: u32) -> Option<Slot> {
        let mut held = state.sweeps.lock();
        let n = held.entry(tenant.clone()).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: state.clone(),
            tenant: tenant.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<TenantId, u32>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.sweeps.lock();
        if let Some(n) = held.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.tenant);
            }
        }
    }
}
