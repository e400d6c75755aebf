//! wirebeat: a passive network transaction analyzer, Packetbeat-compatible.
//!
//! Data flow: [`capture`] (sources) → [`decode`] (L2–L4, defrag) → [`flow`] (flow
//! table, TCP reassembly) → [`protos`] (parsers, pairing, fields) → [`event`] (JSON) →
//! [`output`]; with [`config`], [`pipeline`] (threads, channels, shutdown) and
//! [`stats`] beside them; [`topology`] is the shared shipper map the encoder reads.
//! docs/ARCHITECTURE.md says where each capability lives.

// Only the capture backends talk to the kernel and libpcap through raw pointers;
// each unsafe block there carries a `// SAFETY:` comment.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod capture;
pub mod config;
pub mod dashboards;
pub mod decode;
pub mod event;
pub mod flow;
#[cfg(any(test, feature = "test-support"))]
pub mod fuzzing;
pub mod output;
pub mod pipeline;
pub mod protos;
pub mod stats;
pub mod text;
pub mod time;
pub mod topology;
