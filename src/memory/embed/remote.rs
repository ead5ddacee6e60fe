//! The `remote` embedder: an OpenAI-compatible `/embeddings` or Ollama `/api/embed` endpoint.
//!
//! The [`Embedder`] trait is synchronous (ingestion and search call it from blocking threads),
//! while reqwest is async. Rather than entering whichever runtime the caller happens to be on,
//! the embedder owns one thread with its own small runtime and HTTP client; `embed` sends it
//! the texts and waits. The thread ends when the embedder is dropped, from any context.

use std::sync::mpsc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{EmbedError, Embedder, l2_normalize};
use crate::config::{RemoteEmbedderConfig, RemoteEmbedderKind, SecretRef, redact_url};
use crate::memory::types::EmbedderIdentity;

/// Largest response body read, so a misbehaving endpoint cannot exhaust memory.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Text used to learn the vector size when the configuration does not give it.
const PROBE_TEXT: &str = "dimension probe";

/// Everything one request needs; cloned into the worker thread.
#[derive(Clone)]
struct Endpoint {
    kind: RemoteEmbedderKind,
    url: String,
    /// For messages: the URL with any credentials in it redacted.
    shown_url: String,
    model: String,
    api_key: Option<SecretRef>,
    batch: usize,
}

struct Job {
    texts: Vec<String>,
    reply: mpsc::Sender<Result<Vec<Vec<f32>>, EmbedError>>,
}

pub struct RemoteEmbedder {
    jobs: mpsc::Sender<Job>,
    identity: EmbedderIdentity,
}

impl RemoteEmbedder {
    /// Start the worker and settle the vector size: from the configuration, else by
    /// embedding one short text (so an unreachable endpoint is reported here, at open).
    pub fn connect(config: &RemoteEmbedderConfig) -> Result<Self, EmbedError> {
        let endpoint = endpoint(config)?;
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let client = crate::net::client_builder()
            .timeout(timeout)
            .build()
            .map_err(|e| EmbedError::Failed(format!("cannot build an HTTP client: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EmbedError::Failed(format!("cannot start the embedding runtime: {e}")))?;

        let (jobs, queue) = mpsc::channel::<Job>();
        let worker_endpoint = endpoint.clone();
        std::thread::Builder::new()
            .name("memory-remote-embed".into())
            .spawn(move || {
                for job in queue {
                    let result = runtime.block_on(embed_all(&client, &worker_endpoint, job.texts));
                    // The caller may have given up waiting; nothing to do then.
                    let _ = job.reply.send(result);
                }
            })
            .map_err(|e| EmbedError::Failed(format!("cannot start the embedding thread: {e}")))?;

        let mut embedder = Self {
            jobs,
            identity: identity(&endpoint, 0),
        };
        let dimensions = match config.dimensions {
            Some(d) => d,
            None => {
                let probe = embedder.request(vec![PROBE_TEXT.to_string()])?;
                probe.first().map_or(0, |v| v.len() as u32)
            }
        };
        if dimensions == 0 {
            return Err(EmbedError::Failed(format!(
                "{} returned an empty vector for model {}",
                endpoint.shown_url, endpoint.model
            )));
        }
        embedder.identity = identity(&endpoint, dimensions);
        Ok(embedder)
    }

    /// The identity [`connect`](Self::connect) would give, without contacting the endpoint:
    /// `dimensions` is 0 when the configuration does not set it (only a request can tell).
    pub fn configured_identity(
        config: &RemoteEmbedderConfig,
    ) -> Result<EmbedderIdentity, EmbedError> {
        Ok(identity(&endpoint(config)?, config.dimensions.unwrap_or(0)))
    }

    fn request(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send(Job { texts, reply })
            .map_err(|_| EmbedError::Failed("the embedding thread has stopped".into()))?;
        answer
            .recv()
            .map_err(|_| EmbedError::Failed("the embedding thread has stopped".into()))?
    }
}

fn endpoint(config: &RemoteEmbedderConfig) -> Result<Endpoint, EmbedError> {
    let invalid = |message: &str| EmbedError::Failed(format!("memory.remote: {message}"));
    let base_url = config
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| invalid("base_url is not set"))?;
    let model = config
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid("model is not set"))?;
    let parsed = reqwest::Url::parse(base_url)
        .map_err(|e| invalid(&format!("base_url {}: {e}", redact_url(base_url))))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("base_url must start with http:// or https://"));
    }
    let path = match config.kind {
        RemoteEmbedderKind::Openai => "embeddings",
        RemoteEmbedderKind::Ollama => "api/embed",
    };
    let url = format!("{}/{path}", base_url.trim_end_matches('/'));
    Ok(Endpoint {
        kind: config.kind,
        shown_url: redact_url(&url),
        url,
        model: model.to_string(),
        api_key: config.api_key.clone(),
        batch: config.batch.max(1) as usize,
    })
}

