//! The language against its fixtures: valid scripts check clean and their ASTs are snapshotted;
//! invalid scripts produce exactly the rendered diagnostics in tests/snapshots/; the formatter
//! round-trips; the parser survives hostile input.

use std::path::{Path, PathBuf};

use miette::{GraphicalReportHandler, GraphicalTheme};
use rehearse::check::{CheckedFile, Checker};
use rehearse::syntax::format::format;

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new("tests/fixtures").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rollout"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {dir}");
    files
}

fn render(file: &CheckedFile) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
    let mut out = String::new();
    for diagnostic in &file.diagnostics {
        handler.render_report(&mut out, diagnostic).unwrap();
    }
    out
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Debug output of an AST without its spans, to compare trees parsed from different layouts.
fn without_spans(debug: &str) -> String {
    let spans = regex::Regex::new(r" @ \d+\.\.\d+|\d+\.\.\d+").unwrap();
    let line_starts = regex::Regex::new(r"line_starts: \[[^\]]*\]").unwrap();
    line_starts.replace_all(&spans.replace_all(debug, ""), "line_starts").into_owned()
}

#[test]
fn valid_scripts_check_clean_and_their_asts_are_stable() {
    let mut checker = Checker::new();
    for path in fixtures("ok") {
        let file = checker.check_file(&path).unwrap();
        assert!(file.diagnostics.is_empty(), "{}:\n{}", path.display(), render(&file));
        insta::assert_debug_snapshot!(format!("ast-{}", stem(&path)), file.script);
    }
}

#[test]
fn invalid_scripts_render_the_expected_diagnostics() {
    let mut checker = Checker::new();
    for path in fixtures("err") {
        let file = checker.check_file(&path).unwrap();
        assert!(file.errors() + file.warnings() > 0, "{} should have problems", path.display());
        insta::assert_snapshot!(format!("err-{}", stem(&path)), render(&file));
    }
}

#[test]
fn the_runbook_scenarios_check_clean() {
    let scripts = rehearse::check::check_path(&[PathBuf::from("scenarios")]).unwrap();
    assert!(scripts.len() >= 9, "expected the runbook's scenario files, found {}", scripts.len());
    let mut scenarios = 0;
    for file in &scripts {
        assert!(file.diagnostics.is_empty(), "{}:\n{}", file.path.display(), render(file));
        scenarios += file.script.scenarios().count();
    }
    assert!(scenarios >= 10, "design.md §7 has ten rows; found {scenarios} scenarios");
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let file = Checker::new().check_file(Path::new("tests/fixtures/err/syntax.rollout")).unwrap();
    let codes: Vec<&str> = file.diagnostics.iter().map(|d| d.code).collect();
    assert!(codes.iter().filter(|c| **c == "rehearse::syntax::unexpected").count() >= 6, "{codes:?}");
    assert!(codes.contains(&"rehearse::syntax::scenario_header"));
    assert!(codes.contains(&"rehearse::syntax::unclosed_scenario"));
    assert!(codes.contains(&"rehearse::syntax::step_outside_scenario"));
    // Each points at a line and column in the file.
    for diagnostic in &file.diagnostics {
        let location = diagnostic.location().expect("a location");
        assert!(location.starts_with("tests/fixtures/err/syntax.rollout:"), "{location}");
    }
}

#[test]
fn the_runbook_slip_is_caught() {
    let file = Checker::new().check_file(Path::new("tests/fixtures/err/enable-slip.rollout")).unwrap();
    let near_miss = file.diagnostics.iter().find(|d| d.code == "rehearse::traffic::near_miss_key").expect("near miss");
    assert_eq!(near_miss.help.as_deref(), Some("did you mean `enabled`?"));
    assert_eq!(near_miss.location().unwrap(), "tests/fixtures/err/enable-slip.rollout:8:28");
}

/// A manifest applied under `expect-refused` never reaches the cluster: its Service selects
/// nothing and its pod labels label nothing, so neither counts for the traffic checks.
#[test]
fn a_refused_manifest_neither_selects_nor_labels() {
    let source = "scenario \"refused\" {\n    expect-refused \"spec.ports: Required value\" apply <<YAML\n        apiVersion: v1\n        kind: Service\n        metadata:\n          name: api\n        spec:\n          selector:\n            tier: api\n    YAML\n    select service/web app=web\n}\n";
    let file = rehearse::check::check_source(Path::new("refused.rollout"), source);
    let unset: Vec<&str> = file
        .diagnostics
        .iter()
        .filter(|d| d.code == "rehearse::traffic::unset_selector_key")
        .map(|d| d.message.as_str())
        .collect();
    // `app`, which the script selects, is still reported; `tier`, only in the refused Service, is not.
    assert_eq!(unset, ["nothing in this scenario puts the label `app` on a pod"], "{:?}", file.diagnostics);
}

