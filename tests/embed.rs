//! The crate as another project's tests use it: only the public API, on the built-in cluster.

use rehearse::report::document::Status;
use rehearse::suite::{Cluster, Pace, RunConfig, RunError, Suite};
use rehearse::{Selection, Shard};

#[test]
fn load_select_and_run_a_suite_from_rust() {
    let suite = Suite::load(&["scenarios"]).expect("the runbook scenarios load");
    assert_eq!(suite.errors(), 0);
    let all = suite.scenarios();
    assert!(all.iter().any(|s| s.scenario == "blue/green switch without a gap"), "{all:?}");

    let selection = Selection { patterns: vec!["09-advanced".into()], ..Default::default() };
    let config = RunConfig { cluster: Cluster::Builtin { pace: Pace::Kind }, selection, jobs: 2, ..Default::default() };
    let outcome = suite.run(&config).expect("the built-in cluster runs");
    assert!(outcome.passed(), "{:?}", outcome.failures().collect::<Vec<_>>());
    assert_eq!(outcome.cluster, "built-in (kind pace)");
    let names: Vec<&str> = outcome.results.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(
        names,
        [
            "a one-shot debug pod joins the rotation",
            "a canary takes a quarter of the traffic",
            "blue/green switch without a gap"
        ]
    );
    // The deterministic result document, as `--results DIR` writes it.
    let document = outcome.results[1].document();
    assert!(document.starts_with("scenario: a canary takes a quarter of the traffic\n"), "{document}");
    assert!(document.contains("status: passed"), "{document}");
}

#[test]
fn a_run_from_inside_an_async_test_and_a_shard() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // `run` brings its own runtime on its own thread, so it works inside another one.
        let suite = Suite::load(&["scenarios/09-advanced-rollout.rollout"]).unwrap();
        let selection = Selection { shard: Some(Shard { index: 1, total: 3 }), ..Default::default() };
        let outcome = suite.run(&RunConfig { selection, ..Default::default() }).unwrap();
        assert_eq!(outcome.shard, Some(Shard { index: 1, total: 3 }));
        assert_eq!(outcome.results.len(), 1);
        assert_eq!(outcome.results[0].status, Status::Passed);
    });
}

#[test]
fn failures_and_broken_scripts_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let failing = dir.path().join("failing.rollout");
    std::fs::write(&failing, "scenario \"nothing there\" {\n    expect pods app=web count 2 within 10s\n}\n").unwrap();
    let suite = Suite::load(&[&failing]).unwrap();
    let outcome = suite.run(&RunConfig::default()).unwrap();
    assert!(!outcome.passed());
    let failures: Vec<(&str, &str)> = outcome.failures().collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, "nothing there");
    assert!(failures[0].1.contains("count 2"), "{failures:?}");

    let broken = dir.path().join("broken.rollout");
    std::fs::write(&broken, "scenario \"x\" {\n    scale deploy/web 3\n}\n").unwrap();
    let suite = Suite::load(&[&broken]).unwrap();
    assert_eq!(suite.errors(), 1);
    let diagnostic = &suite.files()[0].diagnostics[0];
    assert_eq!(diagnostic.location().as_deref(), Some(format!("{}:2:22", broken.display()).as_str()));
    match suite.run(&RunConfig::default()) {
        Err(error @ RunError::InvalidScripts(1)) => assert!(error.is_invalid_input()),
        other => panic!("{other:?}"),
    }

    // A path that leads to no script is an error of the suite, beside any other, and nothing runs.
    let missing = Suite::load(&[dir.path().join("nowhere")]).unwrap();
    assert_eq!(missing.errors(), 1);
    assert!(missing.unreadable()[0].message.contains("does not exist"), "{:?}", missing.unreadable());
    match missing.run(&RunConfig::default()) {
        Err(error @ RunError::InvalidScripts(1)) => assert!(error.is_invalid_input()),
        other => panic!("{other:?}"),
    }
}

