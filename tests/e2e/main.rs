//! End-to-end tests: one binary (STYLE.md #10). Each module drives the built `gitops-promote` binary
//! or a product module against a real [`sandbox::Sandbox`].

mod harness;

mod appofapps;
mod argocd;
mod cancel;
mod conditions;
mod config;
mod edit;
mod environments;
mod faults;
mod git;
mod github;
mod guard;
mod inert;
mod inputs;
mod multisource;
mod permissions;
mod promote;
mod protected;
mod proxy;
mod queue;
mod recipes;
mod requests;
mod rollback;
mod rollouts;
mod runner;
mod secrets;
mod strategy;
mod summary;
mod tls;
mod verify;
mod workflow;
