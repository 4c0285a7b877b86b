//! Tests for config; see the module of the same name.