/// On the built-in cluster, scenarios run on as many threads as there are cores (each with
/// clusters of its own) when `jobs` allows: every result document must be the same as one at a
/// time on one thread, and the results listed in script order.
#[test]
fn a_suite_gives_the_same_documents_on_one_thread_and_on_many() {
    let suite = Suite::load(&["scenarios", "tests/parity"]).expect("the scenarios load");
    assert_eq!(suite.errors(), 0);
    let run = |jobs: usize| {
        let config = RunConfig { cluster: Cluster::Builtin { pace: Pace::Kind }, jobs, ..Default::default() };
        let outcome = suite.run(&config).expect("the built-in cluster runs");
        assert!(outcome.passed(), "jobs {jobs}: {:?}", outcome.failures().collect::<Vec<_>>());
        outcome.results.iter().map(|r| (r.scenario.clone(), r.document())).collect::<Vec<(String, String)>>()
    };
    let one = run(1);
    let many = run(8);
    let in_script_order: Vec<String> = suite.scenarios().into_iter().map(|s| s.scenario).collect();
    assert_eq!(one.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>(), in_script_order);
    assert_eq!(one.len(), many.len());
    for ((name, alone), (_, together)) in one.iter().zip(&many) {
        assert_eq!(alone, together, "scenario {name}: one thread and many differ");
    }
}

/// A cancel (Ctrl-C, or a caller's) lands while a scenario is in a step that lasts seconds (a
/// scale to thousands of pods at the kind pace): the scenario is reported interrupted, with its
/// steps up to that one, and no step after it is started, since the built-in cluster stops
/// reacting and a later step would read a cluster that no longer moves.
#[test]
fn a_cancel_stops_a_scenario_in_flight_before_its_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("big.rollout");
    let rng = std::fs::canonicalize("examples/dockercoins/rng.yaml").unwrap();
    std::fs::write(
        &script,
        format!(
            "scenario \"big\" {{\n    nodes 101\n    apply \"{}\"\n    scale deployment/rng to 10000\n    \
             wait rollout deployment/rng within 10m\n    expect pods app=rng count 10000\n}}\n",
            rng.display()
        ),
    )
    .unwrap();
    let suite = Suite::load(&[&script]).unwrap();
    let controls = rehearse::suite::Controls::default();
    // The cancel is sent once the scale has started (it lasts seconds), as a person watching the
    // live line would press Ctrl-C.
    let watcher = {
        let controls = controls.clone();
        std::thread::spawn(move || {
            let started = controls
                .progress
                .wait_for_step(std::time::Duration::from_secs(60), |_, step| step.contains("scale deployment/rng"));
            controls.cancel.cancel();
            assert!(started, "the scale never started");
        })
    };
    let config = RunConfig { cluster: Cluster::Builtin { pace: Pace::Kind }, ..Default::default() };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = runtime.block_on(suite.run_with(&config, &(), &controls)).unwrap();
    watcher.join().unwrap();
    assert!(outcome.cancelled);
    let big = &outcome.results[0];
    assert_eq!((big.status, big.failure.as_deref()), (Status::Error, Some("interrupted")), "{big:?}");
    let steps: Vec<(&str, Status)> = big.steps.iter().map(|s| (s.step.as_str(), s.status)).collect();
    // The scale's write returns at the next round once cancelled: listed passed, or interrupted
    // when the cancel was seen before its answer; nothing after it.
    let scale = steps.last().filter(|(step, _)| step.starts_with("scale")).map(|(_, status)| *status);
    assert!(matches!(scale, Some(Status::Passed | Status::Error)), "{steps:?}");
    assert_eq!(steps.len(), 2, "no step started after the cancel: {steps:?}");
    assert_eq!(steps[0].1, Status::Passed, "{steps:?}");
    assert!(outcome.left_behind.is_empty(), "{:?}", outcome.left_behind);
}
