//! Subcommand implementations: resolve options, call the library, render.

pub mod audit;
pub mod cleanup;
pub mod control;
pub mod demo;
pub mod headless;
pub mod lag;
pub mod plan;
pub mod rederive;
pub mod rules;
pub mod run;
pub mod runs;
pub mod serve;
pub mod slack;
pub mod verify;

/// What a command has to say: its standard output, its error lines and its
/// exit code (the same whether it ran here or in the service).
#[derive(Debug, Default)]
pub struct Outcome {
    pub out: String,
    pub err: String,
    pub code: i32,
}

impl Outcome {
    pub fn said(out: String) -> Outcome {
        Outcome {
            out,
            ..Outcome::default()
        }
    }

    pub fn refused(err: String) -> Outcome {
        Outcome {
            err,
            code: 3,
            ..Outcome::default()
        }
    }

    /// Prints it; returns the exit code.
    pub fn print(&self) -> i32 {
        print!("{}", self.out);
        if !self.err.is_empty() {
            eprintln!("cutover: {}", self.err.trim_end());
        }
        self.code
    }
}
