//! pest's "expected one of these rules" turned into words a user understands.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::parser::Rule;
use crate::diagnostic::Diagnostic;
use crate::span::Span;

/// What a rule means to someone writing a script.
fn describe_rule(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        eol | EOI => "the end of the line",
        comment => return None,
        within | k_within => "`within <duration>`",
        target => "what to act on: `pods <selector>`, an object such as `pod/web-0`, or a `$variable`",
        selection => "a kind and a selector, such as `pods app=rng`",
        selector | set_requirement | equality | exists | not_exists | label_key | reserved_word => {
            "a label selector such as `app=rng`"
        }
        label_change | assignment | removal | removal_key => "a label change such as `active=yes` or `active-`",
        label_value | bare_value => "a label value or a `$variable`",
        object_ref => "an object such as `deployment/rng`",
        kind_name => "a kind such as `pods` or `daemonset`",
        object_name => "an object name",
        string | string_inner => "a quoted string",
        heredoc => "inline YAML (`<<YAML` ... `YAML`)",
        heredoc_tag => "a heredoc tag in capitals, such as `YAML`",
        duration => "a duration such as `30s` or `2m`",
        integer => "a number",
        count => "a number or a `$variable`",
        percent => "a percentage such as `25%`",
        variable => "a variable such as `$victim`",
        identifier => "a variable name",
        condition | condition_name | condition_status => "`condition=<Name>`",
        select_op => "`+=` or `-=`",
        set_operator => "`in` or `notin`",
        equality_operator => "`=`, `==` or `!=`",
        traffic_share | traffic_exact => "`-> <pods>`",
        one_of => "`one <kind> <selector>`",
        label_of => "`label <key> of <target>`",
        name_of => "`name of <target>`",
        step | step_line => "a step",
        setting | setting_line => "a setting",
        scenario_head => "`\"name\" {`",
        run_image => "`image \"<image>\"`",
        run_labels => "`labels <key=value>...`",
        expect_violation | k_expect_violation => "`expect-violation`",
        k_all => "`all`",
        _ => return keyword(rule),
    })
}

/// A keyword rule (`k_remove_from_lb`) as written in scripts (`remove-from-lb`).
fn keyword(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        k_to => "`to`",
        k_revision => "`revision`",
        k_from => "`from`",
        k_includes => "`includes`",
        k_excludes => "`excludes`",
        k_count => "`count`",
        k_none => "`none`",
        k_exists => "`exists`",
        k_absent => "`absent`",
        k_replaced => "`replaced`",
        k_orphaned => "`orphaned`",
        k_adopted => "`adopted`",
        k_by => "`by`",
        k_labels => "`labels`",
        k_rolled_out => "`rolled-out`",
        k_one_per_node => "`one-per-node`",
        k_rollout => "`rollout`",
        k_deleted => "`deleted`",
        k_one => "`one`",
        k_of => "`of`",
        k_name => "`name`",
        k_always_serving | always_serving => "`always-serving`",
        k_at_least | at_least => "`at-least <n>`",
        k_image => "`image`",
        k_scenario => "`scenario`",
        expect_count => "`count <n>`",
        expect_exists => "`exists`",
        expect_absent => "`absent`",
        expect_replaced => "`replaced`",
        expect_orphaned => "`orphaned`",
        expect_adopted => "`adopted`",
        expect_labels => "`labels <selector>`",
        expect_rolled_out => "`rolled-out`",
        expect_one_per_node => "`one-per-node`",
        traffic_includes => "`includes`",
        traffic_excludes => "`excludes`",
        traffic_count => "`count <n>`",
        traffic_none => "`none`",
        wait_rollout => "`rollout <controller>`",
        wait_condition => "`<target> condition=<Name>`",
        wait_deleted => "`<target> deleted`",
        k_label => "`label`",
        annotation => "an annotation such as `owner=team-a` or `owner-`",
        // Named by the rule that holds them, or never what a line lacks: no words of their own.
        // Listed one by one, so a new rule must be given words or put here.
        script | next_item | next_scenario_item | blank_line | comment_line | scenario | scenario_open | bad_head
        | scenario_close | closing_line | bad_line | timeout_setting | nodes_setting | base_dir_setting | lone_step
        | apply | convert | label | annotate | select | template | remove_from_lb | add_to_lb | expect_traffic
        | expect | wait | let_binding | guard | expect_refused | delete | scale | restart | pause | resume | undo
        | run | snapshot | string_run | heredoc_body | heredoc_close | rest_of_line | k_timeout | k_nodes
        | k_base_dir | k_apply | k_convert | k_select | k_template | k_remove_from_lb | k_add_to_lb
        | k_expect_traffic | k_expect_refused | k_expect | k_wait | k_let | k_guard | k_delete | k_scale
        | k_restart | k_pause | k_resume | k_undo | k_run | k_snapshot | k_annotate => {
            return None;
        }
        // Silent rules: pest never reports them.
        WHITESPACE | file_item | scenario_item | plain_step | traffic_expectation | expectation | binding
        | invariant | run_option | selector_flag | requirement | key_char | word_char => return None,
        // Described by `describe_rule`, which handles them before asking here.
        eol | EOI | comment | within | k_within | target | selection | selector | set_requirement | equality
        | exists | not_exists | label_key | reserved_word | label_change | assignment | removal | removal_key
        | label_value | bare_value | object_ref | kind_name | object_name | string | string_inner | heredoc
        | heredoc_tag | duration | integer | count | percent | variable | identifier | condition | condition_name
        | condition_status | select_op | set_operator | equality_operator | traffic_share | traffic_exact | one_of
        | label_of | name_of | step | step_line | setting | setting_line | scenario_head | run_image | run_labels
        | expect_violation | k_expect_violation | k_all => return None,
    })
}

