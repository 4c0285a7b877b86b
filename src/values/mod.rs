//! Lossless editing of Helm values files (DESIGN.md §5).
