//! normalize() and validate(): the checks that types alone cannot express.

use super::{Config, EmbedderKind, KITTENTTS_PRESETS, ProviderKind, STT_IDS, TTS_IDS};

/// A value that passed type checks but makes no sense, and the keys to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted keys whose values caused it; they are reset to the profile's when it is found.
    pub keys: Vec<String>,
    pub message: String,
}

impl Problem {
    fn new(keys: &[&str], message: String) -> Self {
        Self {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            message,
        }
    }
}

impl Config {
    /// Provider kinds may be left out for the well-known ids (`[providers.ollama]`).
    pub fn normalize(&mut self) {
        for (id, provider) in &mut self.providers {
            if provider.kind.is_none() {
                provider.kind = ProviderKind::from_id(id);
            }
        }
    }

    /// Checks that types alone cannot express. Each message names the key to change.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let heal = &self.self_heal;
        if heal.max_attempts == 0 || heal.max_attempts > 20 {
            problems.push(Problem::new(
                &["self_heal.max_attempts"],
                format!(
                    "self_heal.max_attempts is {}; use 1 to 20",
                    heal.max_attempts
                ),
            ));
        }
        if !(heal.attempt_share > 0.0 && heal.attempt_share <= 1.0) {
            problems.push(Problem::new(
                &["self_heal.attempt_share"],
                format!(
                    "self_heal.attempt_share is {}; use a share above 0 and at most 1 (0.5: half \
                     of the turn's remaining time)",
                    heal.attempt_share
                ),
            ));
        }
        if heal.cooldown_ms > heal.cooldown_max_ms {
            problems.push(Problem::new(
                &["self_heal.cooldown_ms", "self_heal.cooldown_max_ms"],
                format!(
                    "self_heal.cooldown_ms ({}) is larger than self_heal.cooldown_max_ms ({})",
                    heal.cooldown_ms, heal.cooldown_max_ms
                ),
            ));
        }
        if heal.deadline_ms == 0 {
            problems.push(Problem::new(
                &["self_heal.deadline_ms"],
                "self_heal.deadline_ms must be at least 1".into(),
            ));
        }
        if heal.backoff_ms > heal.backoff_max_ms {
            problems.push(Problem::new(
                &["self_heal.backoff_ms", "self_heal.backoff_max_ms"],
                format!(
                    "self_heal.backoff_ms ({}) is larger than self_heal.backoff_max_ms ({})",
                    heal.backoff_ms, heal.backoff_max_ms
                ),
            ));
        }
        let memory = &self.memory;
        if memory.chunk_tokens == 0 || memory.chunk_overlap >= memory.chunk_tokens {
            problems.push(Problem::new(
                &["memory.chunk_tokens", "memory.chunk_overlap"],
                format!(
                    "memory.chunk_overlap ({}) must be smaller than memory.chunk_tokens ({}), \
                     which must be at least 1",
                    memory.chunk_overlap, memory.chunk_tokens
                ),
            ));
        }
        if memory.dimensions == 0 || memory.dimensions > 4096 {
            problems.push(Problem::new(
                &["memory.dimensions"],
                format!("memory.dimensions is {}; use 1 to 4096", memory.dimensions),
            ));
        }
        let search = &memory.search;
        let weights_ok = search.vector_weight >= 0.0
            && search.text_weight >= 0.0
            && search.vector_weight + search.text_weight > 0.0;
        if !weights_ok {
            problems.push(Problem::new(
                &["memory.search.vector_weight", "memory.search.text_weight"],
                format!(
                    "memory.search weights are {} (vector) and {} (text); use numbers of 0 or \
                     more, not both 0",
                    search.vector_weight, search.text_weight
                ),
            ));
        }
        if !(0.0..=1.0).contains(&search.mmr) {
            problems.push(Problem::new(
                &["memory.search.mmr"],
                format!("memory.search.mmr is {}; use 0 (off) to 1", search.mmr),
            ));
        }
        if search.half_life_days.is_nan() || search.half_life_days < 0.0 {
            problems.push(Problem::new(
                &["memory.search.half_life_days"],
                format!(
                    "memory.search.half_life_days is {}; use 0 (off) or more",
                    search.half_life_days
                ),
            ));
        }
        if !(-1.0..=1.0).contains(&search.min_similarity) {
            problems.push(Problem::new(
                &["memory.search.min_similarity"],
                format!(
                    "memory.search.min_similarity is {}; use -1 to 1",
                    search.min_similarity
                ),
            ));
        }
        if memory.graph.max_nodes_per_document == 0 || memory.graph.max_edges_per_chunk == 0 {
            problems.push(Problem::new(
                &[
                    "memory.graph.max_nodes_per_document",
                    "memory.graph.max_edges_per_chunk",
                ],
                "memory.graph limits must be at least 1".into(),
            ));
        }
        if memory.embedder == EmbedderKind::Remote {
            let remote = &memory.remote;
            if remote
                .base_url
                .as_deref()
                .is_none_or(|u| u.trim().is_empty())
                || remote.model.as_deref().is_none_or(|m| m.trim().is_empty())
            {
                problems.push(Problem::new(
                    &["memory.remote"],
                    "memory.embedder is \"remote\" but [memory.remote] lacks base_url or model; \
                     for example base_url = \"http://127.0.0.1:11434\", kind = \"ollama\", \
                     model = \"nomic-embed-text\""
                        .into(),
                ));
            }
            if remote.batch == 0 || remote.timeout_ms == 0 || remote.dimensions == Some(0) {
                problems.push(Problem::new(
                    &["memory.remote"],
                    "memory.remote.batch, timeout_ms and dimensions must be at least 1".into(),
                ));
            }
        }
        if self.sandbox.memory_mb == 0 || self.sandbox.memory_mb > 4096 {
            problems.push(Problem::new(
                &["sandbox.memory_mb"],
                format!(
                    "sandbox.memory_mb is {}; use 1 to 4096",
                    self.sandbox.memory_mb
                ),
            ));
        }
        if self.sandbox.timeout_ms == 0 {
            problems.push(Problem::new(
                &["sandbox.timeout_ms"],
                "sandbox.timeout_ms must be at least 1".into(),
            ));
        }
        for id in &heal.fallback {
            let builtin = matches!(id.as_str(), "ollama" | "offline" | "local");
            if !builtin && !self.providers.contains_key(id) {
                problems.push(Problem::new(
                    &["self_heal.fallback"],
                    format!(
                        "self_heal.fallback names provider '{id}', which is not configured \
                         under [providers.{id}]"
                    ),
                ));
            }
        }
        self.validate_voice(&mut problems);
        for (id, provider) in &self.providers {
            if provider.kind.is_none() {
                problems.push(Problem {
                    keys: vec![format!("providers.{id}")],
                    message: format!(
                        "providers.{id}.kind is missing: use openai, anthropic, ollama, offline \
                         or local"
                    ),
                });
            }
            if let Some(t) = provider.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
                problems.push(Problem::new(
                    &[&format!("providers.{id}.temperature")],
                    format!("providers.{id}.temperature is {t}; use 0 to 2"),
                ));
            }
            if let Some(p) = provider.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
                problems.push(Problem::new(
                    &[&format!("providers.{id}.top_p")],
                    format!("providers.{id}.top_p is {p}; use a number above 0 up to 1"),
                ));
            }
        }
        problems
    }

    fn validate_voice(&self, problems: &mut Vec<Problem>) {
        let voice = &self.voice;
        let unknown = |ids: &[&str], id: &str| !ids.contains(&id);
        if unknown(TTS_IDS, &voice.provider) {
            problems.push(Problem::new(
                &["voice.provider"],
                format!(
                    "voice.provider '{}' is not one of {}",
                    voice.provider,
                    TTS_IDS.join(", ")
                ),
            ));
        }
        if let Some(id) = voice.fallback.iter().find(|id| unknown(TTS_IDS, id)) {
            problems.push(Problem::new(
                &["voice.fallback"],
                format!(
                    "voice.fallback names '{id}', which is not one of {}",
                    TTS_IDS.join(", ")
                ),
            ));
        }
        let stt = &voice.stt;
        if unknown(STT_IDS, &stt.provider) {
            problems.push(Problem::new(
                &["voice.stt.provider"],
                format!(
                    "voice.stt.provider '{}' is not one of {}",
                    stt.provider,
                    STT_IDS.join(", ")
                ),
            ));
        }
        if let Some(id) = stt.fallback.iter().find(|id| unknown(STT_IDS, id)) {
            problems.push(Problem::new(
                &["voice.stt.fallback"],
                format!(
                    "voice.stt.fallback names '{id}', which is not one of {}",
                    STT_IDS.join(", ")
                ),
            ));
        }
        if let Some(preset) = &voice.kittentts.preset
            && !KITTENTTS_PRESETS.contains(&preset.as_str())
        {
            problems.push(Problem::new(
                &["voice.kittentts.preset"],
                format!(
                    "voice.kittentts.preset '{preset}' is not one of {}",
                    KITTENTTS_PRESETS.join(", ")
                ),
            ));
        }
        for (key, value) in [
            ("voice.max_text_length", u64::from(voice.max_text_length)),
            ("voice.segment_chars", u64::from(voice.segment_chars)),
            ("voice.timeout_ms", voice.timeout_ms),
            ("voice.stt.timeout_ms", stt.timeout_ms),
        ] {
            if value == 0 {
                problems.push(Problem::new(&[key], format!("{key} must be at least 1")));
            }
        }
    }
}