/// Under `expect-refused`, a label the step sends the API server is the API's to refuse: its key
/// and value are not the checker's errors. Selectors rehearse itself reads still are.
#[test]
fn labels_sent_to_be_refused_are_left_to_the_api() {
    let errors = |step: &str| {
        let source = format!("scenario \"refused\" {{\n    {step}\n}}\n");
        let file = rehearse::check::check_source(Path::new("refused.rollout"), &source);
        file.diagnostics.iter().filter(|d| d.severity == rehearse::Severity::Error).map(|d| d.code).collect::<Vec<_>>()
    };
    assert_eq!(errors("expect-refused label pod/web bad_=x"), Vec::<&str>::new());
    assert_eq!(errors("expect-refused select service/web tier_=x"), Vec::<&str>::new());
    assert_eq!(errors("label pod/web bad_=x"), ["rehearse::labels::invalid_key"]);
    assert_eq!(errors("select service/web tier_=x"), ["rehearse::labels::invalid_key"]);
    assert_eq!(errors("expect-refused label pods tier_=x ok=yes"), ["rehearse::labels::invalid_key"], "a selection");
}

/// The labels a controller puts on its pods are set, though no step or manifest writes them: a
/// Service for one StatefulSet member selects its pod name, a canary its revision hash.
#[test]
fn labels_controllers_set_count_as_set() {
    let unset = |selector: &str| {
        let source = format!("scenario \"one member\" {{\n    select service/db {selector}\n}}\n");
        let file = rehearse::check::check_source(Path::new("member.rollout"), &source);
        file.diagnostics.iter().filter(|d| d.code == "rehearse::traffic::unset_selector_key").count()
    };
    for key in [
        "statefulset.kubernetes.io/pod-name=db-0",
        "apps.kubernetes.io/pod-index=0",
        "controller-revision-hash=db-5d8f",
        "pod-template-generation=2",
        "pod-template-hash=7c9f",
    ] {
        assert_eq!(unset(key), 0, "{key}");
    }
    assert_eq!(unset("statefulset.kubernetes.io/pod=db-0"), 1, "a key no controller sets is still reported");
}

#[test]
fn formatting_is_canonical_idempotent_and_keeps_the_ast() {
    let mut inputs: Vec<PathBuf> = fixtures("ok");
    inputs.extend(rehearse::check::find_scripts(&[PathBuf::from("scenarios")]).unwrap());
    for path in inputs {
        let source = std::fs::read_to_string(&path).unwrap();
        let parsed = rehearse::parse(&source);
        assert!(parsed.diagnostics.is_empty(), "{}", path.display());
        let once = format(&parsed.script);
        let reparsed = rehearse::parse(&once);
        assert!(
            reparsed.diagnostics.is_empty(),
            "{} formats to something that does not parse:\n{once}",
            path.display()
        );
        assert_eq!(
            without_spans(&format!("{:#?}", reparsed.script)),
            without_spans(&format!("{:#?}", parsed.script)),
            "{}: formatting changed the meaning",
            path.display()
        );
        assert_eq!(format(&reparsed.script), once, "{}: formatting twice changes it", path.display());
        for comment in source.lines().filter_map(|l| l.find('#').map(|i| l[i..].trim_end())) {
            assert!(once.contains(comment), "{}: lost comment {comment}", path.display());
        }
    }
}

#[test]
fn messy_layout_is_normalised() {
    let messy = "\n\n# head\ntimeout   30s\n\n\n\nscenario \"x\"   {   # note\n\n\tlabel   pods  -l app=rng ,tier=web  active=yes\n  expect-traffic svc/web   ->   pods app=web within 90s\n\n\n  apply <<Y\n      kind: Pod\n\n      metadata: {}\n  Y\n\n}   #done\n\n\n";
    let parsed = rehearse::parse(messy);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    insta::assert_snapshot!("fmt-messy", format(&parsed.script));
}

#[test]
fn inline_yaml_errors_point_into_the_script() {
    let file = Checker::new().check_file(Path::new("tests/fixtures/err/yaml.rollout")).unwrap();
    let unquoted: Vec<String> = file
        .diagnostics
        .iter()
        .filter(|d| d.code == "rehearse::yaml::unquoted_label_value")
        .map(|d| d.location().unwrap())
        .collect();
    assert_eq!(unquoted, ["tests/fixtures/err/yaml.rollout:23:26", "tests/fixtures/err/yaml.rollout:24:26"]);
}

#[test]
fn controllers_whose_selector_misses_their_template_are_caught() {
    let file = Checker::new().check_file(Path::new("tests/fixtures/err/selectors.rollout")).unwrap();
    let found: Vec<(&str, String)> = file.diagnostics.iter().map(|d| (d.code, d.location().unwrap())).collect();
    let at = |line_column: &str| format!("tests/fixtures/err/selectors.rollout:{line_column}");
    assert_eq!(
        found,
        [
            ("rehearse::manifest::selector_mismatch", at("15:15")),
            ("rehearse::manifest::selector_mismatch", at("33:15")),
            // A manifest file: the apply step, with the file's own line and column in the message.
            ("rehearse::manifest::selector_mismatch", at("39:11")),
            ("rehearse::manifest::empty_selector", at("49:11")),
            ("rehearse::manifest::empty_selector", at("63:9")),
        ]
    );
    assert!(file.diagnostics[2].message.starts_with("tests/fixtures/err/selector-mismatch.yaml:12:7: "));
    assert!(file.diagnostics.iter().all(|d| d.is_error()));
}
