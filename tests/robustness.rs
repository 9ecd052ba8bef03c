//! The parser and checker never panic or hang, whatever they are fed.

use std::path::Path;

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn check(text: &str) -> usize {
    let file = rehearse::check_source(Path::new("fuzz.rollout"), text);
    file.diagnostics.len()
}

#[test]
fn random_bytes_and_mutations_of_valid_scripts() {
    let seed = std::fs::read_to_string("tests/fixtures/ok/every-step.rollout").unwrap();
    let alphabet: Vec<char> = "abcdefgz $-=,!/(){}\"#<>%\n\t\\0123456789YAML:.é\u{0}".chars().collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let text: String = if round % 2 == 0 {
            let len = (rng.next() % 200) as usize;
            (0..len).map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize]).collect()
        } else {
            // Cut, duplicate or corrupt a slice of a valid script.
            let mut chars: Vec<char> = seed.chars().collect();
            for _ in 0..(rng.next() % 6 + 1) {
                if chars.is_empty() {
                    break;
                }
                let at = (rng.next() % chars.len() as u64) as usize;
                match rng.next() % 3 {
                    0 => {
                        chars.remove(at);
                    }
                    1 => chars.insert(at, alphabet[(rng.next() % alphabet.len() as u64) as usize]),
                    _ => chars.truncate(at.max(1)),
                }
            }
            chars.into_iter().collect()
        };
        check(&text);
    }
}

#[test]
fn invalid_utf8_is_a_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.rollout");
    std::fs::write(&path, b"scenario \"x\" {\n    snapshot \"\xff\xfe\"\n}\n").unwrap();
    let file = rehearse::check::Checker::new().check_file(&path).unwrap();
    assert_eq!(file.diagnostics[0].code, "rehearse::io::not_utf8");
    assert!(file.diagnostics[0].location().unwrap().ends_with(":2:15"), "{:?}", file.diagnostics[0].location());
}

#[test]
fn nul_bytes_deep_nesting_and_long_lines() {
    assert!(check("scenario \"x\" {\n\0\0\0\n}\n") > 0);
    let deep = format!("scenario \"x\" {{\n    expect pods {}a count 1\n}}\n", "(".repeat(100_000));
    assert!(check(&deep) > 0);
    let braces = "{".repeat(100_000);
    assert!(check(&braces) > 0);
    let selector = vec!["k=v"; 20_000].join(",");
    assert_eq!(check(&format!("scenario \"x\" {{\n    expect pods {selector} count 1\n}}\n")), 0);
}

#[test]
fn a_ten_megabyte_script() {
    let scenario = "scenario \"s{}\" {\n    label pods app=rng active=yes\n    expect pods app=rng count 3\n}\n";
    let mut text = String::with_capacity(10 << 20);
    let mut i = 0;
    while text.len() < 10 << 20 {
        text.push_str(&scenario.replace("{}", &i.to_string()));
        i += 1;
    }
    let started = std::time::Instant::now();
    let parsed = rehearse::parse(&text);
    assert!(parsed.diagnostics.is_empty());
    assert_eq!(parsed.script.scenarios().count(), i);
    // Not a benchmark (benches/check.rs is): only a guard against quadratic blow-ups.
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    // And a 10 MB line of garbage.
    assert!(check(&"x".repeat(10 << 20)) > 0);
}
