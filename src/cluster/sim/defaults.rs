//! The API server's defaulting (upstream's SetDefaults_Deployment and SetDefaults_DaemonSet) for
//! the fields its validation and later changes depend on: a Deployment's `spec.strategy` and a
//! DaemonSet's `spec.updateStrategy`. It runs on every create and update, before validation, as
//! the API server's does, so the stored object holds them: a Deployment switched to Recreate
//! without clearing the `rollingUpdate` it was given by default is refused, as on a real cluster.

use serde_json::{Value, json};

use super::resources::{self, Resource};

/// Where a kind keeps how it rolls, and the API's defaults for a rolling update:
/// `(field, maxUnavailable, maxSurge)`.
pub fn rollout(resource: Resource) -> Option<(&'static str, Value, Value)> {
    if resource == resources::DEPLOYMENT {
        Some(("strategy", json!("25%"), json!("25%")))
    } else if resource == resources::DAEMON_SET {
        Some(("updateStrategy", json!(1), json!(0)))
    } else {
        None
    }
}

/// Fills in the defaults of `object`, about to be stored as `resource`.
pub fn apply(resource: Resource, object: &mut Value) {
    let Some((field, unavailable, surge)) = rollout(resource) else { return };
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let strategy = spec.entry(field).or_insert(Value::Null);
    if strategy.is_null() {
        *strategy = json!({});
    }
    let Some(strategy) = strategy.as_object_mut() else { return };
    if strategy.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
        strategy.insert("type".into(), "RollingUpdate".into());
    }
    let rolls = strategy["type"] == "RollingUpdate";
    match strategy.get_mut("rollingUpdate") {
        None | Some(Value::Null) if !rolls => {
            strategy.remove("rollingUpdate");
        }
        None | Some(Value::Null) => {
            strategy.insert("rollingUpdate".into(), json!({"maxUnavailable": unavailable, "maxSurge": surge}));
        }
        Some(Value::Object(settings)) => {
            // A strategy that does not roll still passes through the API's internal form, whose
            // missing counts come back as 0.
            let (unavailable, surge) = if rolls { (unavailable, surge) } else { (json!(0), json!(0)) };
            for (key, default) in [("maxUnavailable", unavailable), ("maxSurge", surge)] {
                if settings.get(key).is_none_or(Value::is_null) {
                    settings.insert(key.into(), default);
                }
            }
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(resource: Resource, spec: Value) -> Value {
        let mut object = json!({"metadata": {"name": "x"}, "spec": spec});
        apply(resource, &mut object);
        object["spec"].clone()
    }

    /// What kube-apiserver v1.37 stores for the same specs (`kubectl apply --dry-run=server`).
    #[test]
    fn rollout_settings_are_defaulted_as_the_api_server_stores_them() {
        use resources::{DAEMON_SET, DEPLOYMENT};
        assert_eq!(
            defaulted(DEPLOYMENT, json!({}))["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(
            defaulted(DEPLOYMENT, json!({"strategy": null})),
            defaulted(DEPLOYMENT, json!({})),
            "null is absent"
        );
        assert_eq!(
            defaulted(DEPLOYMENT, json!({"strategy": {"rollingUpdate": {"maxSurge": 0}}}))["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}})
        );
        assert_eq!(
            defaulted(DEPLOYMENT, json!({"strategy": {"type": "Recreate", "rollingUpdate": null}}))["strategy"],
            json!({"type": "Recreate"})
        );
        assert_eq!(
            defaulted(DAEMON_SET, json!({}))["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
        );
        assert_eq!(
            defaulted(DAEMON_SET, json!({"updateStrategy": {"type": "", "rollingUpdate": {"maxSurge": "50%"}}}))["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 1}})
        );
        assert_eq!(
            defaulted(DAEMON_SET, json!({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"maxSurge": 1}}}))["updateStrategy"],
            json!({"type": "OnDelete", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
        );
        assert_eq!(defaulted(resources::REPLICA_SET, json!({})), json!({}), "only the two kinds");
    }
}