/// Joins `a`, `a or b`, `a, b or c`.
fn one_of(items: &[&str]) -> String {
    match items {
        [] => "something else".to_string(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// What stands at the error position, as the user would name it.
fn found_at(source: &str, at: usize) -> (String, Span) {
    let rest = &source[at.min(source.len())..];
    if rest.is_empty() {
        return ("the end of the file".into(), Span::new(at, at));
    }
    if rest.starts_with(['\n', '\r']) {
        return ("the end of the line".into(), Span::new(at, at));
    }
    let len = rest.find([' ', '\t', '\n', '\r']).unwrap_or(rest.len()).max(1);
    let mut end = at + len.min(rest.len());
    while !source.is_char_boundary(end) {
        end += 1;
    }
    (format!("`{}`", &source[at..end]), Span::new(at, end))
}

/// A diagnostic for a pest error from parsing `source[offset..]`.
pub(crate) fn describe(source: &str, offset: usize, error: &Error<Rule>) -> Diagnostic {
    let at = offset
        + match error.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
    let (found, span) = found_at(source, at);
    let expected: Vec<&str> = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut words: Vec<&str> = positives.iter().filter_map(|r| describe_rule(*r)).collect();
            words.dedup();
            let mut unique = Vec::new();
            for w in words {
                if !unique.contains(&w) {
                    unique.push(w);
                }
            }
            unique
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let suggestion = found
        .strip_prefix('`')
        .and_then(|word| word.strip_suffix('`'))
        .and_then(|word| crate::diagnostic::did_you_mean(word, expected.iter().filter_map(|e| keyword_of(e))));
    let expected = one_of(&expected);
    Diagnostic::error("rehearse::syntax::unexpected", format!("expected {expected}, found {found}"))
        .label(span, format!("expected {expected}"))
        .help(match suggestion {
            Some(keyword) => format!("did you mean `{keyword}`?"),
            None => "docs/language.md shows every step with an example".to_string(),
        })
}

/// The keyword an expected item starts with (`at-least` of `` `at-least <n>` ``), if it is one.
fn keyword_of(expected: &str) -> Option<&str> {
    let word = expected.strip_prefix('`')?;
    let word = &word[..word.find(['`', ' ', '<', '=']).unwrap_or(word.len())];
    (!word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '-')).then_some(word)
}
