//! openclaw-rs: a terminal workstation for a personal AI assistant.
//!
//! One in-process [`engine`] and three faces over it: the full-screen [`tui`], headless
//! [`batch`] (JSON lines), and the CLI subcommands in [`commands`].

pub mod batch;
pub mod build_info;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod files;
pub mod findings;
pub mod logging;
pub mod memory;
pub mod net;
pub mod orchestrator;
pub mod platform;
pub mod providers;
pub mod sandbox;
pub mod secrets;
pub mod tui;
pub mod voice;
