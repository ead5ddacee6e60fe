//! The `local` provider with the real SmolLM2-135M-Instruct Q4_1: model load time, resident
//! memory loaded and after the idle unload, time to first token for a ~100-token prompt,
//! prompt processing and generation tokens/s through the provider (thread, channel, text
//! decoding included). Baselines in the same run: candle's bare forward (no provider, greedy
//! argmax) over the weights as the file stores them (Q4_1) and as the provider reads them
//! (Q8_0), so the ratios say what the re-encoding gains and what the plumbing costs.
//!
//! Run: `cargo bench --bench local_model --features edge`. Under `cargo test` it runs a small
//! smoke pass. Without the model file (`dist/fetch-models.sh`) it says so and stops.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use openclaw_rs::config::{Config, ProviderConfig, ProviderKind};
use openclaw_rs::providers::local::weights::Requantized;
use openclaw_rs::providers::{self, ChatMessage, ChatRequest, Provider, Role, StreamEvent};

/// Targets from the issue, for SmolLM2-135M Q4_1 on this machine.
const TARGET_TOKENS_PER_S: f64 = 40.0;
const TARGET_FIRST_TOKEN_MS: f64 = 300.0;

fn rss_mib() -> f64 {
    providers::local::process_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn request(text: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::new(Role::System, "You are a helpful assistant."),
            ChatMessage::new(Role::User, text),
        ],
        max_tokens: Some(max_tokens),
        ..Default::default()
    }
}

struct Timed {
    first_text: Duration,
    total: Duration,
    input_tokens: u64,
    output_tokens: u64,
}

