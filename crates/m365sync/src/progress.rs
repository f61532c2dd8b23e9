//! Progress on a terminal: one live line for each step going (a tenant's independent steps run
//! side by side), with its count, its rate, and for a step that knows its total an ETA from the
//! step's average rate; each replaced when its step ends by the step's line; plain lines
//! otherwise. Nothing of the live lines is left behind.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use domain::TenantId;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use store::StepTenant;
use sync::{Progress, StepKey, StepReport};

pub struct TerminalProgress {
    lines: MultiProgress,
    bars: Mutex<HashMap<StepKey, ProgressBar>>,
    /// The tenants whose steps have begun, by id, with their names: once a partner run has
    /// begun a second customer, its customers' steps run side by side and each line says whose.
    tenants: Mutex<HashMap<TenantId, String>>,
    interactive: bool,
    enabled: bool,
    /// Whether step lines were printed as they ended, so the closing report need not repeat them.
    steps_shown: AtomicBool,
}

impl TerminalProgress {
    /// Draws on standard error when it is a terminal; prints a line per step otherwise.
    pub fn new(enabled: bool) -> Self {
        Self {
            lines: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            tenants: Mutex::new(HashMap::new()),
            interactive: std::io::stderr().is_terminal(),
            enabled,
            steps_shown: AtomicBool::new(false),
        }
    }

    pub fn finish(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, bar) in bars.drain() {
                bar.finish_and_clear();
            }
        }
    }

    fn bar(&self, step: StepKey) -> Option<ProgressBar> {
        self.bars.lock().ok()?.get(&step).cloned()
    }

    /// `what` of `step`, prefixed with its tenant's name once several tenants have begun.
    fn of_tenant(&self, tenant_id: &TenantId, what: String) -> String {
        let tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        match tenants.get(tenant_id) {
            Some(name) if tenants.len() > 1 => tenant_prefixed(name, &what),
            _ => what,
        }
    }

    /// Whether each step's line was shown on the same terminal as the report will be, so that
    /// the report gives only the run's outcome instead of every step a second time.
    pub fn steps_shown_on_terminal(&self) -> bool {
        self.steps_shown.load(Ordering::Relaxed)
            && self.interactive
            && std::io::stdout().is_terminal()
    }

    fn say(&self, line: String) {
        if self.bars.lock().is_ok_and(|bars| bars.is_empty()) {
            note!("{line}");
        } else {
            self.lines.suspend(|| note!("{line}"));
        }
    }
}

/// A step's line under its tenant's name, cut so that a long name leaves room for the figures.
fn tenant_prefixed(name: &str, line: &str) -> String {
    const LONGEST: usize = 24;
    let short: String = if name.chars().count() > LONGEST {
        name.chars()
            .take(LONGEST - 1)
            .chain(std::iter::once('…'))
            .collect()
    } else {
        name.to_string()
    };
    format!("{short} · {line}")
}

/// Items a second over the whole step so far: steadier than the latest pages' rate, which a
/// slow page or a fast cached one swings. None until half a second and one item have passed.
fn average_rate(done: u64, elapsed: Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    (seconds >= 0.5 && done > 0).then(|| done as f64 / seconds)
}

fn rate_key(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = match average_rate(state.pos(), state.elapsed()) {
        Some(rate) if rate >= 10.0 => write!(w, "{rate:.0}/s"),
        Some(rate) => write!(w, "{rate:.1}/s"),
        None => write!(w, "…/s"),
    };
}

/// The time left at the step's average rate so far, in words.
fn time_left(done: u64, total: Option<u64>, elapsed: Duration) -> String {
    match total.zip(average_rate(done, elapsed)) {
        // A total that Microsoft's count undershot is passed, not a negative time.
        Some((total, _)) if done >= total => "finishing".into(),
        Some((total, rate)) => format!(
            "{} left",
            crate::commands::duration_text(((total - done) as f64 / rate * 1000.0) as i64)
        ),
        None => "estimating".into(),
    }
}

