//! stripe-ops: prove that a Stripe integration works in a deployed environment, and switch it on
//! or rotate its secrets without downtime. `cli` is the entry point; every other module is one
//! concern, with pure logic kept apart from I/O.

pub mod app_client;
pub mod aws;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod events;
pub mod fanout;
pub mod fixtures;
pub mod http;
pub mod load;
pub mod output;
pub mod runtime;
pub mod sandbox;
pub mod secret;
pub mod signature;
pub mod smoke;
pub mod stripe_api;
