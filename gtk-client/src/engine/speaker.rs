//! Who is speaking in a group call: each party's audio level, measured
//! from what its receiving pipeline decoded, and the one speaker a window
//! shows larger. The choice has hysteresis, so that the layout does not
//! jump: a party becomes the speaker after it has been the loudest, by a
//! clear margin, for [`TAKE_OVER`]; the speaker stays at least [`HOLD`];
//! when everyone falls silent the last speaker stays; a speaker that leaves
//! hands over at once to whoever is loudest (or to nobody).
//!
//! Owned and run by the control thread, every [`TICK`] while a call has
//! two or more other parties.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use komunikator_protocol::ClientId;

use crate::media::Stats;

/// How often levels are read.
pub(super) const TICK: Duration = Duration::from_millis(250);

/// How long a challenger must be the loudest before it becomes the speaker.
const TAKE_OVER: Duration = Duration::from_millis(1_000);

/// How long a speaker keeps the place at least.
const HOLD: Duration = Duration::from_millis(2_000);

/// Below this RMS level (about -40 dBFS) a party counts as silent.
const SPEECH: f64 = 0.01;

/// A challenger must be this many times the speaker's level (about 3.5 dB).
const MARGIN: f64 = 1.5;

/// Each tick keeps this share of the smoothed level when the new one is
/// lower: a pause between words (a few hundred ms) does not count as silence.
const RELEASE: f64 = 0.6;

/// Decoded samples a level is measured over: one tick at 48 kHz.
const WINDOW: usize = 48_000 * TICK.as_millis() as usize / 1_000;

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct Speakers {
    /// Each party's smoothed level and the decoded-sample count last read.
    levels: Vec<(ClientId, f64, u64)>,
    /// The speaker shown, and since when.
    current: Option<(ClientId, Instant)>,
    /// The loudest party that is not the speaker, and since when it leads.
    challenger: Option<(ClientId, Instant)>,
    /// When levels are next read (`None`: not in a group call).
    next: Option<Instant>,
}

impl Speakers {
    /// The next tick, while a group call is on.
    pub(super) fn next_tick(&self) -> Option<Instant> {
        self.next
    }

    /// A call started, grew, shrank or ended: ticks run while it has at
    /// least two other parties. Returns the speaker to announce if it
    /// changed (`Some(None)`: nobody).
    pub(super) fn parties(&mut self, parties: &[ClientId]) -> Option<Option<ClientId>> {
        self.levels.retain(|(id, _, _)| parties.contains(id));
        let group = parties.len() >= 2;
        if !group {
            self.next = None;
            self.challenger = None;
        } else if self.next.is_none() {
            self.next = Some(Instant::now() + TICK);
        }
        let gone = self.current.is_some_and(|(id, _)| !group || !parties.contains(&id));
        if gone {
            self.current = None;
            return Some(None);
        }
        None
    }

    /// Reads each party's level (`parties`: id and what it sent us) and
    /// returns the speaker to announce if it changed.
    pub(super) fn tick(
        &mut self,
        parties: &[(ClientId, Arc<Stats>)],
        now: Instant,
    ) -> Option<Option<ClientId>> {
        self.next = self.next.map(|_| now + TICK);
        for (id, stats) in parties {
            let decoded = stats.audio_samples_decoded.load(Relaxed);
            // No audio decoded since the last tick (muted by its network,
            // or gone quiet without packets): silent, not its last level.
            let fresh = match self.levels.iter().find(|l| l.0 == *id) {
                Some(&(_, _, before)) => decoded > before,
                None => decoded > 0,
            };
            let level = if fresh { stats.audio_level(WINDOW) } else { 0.0 };
            self.level(*id, level, decoded);
        }
        self.choose(now)
    }

    /// Records party `id`'s newest `level`, smoothed.
    fn level(&mut self, id: ClientId, level: f64, decoded: u64) {
        match self.levels.iter_mut().find(|l| l.0 == id) {
            Some(l) => {
                l.1 = if level >= l.1 { level } else { l.1 * RELEASE + level * (1.0 - RELEASE) };
                l.2 = decoded;
            }
            None => self.levels.push((id, level, decoded)),
        }
    }

    fn smoothed(&self, id: ClientId) -> f64 {
        self.levels.iter().find(|l| l.0 == id).map_or(0.0, |l| l.1)
    }

