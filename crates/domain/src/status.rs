//! The states of a sync run and of each of its steps.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    /// Some steps failed; what the others did is kept.
    Partial,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Succeeded,
    Failed,
    Skipped,
    /// Stopped at a page boundary because someone cancelled the run; what it committed is kept.
    Cancelled,
}

macro_rules! str_enum {
    ($ty:ty { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
            pub fn from_db(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)* _ => None }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(RunStatus {
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Partial => "partial",
    Failed => "failed",
    Cancelled => "cancelled",
});
str_enum!(StepStatus { Running => "running", Succeeded => "succeeded", Failed => "failed", Skipped => "skipped", Cancelled => "cancelled" });

impl RunStatus {
    /// A run's outcome from its steps: all good, some good, or none.
    pub fn from_steps(steps: &[StepStatus]) -> Self {
        let failed = steps.iter().filter(|s| **s == StepStatus::Failed).count();
        let done = steps
            .iter()
            .filter(|s| **s == StepStatus::Succeeded)
            .count();
        match (failed, done) {
            (0, _) => Self::Succeeded,
            (_, 0) => Self::Failed,
            _ => Self::Partial,
        }
    }
}
