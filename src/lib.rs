//! stripe-ops: prove that a Stripe integration works in a deployed environment, and switch it on
//! or rotate its secrets without downtime.
//!
//! Layers (docs/ARCHITECTURE.md): `cli` parses and prints; `commands` turns each command's flags
//! into plain options, calls the core and hands back a report; everything else is the core,
//! which never sees the command line.

pub mod cli;
pub mod commands;

pub mod app_client;
pub mod aws;
pub mod check;
pub mod ci;
pub mod config;
pub mod demo;
pub mod deploy;
pub mod duration;
pub mod error;
pub mod eventbridge;
pub mod fanout;
pub mod files;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod http;
pub mod http1;
pub mod load;
pub mod printer;
pub mod process;
pub mod replay;
pub mod retry;
pub mod runtime;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod smoke;
pub mod stripe_api;
pub mod timestamp;
pub mod webhook;
