//! What crossed the ABI: per host import, how many times the filter called it and how many
//! payload bytes the host copied out of the VM's memory (names, values, bodies it read) and into
//! it (values it handed over). A count, not a timing: the same on every machine, so a test can
//! hold it to a budget (`tests/host_call_budget.rs`).
//!
//! Payload means what `memory::read` and `memory::write` move, less the 4- and 8-byte
//! out-parameters a call fills in (addresses, lengths, CAS numbers, clock values), which every
//! call of a kind pays alike.

use std::collections::BTreeMap;
use std::ops::Sub;

/// One import's tally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub calls: u64,
    /// Bytes the host copied out of the VM (guest → host).
    pub bytes_out: u64,
    /// Bytes the host copied into the VM (host → guest).
    pub bytes_in: u64,
}

impl Sub for Tally {
    type Output = Tally;
    fn sub(self, earlier: Tally) -> Tally {
        Tally {
            calls: self.calls - earlier.calls,
            bytes_out: self.bytes_out - earlier.bytes_out,
            bytes_in: self.bytes_in - earlier.bytes_in,
        }
    }
}

/// The tallies of every import called, by import name (`proxy_get_shared_data`, `random_get`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    by_import: BTreeMap<String, Tally>,
}

impl Ledger {
    pub fn call(&mut self, import: &str) {
        self.entry(import).calls += 1;
    }

    pub fn copied_out(&mut self, import: &str, bytes: usize) {
        self.entry(import).bytes_out += bytes as u64;
    }

    pub fn copied_in(&mut self, import: &str, bytes: usize) {
        self.entry(import).bytes_in += bytes as u64;
    }

    pub fn calls(&self, import: &str) -> u32 {
        self.by_import
            .get(import)
            .map_or(0, |tally| tally.calls as u32)
    }

    /// What happened since `earlier` (a clone taken before), imports not called left out.
    pub fn since(&self, earlier: &Ledger) -> Ledger {
        let by_import = self
            .by_import
            .iter()
            .map(|(import, tally)| {
                let before = earlier.by_import.get(import).copied().unwrap_or_default();
                (import.clone(), *tally - before)
            })
            .filter(|(_, tally)| tally.calls > 0)
            .collect();
        Ledger { by_import }
    }

    pub fn imports(&self) -> impl Iterator<Item = (&str, Tally)> {
        self.by_import
            .iter()
            .map(|(import, tally)| (import.as_str(), *tally))
    }

    fn entry(&mut self, import: &str) -> &mut Tally {
        self.by_import.entry(import.to_string()).or_default()
    }
}
