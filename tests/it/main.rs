//! Integration tests: the real binary, real sockets on 127.0.0.1, real moto_server, real
//! Chromium. Run through `tests/run.sh`, which installs what they need.

mod common;

mod any_receiver;
mod aws;
mod catalogue;
mod check;
mod ci;
mod cli;
mod conventions;
mod demo;
mod dist;
mod events;
mod fail_fast;
mod fanout;
mod fanout_http1;
mod fanout_isolation;
mod fanout_sqs;
mod hardening;
mod hostile;
mod interrupt;
mod load;
mod production_safety;
mod receivers;
mod sandbox;
mod secrets;
mod smoke;
mod spool_recovery;
mod ssm;
mod wiring;
