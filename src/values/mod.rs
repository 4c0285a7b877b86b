//! Lossless editing of Helm values files (DESIGN.md §5).

pub mod cli;
