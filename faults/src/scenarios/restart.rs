//! Stub.
use crate::client::Rng;
use crate::{Mode, Ran};
use anyhow::Result;
pub(super) fn run(_mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    Ok(Ran::Skipped("todo".into()))
}