/// The model and where it is served define the vectors; the key does not.
fn identity(endpoint: &Endpoint, dimensions: u32) -> EmbedderIdentity {
    let kind = match endpoint.kind {
        RemoteEmbedderKind::Openai => "openai",
        RemoteEmbedderKind::Ollama => "ollama",
    };
    let digest = Sha256::new()
        .chain_update(kind)
        .chain_update([0])
        .chain_update(&endpoint.url)
        .chain_update([0])
        .chain_update(&endpoint.model)
        .finalize();
    let hex = hex::encode(&digest[..8]);
    EmbedderIdentity {
        name: format!("remote:{kind}:{}", endpoint.model),
        dimensions,
        model_hash: format!("sha256:{hex}"),
    }
}

impl Embedder for RemoteEmbedder {
    fn identity(&self) -> EmbedderIdentity {
        self.identity.clone()
    }

    fn dimensions(&self) -> usize {
        self.identity.dimensions as usize
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let vectors = self.request(texts.iter().map(|t| t.to_string()).collect())?;
        let want = self.dimensions();
        if let Some(bad) = vectors.iter().find(|v| v.len() != want) {
            return Err(EmbedError::Failed(format!(
                "the endpoint returned a {}-dimensional vector; the store expects {want} \
                 (did memory.remote.model change? run `openclaw-rs memory index --force`)",
                bad.len()
            )));
        }
        Ok(vectors)
    }
}

/// Embed `texts` in batches. Empty texts are not sent (OpenAI rejects them): they get the
/// zero vector, as the trait documents for text with no features.
async fn embed_all(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    texts: Vec<String>,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let mut out: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
    let sendable: Vec<usize> = (0..texts.len())
        .filter(|&i| !texts[i].trim().is_empty())
        .collect();
    for batch in sendable.chunks(endpoint.batch) {
        let inputs: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
        let vectors = embed_batch(client, endpoint, &inputs).await?;
        for (&i, mut vector) in batch.iter().zip(vectors) {
            if vector.iter().any(|x| !x.is_finite()) {
                return Err(EmbedError::Failed(format!(
                    "{} returned a vector with NaN or infinite values",
                    endpoint.shown_url
                )));
            }
            l2_normalize(&mut vector);
            out[i] = Some(vector);
        }
    }
    let dimensions = out.iter().flatten().map(Vec::len).next().unwrap_or(0);
    Ok(out
        .into_iter()
        .map(|v| v.unwrap_or_else(|| vec![0.0; dimensions]))
        .collect())
}

#[derive(Deserialize)]
struct OpenAiResponse {
    data: Vec<OpenAiItem>,
}

