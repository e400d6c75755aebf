//! HTTP/1.x.
use std::sync::Arc;

use super::ProtocolFactory;
use crate::config::Config;

pub fn factory(_cfg: &Config) -> Option<Arc<dyn ProtocolFactory>> {
    None
}
