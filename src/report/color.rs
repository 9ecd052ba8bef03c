//! Whether output is coloured: `--color auto|always|never`, with the conventions of other tools
//! (NO_COLOR turns colour off under `auto`, CLICOLOR_FORCE turns it on).

use std::ffi::OsString;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set (non-empty); CLICOLOR_FORCE (not `0`) forces it.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream that is (or is not) a terminal, reading the environment.
    pub fn enabled(self, is_terminal: bool) -> bool {
        self.enabled_with(is_terminal, |name| std::env::var_os(name))
    }

    /// [`ColorChoice::enabled`] with the environment given (for tests).
    pub fn enabled_with(self, is_terminal: bool, env: impl Fn(&str) -> Option<OsString>) -> bool {
        let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto if set("NO_COLOR") => false,
            ColorChoice::Auto if set("CLICOLOR_FORCE") && env("CLICOLOR_FORCE").is_some_and(|v| v != "0") => true,
            ColorChoice::Auto => is_terminal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ColorChoice;
    use std::ffi::OsString;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn always_and_never_ignore_the_terminal_and_the_environment() {
        for terminal in [false, true] {
            assert!(ColorChoice::Always.enabled_with(terminal, env(&[("NO_COLOR", "1")])));
            assert!(!ColorChoice::Never.enabled_with(terminal, env(&[("CLICOLOR_FORCE", "1")])));
        }
    }

    #[test]
    fn auto_colours_a_terminal_unless_no_color_is_set() {
        assert!(ColorChoice::Auto.enabled_with(true, env(&[])));
        assert!(!ColorChoice::Auto.enabled_with(false, env(&[])));
        assert!(!ColorChoice::Auto.enabled_with(true, env(&[("NO_COLOR", "1")])));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(ColorChoice::Auto.enabled_with(true, env(&[("NO_COLOR", "")])));
    }

    #[test]
    fn clicolor_force_colours_a_pipe_under_auto_but_no_color_wins() {
        assert!(ColorChoice::Auto.enabled_with(false, env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!ColorChoice::Auto.enabled_with(false, env(&[("CLICOLOR_FORCE", "0")])));
        assert!(!ColorChoice::Auto.enabled_with(false, env(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")])));
    }
}