#[derive(Deserialize)]
struct OpenAiItem {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

#[derive(Deserialize)]
struct OllamaResponse {
    embeddings: Vec<Vec<f32>>,
}

async fn embed_batch(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    inputs: &[&str],
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let at = &endpoint.shown_url;
    let failed = |message: String| EmbedError::Failed(format!("{at}: {message}"));
    let mut request = client
        .post(&endpoint.url)
        .json(&json!({ "model": endpoint.model, "input": inputs }));
    if let Some(key) = &endpoint.api_key {
        let key = key
            .resolve()
            .map_err(|e| failed(format!("memory.remote.api_key: {e}")))?;
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| {
        failed(if e.is_timeout() {
            "timed out (memory.remote.timeout_ms)".into()
        } else if e.is_connect() {
            "cannot connect; is the embeddings server running?".into()
        } else {
            // reqwest's message names the URL, which may carry credentials.
            "request failed".into()
        })
    })?;
    let status = response.status();
    let body = read_capped(response).await.map_err(&failed)?;
    if !status.is_success() {
        let hint = match status.as_u16() {
            401 | 403 => "; check memory.remote.api_key",
            404 => "; check memory.remote.base_url, kind and model",
            _ => "",
        };
        return Err(failed(format!("HTTP {status}{hint}")));
    }
    let vectors: Vec<Vec<f32>> = match endpoint.kind {
        RemoteEmbedderKind::Openai => {
            let parsed: OpenAiResponse = serde_json::from_slice(&body)
                .map_err(|e| failed(format!("not an embeddings response: {e}")))?;
            let mut items = parsed.data;
            // The order of `data` is not promised; `index` is.
            if items.iter().all(|item| item.index.is_some()) {
                items.sort_by_key(|item| item.index);
            }
            items.into_iter().map(|item| item.embedding).collect()
        }
        RemoteEmbedderKind::Ollama => {
            let parsed: OllamaResponse = serde_json::from_slice(&body)
                .map_err(|e| failed(format!("not an embeddings response: {e}")))?;
            parsed.embeddings
        }
    };
    if vectors.len() != inputs.len() {
        return Err(failed(format!(
            "sent {} texts, got {} vectors back",
            inputs.len(),
            vectors.len()
        )));
    }
    Ok(vectors)
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| "the response was cut off".to_string())?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!(
                "the response is larger than {} MiB",
                MAX_RESPONSE_BYTES >> 20
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Json;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use serde_json::Value;

    use super::*;

    /// A deterministic stand-in model: 8 dims from the bytes of each input.
    fn fake_vector(text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; 8];
        for (i, b) in text.bytes().enumerate() {
            v[i % 8] += f32::from(b);
        }
        v
    }

    #[derive(Clone, Default)]
    struct Fake {
        requests: Arc<AtomicUsize>,
        /// When set, every request fails with this status.
        fail: Option<u16>,
        /// Require this bearer token.
        token: Option<String>,
        /// Return one vector fewer than asked.
        short: bool,
    }

