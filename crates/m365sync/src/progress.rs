//! Progress on a terminal: a spinner per step with a running count; plain lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;

use domain::Dataset;
use indicatif::{ProgressBar, ProgressStyle};
use store::StepTenant;
use sync::{Progress, StepReport};

pub struct TerminalProgress {
    bar: Mutex<Option<ProgressBar>>,
    interactive: bool,
    enabled: bool,
}

impl TerminalProgress {
    /// Draws on standard error when it is a terminal; prints a line per step otherwise.
    pub fn new(enabled: bool) -> Self {
        Self {
            bar: Mutex::new(None),
            interactive: std::io::stderr().is_terminal(),
            enabled,
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            bar.finish_and_clear();
        }
    }
}

impl Progress for TerminalProgress {
    fn tenant_started(&self, tenant: &StepTenant) {
        if !self.enabled {
            return;
        }
        let line = crate::commands::tenant_line(&tenant.tenant_id, tenant.tenant_name.as_deref());
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.println(line),
            None => note!("{line}"),
        }
    }

    fn step_started(&self, dataset: Dataset) {
        if !(self.enabled && self.interactive) {
            return;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} items [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(dataset.name().to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Ok(mut current) = self.bar.lock()
            && let Some(old) = current.replace(bar)
        {
            old.finish_and_clear();
        }
    }

    fn expected(&self, _dataset: Dataset, total: u64) {
        if let Some(bar) = self.bar.lock().ok().and_then(|b| b.clone()) {
            bar.set_length(total);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
        }
    }

    fn items(&self, _dataset: Dataset, done: u64) {
        if let Some(bar) = self.bar.lock().ok().and_then(|b| b.clone()) {
            bar.set_position(done);
        }
    }

    fn step_finished(&self, step: &StepReport) {
        if !self.enabled {
            return;
        }
        let line = crate::commands::step_line(
            step.dataset.name(),
            step.status,
            &step.counts,
            step.message.as_deref(),
        );
        match self.bar.lock().ok().and_then(|b| b.clone()) {
            Some(bar) => bar.println(line),
            None => note!("{line}"),
        }
    }
}
