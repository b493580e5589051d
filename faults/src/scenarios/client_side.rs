//! Stub.
use crate::client::Rng;
use crate::{Mode, Ran};
use anyhow::Result;
pub(super) fn garbage_media(_mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    Ok(Ran::Skipped("todo".into()))
}
pub(super) fn malformed_server(_mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    Ok(Ran::Skipped("todo".into()))
}
pub(super) fn camera_lost(_mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    Ok(Ran::Skipped("todo".into()))
}