fn eta_key(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = w.write_str(&time_left(state.pos(), state.len(), state.elapsed()));
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg:<16} {pos} items · {rate} · {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("rate", rate_key)
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:<16} [{bar:30}] {pos}/{len} · {rate} · {eta_left}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", rate_key)
        .with_key("eta_left", eta_key)
        .progress_chars("=> ")
}

impl Progress for TerminalProgress {
    fn tenant_started(&self, tenant: &StepTenant) {
        if let Ok(id) = TenantId::parse(&tenant.tenant_id)
            && let Ok(mut tenants) = self.tenants.lock()
        {
            let name = tenant
                .tenant_name
                .clone()
                .unwrap_or_else(|| tenant.tenant_id.clone());
            tenants.insert(id, name);
        }
        if self.enabled {
            self.say(crate::commands::tenant_line(
                &tenant.tenant_id,
                tenant.tenant_name.as_deref(),
            ));
        }
    }

    fn step_started(&self, step: StepKey) {
        if !(self.enabled && self.interactive) {
            return;
        }
        let bar = self.lines.add(ProgressBar::new_spinner());
        bar.set_style(spinner_style());
        bar.set_message(self.of_tenant(&step.tenant_id, step.dataset.name().to_string()));
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut bars) = self.bars.lock()
            && let Some(old) = bars.insert(step, bar)
        {
            old.finish_and_clear();
        }
    }

    fn expected(&self, step: StepKey, total: u64) {
        if let Some(bar) = self.bar(step) {
            bar.set_length(total);
            bar.set_style(bar_style());
        }
    }

    fn items(&self, step: StepKey, done: u64) {
        if let Some(bar) = self.bar(step) {
            bar.set_position(done);
        }
    }

    fn step_finished(&self, step: &StepReport) {
        if !self.enabled {
            return;
        }
        // The live line goes first, so that the step's line takes its place.
        let live = self
            .bars
            .lock()
            .ok()
            .and_then(|mut bars| bars.remove(&step.key()));
        if let Some(bar) = live {
            bar.finish_and_clear();
            self.lines.remove(&bar);
        }
        let line = crate::commands::step_line(
            step.dataset.name(),
            step.status,
            &step.counts,
            step.message.as_deref(),
        );
        self.say(self.of_tenant(&step.tenant_id, line));
        self.steps_shown.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customers_line_carries_its_name_cut_to_fit() {
        assert_eq!(
            tenant_prefixed("Contoso", "users  3 new"),
            "Contoso · users  3 new"
        );
        let long = "Northwind Traders International Holdings";
        let line = tenant_prefixed(long, "users");
        assert_eq!(line, "Northwind Traders Inter… · users");
    }

    #[test]
    fn the_time_left_is_what_remains_at_the_rate_so_far() {
        // 250 of 1,000 in 5 s: 50 a second, 750 left, 15 s.
        assert_eq!(
            time_left(250, Some(1000), Duration::from_secs(5)),
            "15.0 s left"
        );
        // A slow start and a fast finish average out: 100 in 10 s, then 900 more at that rate.
        assert_eq!(
            time_left(100, Some(1000), Duration::from_secs(10)),
            "1 min 30 s left"
        );
    }

    #[test]
    fn no_time_is_guessed_before_there_is_a_rate_or_without_a_total() {
        assert_eq!(
            time_left(0, Some(1000), Duration::from_secs(3)),
            "estimating"
        );
        assert_eq!(
            time_left(40, Some(1000), Duration::from_millis(200)),
            "estimating"
        );
        assert_eq!(time_left(40, None, Duration::from_secs(3)), "estimating");
    }

    #[test]
    fn a_step_past_its_expected_total_is_finishing_not_negative() {
        assert_eq!(
            time_left(1000, Some(1000), Duration::from_secs(3)),
            "finishing"
        );
        assert_eq!(
            time_left(1200, Some(1000), Duration::from_secs(3)),
            "finishing"
        );
    }
}
