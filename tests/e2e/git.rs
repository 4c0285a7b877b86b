//! Tests for git; see the module of the same name.
