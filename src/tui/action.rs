//! Every UI action, by its one kebab-case name. Keymaps, the help popup and the command
//! palette all read this list, so they cannot disagree.

macro_rules! actions {
    ($($variant:ident => $name:literal, $description:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            /// In the order help and the palette show them.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            pub fn description(self) -> &'static str {
                match self {
                    $(Action::$variant => $description,)*
                }
            }

            pub fn from_name(name: &str) -> Option<Action> {
                match name {
                    $($name => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    Quit => "quit", "Leave openclaw-rs";
    FocusNext => "focus-next", "Focus the next pane";
    FocusPrev => "focus-prev", "Focus the previous pane";
    FocusConversations => "focus-conversations", "Go to the conversations pane";
    FocusMemory => "focus-memory", "Go to the memory pane";
    FocusProviders => "focus-providers", "Go to the providers pane";
    FocusFindings => "focus-findings", "Go to the findings pane";
    SelectNext => "select-next", "Move the selection down";
    SelectPrev => "select-prev", "Move the selection up";
    SelectFirst => "select-first", "Jump to the first item";
    SelectLast => "select-last", "Jump to the last item";
    PageDown => "page-down", "Move the selection a page down";
    PageUp => "page-up", "Move the selection a page up";
    Refresh => "refresh", "Read the configuration again and refresh every pane";
    ToggleHelp => "toggle-help", "Show or hide the keys";
    OpenPalette => "open-palette", "Open the command palette";
    Close => "close", "Close the open popup";
    FixSelected => "fix-selected", "Preview and apply the selected finding's fix";
    FixAll => "fix-all", "Preview and apply every available fix";
    Suppress => "suppress", "Accept the selected finding on purpose, with a reason";
    UndoFix => "undo-fix", "Undo the last applied fix (asks first)";
    DeepScan => "deep-scan", "Turn the deep checks (secret scans, provider probes) on or off";
    Filter => "filter", "Filter findings by text";
    MemorySearch => "memory-search", "Search memory as you type";
    MemoryOpen => "memory-open", "Open the hit, or follow the edge";
    MemoryBack => "memory-back", "Go back along the breadcrumbs";
    MemoryEdgeFilter => "memory-edge-filter", "Cycle the graph's edge-kind filter";
    MemoryChunks => "memory-chunks", "Jump to the centre node's chunks";
    MemoryGraph => "memory-graph", "Switch between search and graph";
    MemoryIndex => "memory-index", "Index new and changed memory files";
    MemoryReindex => "memory-reindex", "Rebuild the memory index (asks first)";
    MemoryCancel => "memory-cancel", "Stop the running memory index (the previous vector index keeps answering)";
    TtsSpeakLast => "tts-speak-last", "Speak the last reply aloud (/tts)";
    TtsAutoToggle => "tts-auto-toggle", "Turn auto-speaking of replies on or off";
    ConversationCompose => "conversation-compose", "Type a message (Enter sends, Alt+Enter adds a line, Esc leaves)";
    ConversationNew => "conversation-new", "Start a new session";
    ConversationToggleTools => "conversation-toggle-tools", "Expand or collapse every tool-call card";
    ConversationToolNext => "conversation-tool-next", "Select the next tool-call card";
    ConversationToolPrev => "conversation-tool-prev", "Select the previous tool-call card";
    ConversationToggleTool => "conversation-toggle-tool", "Expand or collapse the selected tool-call card";
    ConversationAbort => "conversation-abort", "Stop the running turn";
    ProvidersProbe => "providers-probe", "Probe the selected provider (a success ends its cooldown)";
    ProvidersReset => "providers-reset", "End the selected provider's cooldown and close its circuit";
    ProvidersMoveUp => "providers-move-up", "Move the selected provider earlier in the chain";
    ProvidersMoveDown => "providers-move-down", "Move the selected provider later in the chain";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_kebab_case() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(*action));
            assert!(
                action
                    .name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                action.name()
            );
            assert!(!action.description().is_empty());
        }
        assert_eq!(Action::from_name("no-such-action"), None);
    }
}
