//! Variables in label values, selector values and inline YAML, replaced by their values just
//! before a step runs, so the rest of the executor only ever sees literal steps.
//!
//! `$hash` as a label or selector value and `${{ hash }}` in inline YAML take the variable's value
//! as text: a number as its digits, text as it is, a pod or other object as its name. A value that
//! lands in a label or selector must then be a valid label value.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{BoundPod, StepError, Value};
use crate::model::labels::validate_value;
use crate::syntax::ast::{ApplySource, Step, StepKind, value_variable};
use crate::syntax::placeholders::{Piece, pieces};

/// The step with every variable replaced by its value; the step itself when it names none.
pub fn substitute<'s>(step: &'s Step, variables: &HashMap<String, Value>) -> Result<Cow<'s, Step>, StepError> {
    let mut owned = step.clone();
    if substitute_in(&mut owned, variables)? { Ok(Cow::Owned(owned)) } else { Ok(Cow::Borrowed(step)) }
}

/// Substitutes in place; whether anything was replaced.
fn substitute_in(step: &mut Step, variables: &HashMap<String, Value>) -> Result<bool, StepError> {
    let mut changed = false;
    for value in step.label_values_mut() {
        let Some(name) = value_variable(&value.value) else { continue };
        let text = text_of(name, variables)?;
        if let Err(error) = validate_value(&text) {
            return Err(StepError::Failed(format!(
                "`${name}` holds {text:?}, which is not a valid label value: {}; {}",
                error.problem, error.help
            )));
        }
        value.value = text;
        changed = true;
    }
    // Annotation values are any text: the API server judges them (a pod's deletion cost, say).
    for value in step.annotation_values_mut() {
        let Some(name) = value_variable(&value.value) else { continue };
        value.value = text_of(name, variables)?;
        changed = true;
    }
    match &mut step.kind {
        StepKind::Apply(ApplySource::Inline(yaml)) => {
            if let Some(text) = substitute_text(&yaml.text, variables)? {
                yaml.text = text;
                changed = true;
            }
        }
        StepKind::ExpectRefused { step: inner, .. } => changed |= substitute_in(inner, variables)?,
        _ => {}
    }
    Ok(changed)
}

