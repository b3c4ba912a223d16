//! The step rules of a series: which steps are allowed, the step chosen when none is
//! asked for, the smallest step within `SERIES_MAX_POINTS`, and how a step is spelled.

use std::time::Duration;

use crate::domain::Period;

const SECOND: u64 = 1;
const MINUTE: u64 = 60;
/// The longest step: ten years of 365 days.
pub const MAX_STEP_SECS: u64 = 3_650 * 86_400;
/// Steps below a minute: the divisors of a minute, so no step straddles two minutes.
const SUB_MINUTE: [u64; 11] = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30];
/// The steps a series without `step` chooses from (seconds).
const LADDER: [u64; 21] = [
    SECOND,
    2,
    5,
    10,
    15,
    30,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    3_600,
    2 * 3_600,
    3 * 3_600,
    6 * 3_600,
    12 * 3_600,
    86_400,
    2 * 86_400,
    7 * 86_400,
    28 * 86_400,
];
/// A chosen step gives at least this many steps when the period allows it.
pub const CHOSEN_MIN_POINTS: usize = 60;

/// The service's fixed rules, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct SeriesRules {
    pub retention: Duration,
    /// `SERIES_MAX_POINTS`.
    pub max_points: usize,
}

impl SeriesRules {
    /// How far back a period reaches: at most the retention.
    fn span(&self, period: Period) -> Duration {
        match period {
            Period::All => self.retention,
            Period::Last(d) => d.min(self.retention),
        }
    }

    /// Steps of `step` a series over `period` has.
    pub fn steps(&self, period: Period, step: Duration) -> u64 {
        let (span, step) = (self.span(period).as_micros(), step.as_micros().max(1));
        u64::try_from(span.div_ceil(step))
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The shortest step (by the step rules) giving at most `max_points` steps.
    pub fn smallest_step(&self, period: Period) -> Duration {
        let span = self.span(period).as_micros();
        let at_least = span.div_ceil(self.max_points as u128 * 1_000_000);
        let secs = u64::try_from(at_least).unwrap_or(MAX_STEP_SECS).max(1);
        let secs = match SUB_MINUTE.iter().find(|&&s| s >= secs) {
            Some(&s) => s,
            None => secs.div_ceil(MINUTE) * MINUTE,
        };
        Duration::from_secs(secs.min(MAX_STEP_SECS))
    }

    /// The step of a series asked without one: the longest of the ladder that still
    /// gives [`CHOSEN_MIN_POINTS`] steps (so 60 to about 210), within `max_points`.
    pub fn choose_step(&self, period: Period) -> Duration {
        let want = CHOSEN_MIN_POINTS.min(self.max_points) as u64;
        let smallest = self.smallest_step(period);
        LADDER
            .iter()
            .map(|&s| Duration::from_secs(s))
            .filter(|&s| s >= smallest)
            .take_while(|&s| self.steps(period, s) >= want)
            .last()
            .unwrap_or(smallest)
    }

    /// The step rules, for a parsed `step`: the 422 message if one is broken.
    pub(super) fn check_step(
        &self,
        raw: &str,
        step: Duration,
        period: Period,
    ) -> Result<(), String> {
        let secs = step.as_secs();
        let rule = "must be 1s, 2s, 3s, 4s, 5s, 6s, 10s, 12s, 15s, 20s or 30s (a divisor of a \
                    minute) or whole minutes from 1m up (5m, 90m, 1h, 1d)";
        if step.subsec_nanos() != 0 || secs == 0 || raw.contains('.') {
            return Err(rule.into());
        }
        if (secs < MINUTE && !SUB_MINUTE.contains(&secs)) || (secs > MINUTE && secs % MINUTE != 0) {
            return Err(rule.into());
        }
        if secs > MAX_STEP_SECS {
            return Err(format!("must be at most {}d", MAX_STEP_SECS / 86_400));
        }
        let steps = self.steps(period, step);
        if steps > self.max_points as u64 {
            return Err(format!(
                "'{raw}' gives {steps} steps over this period, more than SERIES_MAX_POINTS \
                 ({}); the smallest step allowed is {}",
                self.max_points,
                spell(self.smallest_step(period))
            ));
        }
        Ok(())
    }
}

/// A step in its shortest spelling: the largest of `d`, `h`, `m`, `s` dividing it.
pub fn spell(step: Duration) -> String {
    let secs = step.as_secs();
    [(86_400, 'd'), (3_600, 'h'), (MINUTE, 'm')]
        .iter()
        .find(|(unit, _)| secs > 0 && secs % unit == 0)
        .map_or_else(
            || format!("{secs}s"),
            |(unit, c)| format!("{}{c}", secs / unit),
        )
}
