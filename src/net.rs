//! HTTP client construction shared by every part of the engine that talks to the network
//! (providers, remote embeddings, cloud voice, the sandbox's `http_fetch`).
//!
//! reqwest is built with rustls and no bundled crypto provider, so the ring provider is
//! installed here once, before the first client exists.

use std::sync::Once;
use std::time::Duration;

static CRYPTO: Once = Once::new();

/// A client builder with the project's defaults: rustls (ring), a user agent naming the
/// build, and a connect timeout. Callers add their own total/read timeouts.
pub fn client_builder() -> reqwest::ClientBuilder {
    CRYPTO.call_once(|| {
        // Another part of the process may have installed a provider first; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .user_agent(concat!("openclaw-rs/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_client() {
        assert!(client_builder().build().is_ok());
    }
}