    /// Applies the rules of the module documentation.
    fn choose(&mut self, now: Instant) -> Option<Option<ClientId>> {
        let loudest = self
            .levels
            .iter()
            .filter(|l| l.1 >= SPEECH)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|l| (l.0, l.1));
        let Some((id, level)) = loudest else {
            self.challenger = None;
            return None;
        };
        let Some((speaker, since)) = self.current else {
            self.current = Some((id, now));
            return Some(Some(id));
        };
        if id == speaker || level < self.smoothed(speaker) * MARGIN {
            self.challenger = None;
            return None;
        }
        let leads_since = match self.challenger {
            Some((c, t)) if c == id => t,
            _ => {
                self.challenger = Some((id, now));
                now
            }
        };
        if now.duration_since(leads_since) < TAKE_OVER || now.duration_since(since) < HOLD {
            return None;
        }
        self.current = Some((id, now));
        self.challenger = None;
        Some(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ClientId {
        ([10, 0, 0, n], 1).into()
    }

    /// Runs the choice over `ticks`, each the level of parties 1, 2 and 3;
    /// returns the speaker announced at each tick (`None`: no change).
    fn run(s: &mut Speakers, start: Instant, ticks: &[[f64; 3]]) -> Vec<Option<Option<ClientId>>> {
        ticks
            .iter()
            .enumerate()
            .map(|(i, levels)| {
                for (n, level) in levels.iter().enumerate() {
                    s.level(id(n as u8 + 1), *level, i as u64 + 1);
                }
                s.choose(start + TICK * i as u32)
            })
            .collect()
    }

    #[test]
    fn the_first_voice_is_the_speaker_and_silence_keeps_it() {
        let mut s = Speakers::default();
        let t = Instant::now();
        let got = run(&mut s, t, &[[0.0; 3], [0.0, 0.2, 0.0], [0.0; 3], [0.0; 3], [0.0; 3], [0.0; 3]]);
        assert_eq!(got, vec![None, Some(Some(id(2))), None, None, None, None]);
    }

    #[test]
    fn a_louder_voice_takes_over_after_a_second_not_at_once() {
        let mut s = Speakers::default();
        let t = Instant::now();
        // Party 1 speaks for 3 s, then party 3 speaks louder while 1 goes on softly.
        let mut ticks = vec![[0.2, 0.0, 0.0]; 12];
        ticks.extend(vec![[0.05, 0.0, 0.3]; 8]);
        let got = run(&mut s, t, &ticks);
        let changes: Vec<(usize, ClientId)> =
            got.iter().enumerate().filter_map(|(i, c)| c.flatten().map(|c| (i, c))).collect();
        // Party 3 leads from tick 12 and must lead for TAKE_OVER (4 ticks).
        assert_eq!(changes, vec![(0, id(1)), (16, id(3))]);
    }

    #[test]
    fn a_blip_or_a_near_tie_does_not_move_the_speaker() {
        let mut s = Speakers::default();
        let t = Instant::now();
        // Party 2 coughs for half a second; party 3 is only a little louder than 1.
        let mut ticks = vec![[0.2, 0.0, 0.0]; 10];
        ticks.extend(vec![[0.2, 0.9, 0.0]; 2]);
        ticks.extend(vec![[0.2, 0.0, 0.25]; 12]);
        let got = run(&mut s, t, &ticks);
        assert_eq!(got.iter().filter(|c| c.is_some()).count(), 1, "{got:?}");
    }

    #[test]
    fn a_new_speaker_holds_the_place_for_two_seconds() {
        let mut s = Speakers::default();
        let t = Instant::now();
        // Party 1 starts; party 2 is at once far louder: it must lead 1 s
        // and party 1 must have held 2 s.
        let mut ticks = vec![[0.2, 0.0, 0.0]];
        ticks.extend(vec![[0.0, 0.9, 0.0]; 12]);
        let got = run(&mut s, t, &ticks);
        let at = got.iter().position(|c| *c == Some(Some(id(2))));
        assert_eq!(at, Some(8), "{got:?}");
    }

    #[test]
    fn a_speaker_that_leaves_hands_over_and_two_parties_are_no_group() {
        let mut s = Speakers::default();
        let t = Instant::now();
        assert_eq!(s.parties(&[id(1), id(2), id(3)]), None);
        assert!(s.next_tick().is_some());
        run(&mut s, t, &[[0.3, 0.1, 0.0]]);
        assert_eq!(s.parties(&[id(2), id(3)]), Some(None), "the speaker left");
        assert_eq!(s.choose(t + TICK), Some(Some(id(2))), "the loudest of the rest, at once");
        assert_eq!(s.parties(&[id(2)]), Some(None), "a call of two shows nobody larger");
        assert_eq!(s.next_tick(), None);
    }

    #[test]
    fn a_party_that_decodes_nothing_new_is_silent() {
        let stats = Arc::new(Stats::default());
        stats.record_audio((0..WINDOW).map(|i| if i % 2 == 0 { 8_000 } else { -8_000 }));
        stats.audio_samples_decoded.store(WINDOW as u64, Relaxed);
        let mut s = Speakers::default();
        let t = Instant::now();
        let parties = [(id(1), stats.clone())];
        assert_eq!(s.tick(&parties, t), Some(Some(id(1))));
        assert!(s.smoothed(id(1)) > 0.2);
        // Nothing decoded since: the old samples no longer count.
        s.tick(&parties, t + TICK);
        s.tick(&parties, t + TICK * 2);
        assert!(s.smoothed(id(1)) < 0.2 * RELEASE, "{}", s.smoothed(id(1)));
    }
}