/// Inline YAML with `${{ name }}` replaced (and `$${{` unescaped); `None` when there is neither.
fn substitute_text(text: &str, variables: &HashMap<String, Value>) -> Result<Option<String>, StepError> {
    let pieces = pieces(text);
    if let [Piece::Text(_)] | [] = pieces.as_slice() {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    for piece in pieces {
        match piece {
            Piece::Text(kept) => out.push_str(kept),
            Piece::Variable { name, .. } => out.push_str(&text_of(name, variables)?),
            Piece::Malformed { range } => {
                return Err(StepError::Failed(format!(
                    "`{}` in the inline YAML does not name a variable: write `${{{{ name }}}}`, or `$${{{{` for a \
                     literal `${{{{`",
                    &text[range]
                )));
            }
        }
    }
    Ok(Some(out))
}

/// What a step observed, with each generated name a `${{ name }}` of its inline YAML put there
/// (a pod's, or one read by `name of`) written back as the placeholder: the name differs from
/// run to run, so a result that printed it (`applied pod/web-6f47fd96c9-6bs8h`, or the API's
/// refusal naming it) would too.
/// Only whole names are replaced (`web` in `webui` or `-web` stays), in one pass over the text.
pub fn in_script_terms(step: &Step, variables: &HashMap<String, Value>, observed: String) -> String {
    let yaml = match &step.kind {
        StepKind::Apply(ApplySource::Inline(yaml)) => yaml,
        StepKind::ExpectRefused { step: inner, .. } => match &inner.kind {
            StepKind::Apply(ApplySource::Inline(yaml)) => yaml,
            _ => return observed,
        },
        _ => return observed,
    };
    let mut names: Vec<(&str, &str)> = pieces(&yaml.text)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Variable { name, .. } => match variables.get(name) {
                Some(Value::Pod(BoundPod { name: read, .. }) | Value::ReadName(read)) if !read.is_empty() => {
                    Some((read.as_str(), name))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return observed;
    }
    // The longest first, so that a name inside another is not taken for it.
    names.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(b.1)));
    names.dedup();
    // A character that may be part of an object's name: a name is only replaced whole.
    let in_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    let mut out = String::with_capacity(observed.len());
    let mut rest = observed.as_str();
    let mut after_name_char = false;
    while let Some(c) = rest.chars().next() {
        let whole =
            |value: &str| !after_name_char && rest.starts_with(value) && !rest[value.len()..].starts_with(in_name);
        if let Some((value, name)) = names.iter().find(|(value, _)| whole(value)) {
            out.push_str(&format!("${{{{ {name} }}}}"));
            rest = &rest[value.len()..];
            after_name_char = true;
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        after_name_char = in_name(c);
    }
    out
}

/// A variable's value as text.
fn text_of(name: &str, variables: &HashMap<String, Value>) -> Result<String, StepError> {
    match variables.get(name) {
        Some(Value::Text(text) | Value::ReadName(text)) => Ok(text.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Pod(pod)) => Ok(pod.name.clone()),
        Some(Value::Object { name, .. }) => Ok(name.clone()),
        None => Err(StepError::Failed(format!("`${name}` is not defined when this step runs"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::BoundPod;
    use crate::model::Kind;
    use crate::syntax::format::step_text;

    fn step(line: &str) -> Step {
        let script = format!("scenario \"s\" {{\n    {line}\n}}\n");
        let parsed = crate::syntax::parse(&script);
        assert!(parsed.diagnostics.is_empty(), "{line}: {:?}", parsed.diagnostics);
        parsed.script.scenarios().next().unwrap().steps().next().unwrap().clone()
    }

    fn variables() -> HashMap<String, Value> {
        let pod = BoundPod { name: "rng-7d9f8-x2v4q".into(), uid: "u".into(), controller: None, siblings: vec![] };
        HashMap::from([
            ("hash".to_string(), Value::Text("7d9f8c6b5".into())),
            ("n".to_string(), Value::Number(3)),
            ("victim".to_string(), Value::Pod(pod)),
            ("web".to_string(), Value::Object { kind: Kind::Deployment, name: "web".into() }),
            ("spaced".to_string(), Value::Text("a b".into())),
        ])
    }

    /// The substituted step, printed back as a script line.
    fn substituted(line: &str) -> String {
        let step = step(line);
        step_text(&substitute(&step, &variables()).unwrap())
    }

    #[test]
    fn what_a_step_observed_names_a_placeholder_as_the_script_wrote_it() {
        let script = "scenario \"s\" {\n    expect-refused apply <<YAML\n        {\"kind\": \"Pod\", \"metadata\": {\"name\": \"${{ victim }}\"}, \"data\": \"${{web}}-${{ n }}\"}\n    YAML\n    label pod/rng-7d9f8-x2v4q a=b\n}\n";
        let parsed = crate::syntax::parse(script);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let steps: Vec<Step> = parsed.script.scenarios().next().unwrap().steps().cloned().collect();
        // Only a pod's name, generated, and only whole: not inside another name or a value.
        let observed = "applied pod/rng-7d9f8-x2v4q, configmap/web: Pod \"rng-7d9f8-x2v4q\" is invalid: \
                        \"-rng-7d9f8-x2v4q\", rng-7d9f8-x2v4qa, rng-7d9f8-x2v4q."
            .to_string();
        assert_eq!(
            in_script_terms(&steps[0], &variables(), observed.clone()),
            "applied pod/${{ victim }}, configmap/web: Pod \"${{ victim }}\" is invalid: \"-rng-7d9f8-x2v4q\", \
             rng-7d9f8-x2v4qa, rng-7d9f8-x2v4q."
        );
        // A name the script wrote out is its own: it stays.
        assert_eq!(in_script_terms(&steps[1], &variables(), observed.clone()), observed);
        // Two pods, one's name inside the other's: each replaced whole, once.
        let mut two = variables();
        let short = BoundPod { name: "web".into(), uid: "w".into(), controller: None, siblings: vec![] };
        let long = BoundPod { name: "web-pod".into(), uid: "p".into(), controller: None, siblings: vec![] };
        two.insert("w".into(), Value::Pod(short));
        two.insert("webpod".into(), Value::Pod(long));
        let script = "scenario \"s\" {\n    apply <<YAML\n        {\"a\": \"${{ w }} ${{ webpod }}\"}\n    YAML\n}\n";
        let step = crate::syntax::parse(script).script.scenarios().next().unwrap().steps().next().unwrap().clone();
        assert_eq!(
            in_script_terms(&step, &two, "applied pod/web-pod, pod/web, service/webui".into()),
            "applied pod/${{ webpod }}, pod/${{ w }}, service/webui"
        );
        // A name read by `name of` (a ReplicaSet's, with its hash) is as generated as a pod's;
        // a text the script wrote (`let hash = "..."`) is its own.
        let mut read = variables();
        read.insert("rs".into(), Value::ReadName("rng-5d8d987878".into()));
        let script = "scenario \"s\" {\n    apply <<YAML\n        {\"a\": \"${{ rs }} ${{ hash }}\"}\n    YAML\n}\n";
        let step = crate::syntax::parse(script).script.scenarios().next().unwrap().steps().next().unwrap().clone();
        assert_eq!(
            in_script_terms(&step, &read, "applied replicaset/rng-5d8d987878, configmap/7d9f8c6b5".into()),
            "applied replicaset/${{ rs }}, configmap/7d9f8c6b5"
        );
    }

    #[test]
    fn label_changes_and_selectors_take_the_values() {
        assert_eq!(
            substituted("label pod/debug pod-template-hash=$hash"),
            "label pod/debug pod-template-hash=7d9f8c6b5"
        );
        assert_eq!(
            substituted("expect pods app=rng,pod-template-hash=$hash count 3"),
            "expect pods app=rng,pod-template-hash=7d9f8c6b5 count 3"
        );
        assert_eq!(
            substituted("label pods peer in ($victim, $web),n!=$n copies=$n"),
            "label pods peer in (rng-7d9f8-x2v4q,web),n!=3 copies=3"
        );
        assert_eq!(substituted("select svc/rng app=rng,hash=\"$hash\""), "select svc/rng app=rng,hash=7d9f8c6b5");
        assert_eq!(
            substituted("expect-refused template deploy/rng pod-template-hash=$hash"),
            "expect-refused template deploy/rng pod-template-hash=7d9f8c6b5"
        );
        assert_eq!(substituted("run x labels app=rng h=$hash"), "run x labels app=rng h=7d9f8c6b5");
        assert_eq!(substituted("let h = label h of rs h=$hash"), "let h = label h of rs h=7d9f8c6b5");
    }

    #[test]
    fn a_step_without_variables_is_borrowed() {
        let plain = step("expect pods app=rng count $n");
        assert!(matches!(substitute(&plain, &variables()).unwrap(), Cow::Borrowed(_)));
        let yaml = step("apply <<YAML\n      kind: ConfigMap\n      data: {cmd: \"echo ${HOME}\"}\n    YAML");
        assert!(matches!(substitute(&yaml, &variables()).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn inline_yaml_takes_values_and_keeps_escaped_markers() {
        let step = step(
            "apply <<YAML\n      metadata:\n        labels: {pod-template-hash: \"${{ hash }}\", n: \"${{n}}\"}\n      \
             data:\n        owner: ${{ victim }}\n        ci: echo $${{ github.sha }} ${HOME}\n    YAML",
        );
        let substituted = substitute(&step, &variables()).unwrap();
        let StepKind::Apply(ApplySource::Inline(yaml)) = &substituted.kind else { panic!() };
        assert_eq!(
            yaml.text,
            "metadata:\n  labels: {pod-template-hash: \"7d9f8c6b5\", n: \"3\"}\ndata:\n  owner: rng-7d9f8-x2v4q\n  \
             ci: echo ${{ github.sha }} ${HOME}\n"
        );
    }

    #[test]
    fn a_value_that_is_no_label_value_fails_the_step() {
        let step = step("label pod/debug note=$spaced");
        let Err(StepError::Failed(message)) = substitute(&step, &variables()) else { panic!("should fail") };
        assert!(message.starts_with("`$spaced` holds \"a b\", which is not a valid label value: "), "{message}");
        assert!(message.contains("contains ` `"), "{message}");
        let long = HashMap::from([("hash".to_string(), Value::Text("x".repeat(64)))]);
        let Err(StepError::Failed(message)) = substitute(&step_with("$hash"), &long) else { panic!("should fail") };
        assert!(message.contains("64 characters"), "{message}");
    }

    fn step_with(value: &str) -> Step {
        step(&format!("expect pods app={value} count 1"))
    }

    #[test]
    fn undefined_variables_and_malformed_markers_fail_the_step() {
        let Err(StepError::Failed(message)) = substitute(&step_with("$nope"), &variables()) else { panic!() };
        assert_eq!(message, "`$nope` is not defined when this step runs");
        let yaml = step("apply <<YAML\n      data: {x: \"${{ a.b }}\"}\n    YAML");
        let Err(StepError::Failed(message)) = substitute(&yaml, &variables()) else { panic!() };
        assert!(message.starts_with("`${{ a.b }}` in the inline YAML does not name a variable"), "{message}");
    }
}