async fn timed(p: &dyn Provider, r: &ChatRequest) -> Timed {
    let start = Instant::now();
    let mut stream = p.chat(r).await.expect("chat");
    let mut first_text = None;
    let mut usage = None;
    while let Some(event) = stream.next_event().await.expect("reply") {
        match event {
            StreamEvent::Text(_) if first_text.is_none() => first_text = Some(start.elapsed()),
            StreamEvent::Usage(u) => usage = Some(u),
            _ => {}
        }
    }
    let usage = usage.expect("usage");
    Timed {
        first_text: first_text.unwrap_or_else(|| start.elapsed()),
        total: start.elapsed(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
    }
}

/// candle's forward alone: prompt in one pass, then `n` greedy tokens. Returns (prompt
/// tokens/s, generation tokens/s). `requantized`: the weights as the provider loads them
/// (Q4_1 read as Q8_0); otherwise as the file stores them.
fn bare_candle(path: &Path, requantized: bool, prompt_tokens: usize, n: usize) -> (f64, f64) {
    let mut file = std::fs::File::open(path).expect("model");
    let mut content = gguf_file::Content::read(&mut file).expect("gguf");
    let mut model = if requantized {
        let mut reader = Requantized::new(&mut content, file);
        ModelWeights::from_gguf(content, &mut reader, &Device::Cpu)
    } else {
        ModelWeights::from_gguf(content, &mut file, &Device::Cpu)
    }
    .expect("weights");
    // Any ids do for timing; these are ordinary vocabulary entries.
    let prompt: Vec<u32> = (0..prompt_tokens as u32).map(|i| 1000 + i % 5000).collect();
    let start = Instant::now();
    let input = Tensor::new(prompt.as_slice(), &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .expect("tensor");
    let mut logits = model.forward(&input, 0).expect("forward");
    let prompt_rate = prompt_tokens as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for i in 0..n {
        let next: u32 = logits
            .squeeze(0)
            .and_then(|l| l.argmax(0))
            .and_then(|t| t.to_scalar())
            .expect("argmax");
        let input = Tensor::new(&[next], &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .expect("tensor");
        logits = model.forward(&input, prompt_tokens + i).expect("forward");
    }
    (prompt_rate, n as f64 / start.elapsed().as_secs_f64())
}

/// Our forward alone (no provider, argmax), the weights read into memory, rows as stored
/// or padded for the tiled GEMM: (prompt tokens/s, generation tokens/s).
fn bare_ours(path: &Path, pad: bool, prompt_tokens: usize, n: usize) -> (f64, f64) {
    use openclaw_rs::providers::local::llama::{Llama, Shape};
    let mut file = std::fs::File::open(path).expect("model");
    let mut content = gguf_file::Content::read(&mut file).expect("gguf");
    let shape = Shape::from_gguf(&content).expect("shape");
    let mut reader = Requantized::new(&mut content, file);
    let mut model = Llama::new(shape, 4096, pad, |name| {
        content.tensor(&mut reader, name, &Device::Cpu)
    })
    .expect("weights");
    let prompt: Vec<u32> = (0..prompt_tokens as u32).map(|i| 1000 + i % 5000).collect();
    model.reset(prompt_tokens + n + 1).expect("reset");
    // Warm: candle packs the tiles of a matrix on its first product.
    model.forward(&prompt[..1]).expect("forward");
    model.reset(prompt_tokens + n + 1).expect("reset");
    let start = Instant::now();
    let mut logits = model.forward(&prompt).expect("forward");
    let prompt_rate = prompt_tokens as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..n {
        let next: u32 = logits
            .argmax(0)
            .and_then(|t| t.to_scalar())
            .expect("argmax");
        logits = model.forward(&[next]).expect("forward");
    }
    (prompt_rate, n as f64 / start.elapsed().as_secs_f64())
}

/// (anonymous, file-backed) resident MiB of this process.
fn rss_split_mib() -> (f64, f64) {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    let anon = field("Anonymous:");
    (anon, field("Rss:") - anon)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let path = providers::local::default_model_path();
    if !path.is_file() {
        println!(
            "local_model: not measured (no model at {}; run dist/fetch-models.sh)",
            path.display()
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (reps, gen_tokens) = if full { (5, 128) } else { (1, 8) };
    let rss_before = rss_mib();
    let pc = ProviderConfig {
        kind: Some(ProviderKind::Local),
        model_path: Some(path.clone()),
        temperature: Some(0.0),
        idle_unload_s: Some(1),
        max_tokens: Some(4096),
        ..Default::default()
    };
    let p: Arc<dyn Provider> =
        providers::build("local", &Config::default(), Some(&pc), None).expect("provider");
    runtime.block_on(async {
        // Load: the first reply reads the file (or maps the weights cache, building it the
        // first time: run twice to see both).
        let (anon_before, _) = rss_split_mib();
        timed(p.as_ref(), &request("Hi", 1)).await;
        let status = p.local_status().expect("status");
        let load_ms = status.load_ms.unwrap_or(0);
        let rss_loaded = rss_mib();
        let (anon, file) = rss_split_mib();
        println!(
            "load: {load_ms} ms; RSS {rss_before:.0} MiB before, {rss_loaded:.0} MiB loaded (+{:.0} MiB); after the first reply {anon:.0} MiB anonymous (+{:.0}), {file:.0} MiB file-backed",
            rss_loaded - rss_before,
            anon - anon_before
        );

        // Time to first token, ~100-token prompt (counted by the model's own tokenizer).
        let words = "The keeper of the lighthouse walked along the rocky shore at dawn and \
                     counted the ships that passed the harbour wall. ";
        let hundred = format!("{}Summarise this in one sentence.", words.repeat(4));
        let mut first = Vec::new();
        let mut prompt_len = 0;
        for _ in 0..reps {
            let t = timed(p.as_ref(), &request(&hundred, 1)).await;
            prompt_len = t.input_tokens;
            first.push(t.first_text.as_secs_f64() * 1000.0);
        }
        let first_ms = median(first);
        println!(
            "time to first token, {prompt_len}-token prompt: {first_ms:.0} ms median of {reps} (target ≤ {TARGET_FIRST_TOKEN_MS:.0} ms: {:.2}x the target)",
            first_ms / TARGET_FIRST_TOKEN_MS
        );

        // Prompt processing: a long prompt, one token out.
        let long = format!("{}Summarise this.", words.repeat(if full { 40 } else { 4 }));
        let mut prompt_rates = Vec::new();
        for _ in 0..reps {
            let t = timed(p.as_ref(), &request(&long, 1)).await;
            prompt_rates.push(t.input_tokens as f64 / t.total.as_secs_f64());
            prompt_len = t.input_tokens;
        }
        let prompt_rate = median(prompt_rates);
        println!("prompt processing, {prompt_len}-token prompt: {prompt_rate:.0} tokens/s median of {reps}");

        // Generation: tokens after the first, over the time after the first.
        let mut rates = Vec::new();
        let mut produced = 0;
        for _ in 0..reps {
            let t = timed(
                p.as_ref(),
                &request("Write a long story about a lighthouse keeper.", gen_tokens),
            )
            .await;
            produced = t.output_tokens;
            let after = (t.total - t.first_text).as_secs_f64();
            if t.output_tokens > 1 && after > 0.0 {
                rates.push((t.output_tokens - 1) as f64 / after);
            }
        }
        let gen_rate = if rates.is_empty() { 0.0 } else { median(rates) };
        println!(
            "generation: {gen_rate:.1} tokens/s median of {reps} ({produced} tokens a reply; target ≥ {TARGET_TOKENS_PER_S:.0}: {:.2}x the target)",
            gen_rate / TARGET_TOKENS_PER_S
        );

        // Cancel: drop the stream mid-reply, time until the generation thread has stopped.
        let mut stops = Vec::new();
        for _ in 0..reps {
            let long = request("Write a very long essay about the sea.", 4000);
            let mut stream = p.chat(&long).await.expect("chat");
            let mut pieces = 0;
            while pieces < 5 {
                match stream.next_event().await.expect("reply") {
                    Some(StreamEvent::Text(_)) => pieces += 1,
                    Some(_) => {}
                    None => break,
                }
            }
            let dropped = Instant::now();
            drop(stream);
            while p.local_status().expect("status").replying {
                std::thread::sleep(Duration::from_millis(1));
            }
            stops.push(dropped.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "cancel: generation stopped {:.1} ms after the stream was dropped, median of {reps} (target ≤ 100 ms)",
            median(stops)
        );

        // Unload after idle_unload_s = 1.
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.local_status().expect("status").state != "unloaded" && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let state = p.local_status().expect("status").state;
        println!(
            "after the idle unload ({state}): RSS {:.0} MiB ({:+.0} MiB against before loading)",
            rss_mib(),
            rss_mib() - rss_before
        );

        // Our forward, bare: rows as stored (576 values) and padded to 768 for the tiled GEMM.
        for pad in [false, true] {
            let (bare_prompt, bare_gen) =
                bare_ours(&path, pad, prompt_len as usize, gen_tokens as usize);
            println!(
                "baseline, our bare forward, rows {}: prompt {bare_prompt:.0} tokens/s, generation {bare_gen:.1} tokens/s",
                if pad { "padded" } else { "as stored" }
            );
        }

        // Baselines: candle's bare forward over the weights as stored (Q4_1, which candle
        // multiplies with scalar code) and as the provider reads them (Q8_0).
        for (requantized, label) in [(false, "as stored"), (true, "as the provider reads them")] {
            let (bare_prompt, bare_gen) =
                bare_candle(&path, requantized, prompt_len as usize, gen_tokens as usize);
            println!(
                "baseline, candle's bare forward, weights {label}: prompt {bare_prompt:.0} tokens/s, generation {bare_gen:.1} tokens/s; provider/bare: prompt {:.2}x, generation {:.2}x",
                prompt_rate / bare_prompt,
                gen_rate / bare_gen
            );
        }
    });
}