    async fn openai(
        State(fake): State<Fake>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        fake.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(code) = fake.fail {
            return (StatusCode::from_u16(code).unwrap(), Json(json!({})));
        }
        if let Some(token) = &fake.token {
            let sent = headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            if sent != format!("Bearer {token}") {
                return (StatusCode::UNAUTHORIZED, Json(json!({"error": "bad key"})));
            }
        }
        let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap();
        let mut data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"index": i, "embedding": fake_vector(t)}))
            .collect();
        // Out of order on purpose: clients must use `index`.
        data.reverse();
        if fake.short {
            data.pop();
        }
        (StatusCode::OK, Json(json!({"data": data})))
    }

    async fn ollama(Json(body): Json<Value>) -> Json<Value> {
        let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap();
        let embeddings: Vec<Vec<f32>> = inputs.iter().map(|t| fake_vector(t)).collect();
        Json(json!({"model": body["model"], "embeddings": embeddings}))
    }

    /// Serve `fake` on 127.0.0.1:0 from a thread of its own; returns the base URL.
    fn serve(fake: Fake) -> String {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new()
                    .route("/v1/embeddings", post(openai))
                    .route("/api/embed", post(ollama))
                    .with_state(fake);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        format!("http://{}", rx.recv().unwrap())
    }

    fn config(kind: RemoteEmbedderKind, base_url: String) -> RemoteEmbedderConfig {
        RemoteEmbedderConfig {
            kind,
            base_url: Some(base_url),
            model: Some("fake-embed".into()),
            batch: 3,
            ..RemoteEmbedderConfig::default()
        }
    }

    #[test]
    fn openai_vectors_come_back_in_order_normalised_and_batched() {
        let fake = Fake::default();
        let requests = fake.requests.clone();
        let base = serve(fake);
        let embedder =
            RemoteEmbedder::connect(&config(RemoteEmbedderKind::Openai, format!("{base}/v1")))
                .unwrap();
        assert_eq!(embedder.dimensions(), 8);
        let identity = embedder.identity();
        assert_eq!(identity.name, "remote:openai:fake-embed");
        assert_eq!(identity.dimensions, 8);
        let texts = ["alpha", "", "beta gamma", "delta", "epsilon", "zeta", "eta"];
        requests.store(0, Ordering::SeqCst);
        let vectors = embedder.embed(&texts).unwrap();
        assert_eq!(vectors.len(), texts.len());
        // Six non-empty texts in batches of three.
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        assert!(vectors[1].iter().all(|x| *x == 0.0), "empty text is zero");
        for (text, vector) in texts.iter().zip(&vectors) {
            if text.is_empty() {
                continue;
            }
            let mut expected = fake_vector(text);
            l2_normalize(&mut expected);
            assert_eq!(vector, &expected, "{text}");
        }
    }

    #[test]
    fn ollama_native_format_works_and_identity_differs_by_endpoint() {
        let base = serve(Fake::default());
        let ollama =
            RemoteEmbedder::connect(&config(RemoteEmbedderKind::Ollama, base.clone())).unwrap();
        let vectors = ollama.embed(&["one", "two"]).unwrap();
        let mut expected = fake_vector("two");
        l2_normalize(&mut expected);
        assert_eq!(vectors[1], expected);
        let openai =
            RemoteEmbedder::connect(&config(RemoteEmbedderKind::Openai, format!("{base}/v1")))
                .unwrap();
        assert_ne!(ollama.identity(), openai.identity());
    }

    #[test]
    fn a_key_is_sent_and_a_wrong_one_is_reported_without_printing_it() {
        let secret = "sk-test-4f1c0a9e8b7d6c5e";
        let base = serve(Fake {
            token: Some(secret.into()),
            ..Fake::default()
        });
        // The keys are given in the configuration itself: a test never changes the
        // process environment, which other tests on other threads read.
        let mut good = config(RemoteEmbedderKind::Openai, format!("{base}/v1"));
        good.api_key = Some(SecretRef::Inline(secret.into()));
        assert!(RemoteEmbedder::connect(&good).is_ok());

        let mut bad = good.clone();
        bad.api_key = Some(SecretRef::Inline("sk-wrong-key-value-123".into()));
        let message = RemoteEmbedder::connect(&bad).err().unwrap().to_string();
        assert!(message.contains("401"), "{message}");
        assert!(message.contains("memory.remote.api_key"), "{message}");
        assert!(!message.contains("sk-wrong"), "{message}");
    }

    #[test]
    fn failures_are_errors_that_say_what_to_check() {
        let base = serve(Fake {
            fail: Some(500),
            ..Fake::default()
        });
        let message =
            RemoteEmbedder::connect(&config(RemoteEmbedderKind::Openai, format!("{base}/v1")))
                .err()
                .unwrap()
                .to_string();
        assert!(message.contains("HTTP 500"), "{message}");

        let base = serve(Fake {
            short: true,
            ..Fake::default()
        });
        let message =
            RemoteEmbedder::connect(&config(RemoteEmbedderKind::Openai, format!("{base}/v1")))
                .err()
                .unwrap()
                .to_string();
        assert!(message.contains("got 0 vectors"), "{message}");

        // Nothing listens on this port (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let message = RemoteEmbedder::connect(&config(
            RemoteEmbedderKind::Ollama,
            format!("http://127.0.0.1:{port}"),
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(message.contains("cannot connect"), "{message}");

        let mut unset = RemoteEmbedderConfig::default();
        let message = RemoteEmbedder::connect(&unset).err().unwrap().to_string();
        assert!(message.contains("base_url"), "{message}");
        unset.base_url = Some("ftp://example.org".into());
        unset.model = Some("m".into());
        let message = RemoteEmbedder::connect(&unset).err().unwrap().to_string();
        assert!(message.contains("http://"), "{message}");
    }

    #[test]
    fn configured_dimensions_open_without_contacting_the_endpoint() {
        let mut config = config(
            RemoteEmbedderKind::Openai,
            "http://127.0.0.1:9/v1".to_string(),
        );
        config.dimensions = Some(768);
        let embedder = RemoteEmbedder::connect(&config).unwrap();
        assert_eq!(embedder.dimensions(), 768);
        // The endpoint is down: embedding fails, it does not hang or panic.
        assert!(embedder.embed(&["text"]).is_err());
    }
}
