//! The SafetyLayer.
