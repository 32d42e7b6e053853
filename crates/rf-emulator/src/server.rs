//! The HTTP server: [`Emulator::start`] binds, serves the router in the
//! background and returns a [`RunningEmulator`] handle.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use tokio::sync::oneshot;
use url::Url;

use crate::app::{EmulatorState, router};
use crate::config::EmulatorConfig;
use crate::error::EmulatorError;
use crate::opening::Opening;
use crate::shaping::listener::Gate;

/// Entry point to run an emulator server.
///
/// ```no_run
/// # async fn demo() -> Result<(), rf_emulator::EmulatorError> {
/// use rf_emulator::{Emulator, EmulatorConfig};
/// let emu = Emulator::start(EmulatorConfig::for_tests(), "127.0.0.1:0".parse().unwrap()).await?;
/// let base = emu.base_url(); // e.g. http://127.0.0.1:41234/
/// // ... point a client at `base` with key `emu.api_key()` ...
/// emu.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Emulator;

/// A running emulator server.
#[derive(Debug)]
pub struct RunningEmulator {
    state: EmulatorState,
    addr: SocketAddr,
    base_url: Url,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Emulator {
    /// Binds `addr` (port 0 picks a free port), opens the state and serves
    /// in the background on the current tokio runtime.
    pub async fn start(
        config: EmulatorConfig,
        addr: SocketAddr,
    ) -> Result<RunningEmulator, EmulatorError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let base_url = match &config.public_base_url {
            Some(u) => u.clone(),
            None => Url::parse(&format!("http://{local}/")).map_err(|e| {
                EmulatorError::Config(format!("cannot form base url from {local}: {e}"))
            })?,
        };
        let state = EmulatorState::open(config, base_url.clone())?;
        state.set_bound(local);
        let app = router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let header_timeout = state.0.config.header_read_timeout;
        // Counts connections and applies `--max-connections`.
        let gate = Gate::new(state.0.shaper.clone());
        let server = tokio::spawn(serve(listener, app, header_timeout, gate, stopped));
        tracing::info!(%base_url, "rf emulator listening");
        Ok(RunningEmulator {
            state,
            addr: local,
            base_url,
            stop: Some(stop),
            server,
        })
    }
}

/// Accepts connections (through `gate`: counted, capped) until `stopped`,
/// serving each over HTTP/1.1 (with `header_timeout` to send a request's
/// headers) or, when the client opens with HTTP/2's preface, cleartext
/// HTTP/2 (h2c with prior knowledge); then waits for the requests in
/// flight (the connections' keep-alive ends).
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_timeout: Duration,
    gate: Gate,
    stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let http = connection_builder(header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stopped);
    loop {
        let pass = tokio::select! {
            _ = &mut stopped => break,
            pass = gate.pass() => pass,
        };
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: pause, then go on.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Responses go out as a header write and body writes: without
        // TCP_NODELAY, Nagle's algorithm holds the body of a small download
        // until the client's delayed ACK (40 ms a file on Linux).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let service = TowerToHyperService::new(app.clone());
        // The opening bytes tell HTTP/1.1 from HTTP/2: bounded like headers.
        let slot = gate.admit(pass);
        let io = TokioIo::new(Opening::new(tcp, header_timeout));
        let conn = graceful.watch(http.serve_connection(io, service).into_owned());
        tokio::spawn(async move {
            // Counted open (and under `--max-connections`) until it ends.
            let _slot = slot;
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// HTTP/1.1 with keep-alive and a deadline for a request's headers, and
/// HTTP/2 for clients that start with its preface. The HTTP/2 side keeps
/// hyper's stream limit (200 concurrent streams a connection), more than
/// any client of rf's keeps in flight.
fn connection_builder(header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    http.http2().timer(TokioTimer::new());
    http
}

impl Drop for RunningEmulator {
    /// Dropping without [`RunningEmulator::shutdown`] still stops the server
    /// and the background work (so a temporary data dir is removed once the
    /// last request finishes) and writes a final snapshot.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = self.state.close() {
            tracing::error!("cannot write final state snapshot: {e}");
        }
    }
}

impl RunningEmulator {
    /// The base URL to use as `API_BASE_URL` (ends with `/`).
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first configured (or generated) API key.
    pub fn api_key(&self) -> &str {
        self.state.api_key()
    }

    /// The workspace of the first key.
    pub fn workspace(&self) -> &str {
        self.state.workspace()
    }

    /// The shared state (for in-process inspection or a second router).
    pub fn state(&self) -> &EmulatorState {
        &self.state
    }

    /// Stops accepting requests, waits for in-flight ones, stops background
    /// work and writes the final state snapshot.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.server).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("emulator server ended with an error: {e}"),
            Err(e) => tracing::warn!("emulator server task failed: {e}"),
        }
        // Drop closes the state and writes the final snapshot.
    }

    /// Serves until `signal` completes (e.g. `tokio::signal::ctrl_c()`),
    /// then shuts down gracefully.
    pub async fn serve_until<F: std::future::Future>(self, signal: F) {
        signal.await;
        self.shutdown().await;
    }
}
