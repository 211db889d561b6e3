//! Spillover tiers: a pool's backends in tiers (self-hosted engines first, paid APIs after),
//! and a request stays in the first tier while that tier has room. Which backend of the tier
//! takes it is the strategy's choice.

use super::Candidates;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spillover {
    /// A tier has room while its least loaded backend's `Load::total()` is below this.
    pub max_load: f64,
}

/// The tier a request goes to: in ascending order, the first whose least loaded candidate is
/// below `max_load`, or whose candidates' loads are all unknown (an API: no load to wait for).
/// A tier without a candidate (every backend out or excluded) is skipped. When every tier is
/// full, the one whose least loaded backend is least loaded (the lower tier on a tie): the
/// request waits least there. `None` only without candidates.
pub(super) fn open_tier(spillover: &Spillover, candidates: &Candidates) -> Option<u32> {
    let mut least_full: Option<(f64, u32)> = None;
    let mut tried: Option<u32> = None;
    // The tiers in ascending order, each found as the lowest above the last one tried: a pool
    // has a few tiers, and a sort would cost the module more than these passes cost a request.
    while let Some(tier) = candidates
        .list
        .iter()
        .map(|(_, backend)| backend.tier)
        .filter(|tier| tried.is_none_or(|tried| *tier > tried))
        .min()
    {
        tried = Some(tier);
        let least_loaded = candidates
            .list
            .iter()
            .filter(|(_, backend)| backend.tier == tier)
            .filter_map(|(_, backend)| backend.load.map(|load| load.total()))
            .filter(|total| !total.is_nan())
            .reduce(f64::min);
        let Some(least_loaded) = least_loaded else {
            return Some(tier);
        };
        if least_loaded < spillover.max_load {
            return Some(tier);
        }
        if least_full.is_none_or(|(lowest, _)| least_loaded < lowest) {
            least_full = Some((least_loaded, tier));
        }
    }
    least_full.map(|(_, tier)| tier)
}
