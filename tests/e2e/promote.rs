//! Tests for promote; see the module of the same name.
