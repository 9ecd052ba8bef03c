//! The API server's defaulting (upstream's SetDefaults_Deployment, SetDefaults_DaemonSet,
//! SetDefaults_StatefulSet, SetDefaults_Pod, SetDefaults_Service and
//! SetDefaults_HorizontalPodAutoscaler) for the fields its validation and later changes depend
//! on: a Deployment's `spec.strategy`, a DaemonSet's or StatefulSet's
//! `spec.updateStrategy` (and a StatefulSet's `podManagementPolicy`), an autoscaler's bounds,
//! metrics and behavior, a Pod's grace
//! period, container requests and, on the host's network, its host ports, a Service's session
//! affinity settings. It runs on every create and update, before validation, as the API server's
//! does, so the stored object holds them: a Deployment switched to Recreate without clearing the
//! `rollingUpdate` it was given by default is refused, as on a real cluster.

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
    if resource == resources::SECRET {
        secret_defaults(object);
        return;
    }
    if resource == resources::ROLE_BINDING {
        role_binding_defaults(object);
        return;
    }
    volume_sources(resource, object);
    if resource == resources::SERVICE {
        service_defaults(object);
    }
    if resource == resources::STATEFUL_SET {
        stateful_set_defaults(object);
        return;
    }
    if resource == resources::HORIZONTAL_POD_AUTOSCALER {
        autoscaler_defaults(object);
        return;
    }
    if resource == resources::POD {
        grace_period(object);
        requests_from_limits(object);
        host_network_ports(object);
    }
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

/// SetDefaults_StatefulSet for how it manages and rolls its pods: OrderedReady; a RollingUpdate
/// (the default type) with partition 0 and maxUnavailable 1.
fn stateful_set_defaults(object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { return };
    if spec.get("podManagementPolicy").and_then(Value::as_str).is_none_or(str::is_empty) {
        spec.insert("podManagementPolicy".into(), "OrderedReady".into());
    }
    let strategy = spec.entry("updateStrategy").or_insert(Value::Null);
    if strategy.is_null() {
        *strategy = json!({});
    }
    let Some(strategy) = strategy.as_object_mut() else { return };
    if strategy.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
        strategy.insert("type".into(), "RollingUpdate".into());
        if strategy.get("rollingUpdate").is_none_or(Value::is_null) {
            strategy.insert("rollingUpdate".into(), json!({}));
        }
    }
    if strategy["type"] != "RollingUpdate" {
        return;
    }
    if let Some(rolling) = strategy.get_mut("rollingUpdate").and_then(Value::as_object_mut) {
        for (key, default) in [("partition", 0), ("maxUnavailable", 1)] {
            if rolling.get(key).is_none_or(Value::is_null) {
                rolling.insert(key.into(), default.into());
            }
        }
    }
}

/// SetDefaults_HorizontalPodAutoscaler (autoscaling/v2): minReplicas 1; no metrics means CPU at
/// 80% utilisation; a `behavior` given gets every rule it leaves out (scale up: no stabilisation,
/// the larger of 4 pods or 100% per 15 s; scale down: 100% per 15 s, its stabilisation window
/// left to the controller manager's flag).
fn autoscaler_defaults(object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { return };
    if spec.get("minReplicas").is_none_or(Value::is_null) {
        spec.insert("minReplicas".into(), 1.into());
    }
    if spec.get("metrics").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        let cpu = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}});
        spec.insert("metrics".into(), json!([cpu]));
    }
    let Some(behavior) = spec.get_mut("behavior").and_then(Value::as_object_mut) else { return };
    let scale_up = json!({
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}],
    });
    let scale_down =
        json!({"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]});
    for (direction, mut defaults) in [("scaleUp", scale_up), ("scaleDown", scale_down)] {
        if let Some(Value::Object(given)) = behavior.get(direction) {
            for (key, value) in given {
                if !value.is_null() {
                    defaults[key] = value.clone();
                }
            }
        }
        behavior.insert(direction.into(), defaults);
    }
}

/// SetDefaults_Pod: a negative grace period is 1 s (on a Pod only: a template keeps its own, its
/// pods get this).
fn grace_period(pod: &mut Value) {
    let grace = pod.get_mut("spec").and_then(|spec| spec.get_mut("terminationGracePeriodSeconds"));
    if let Some(grace) = grace.filter(|g| g.as_i64().is_some_and(|g| g < 0)) {
        *grace = 1.into();
    }
}

/// SetDefaults_Pod: a container's limit without a request is its request too (on a Pod only, not
/// on a template, so a controller's pods get it when they are created).
fn requests_from_limits(pod: &mut Value) {
    for field in ["containers", "initContainers"] {
        let Some(containers) = containers_mut(pod, field) else { continue };
        for container in containers {
            let Some(limits) = container["resources"]["limits"].as_object().cloned() else { continue };
            let resources = &mut container["resources"];
            if !resources["requests"].is_object() {
                resources["requests"] = json!({});
            }
            let requests = resources["requests"].as_object_mut().expect("an object");
            for (name, limit) in limits {
                requests.entry(name).or_insert(limit);
            }
        }
    }
}

/// The pod's `containers` or `initContainers`, if it has them (looked up, not indexed: indexing
/// a missing member mutably would store it as null).
fn containers_mut<'a>(pod: &'a mut Value, field: &str) -> Option<&'a mut Vec<Value>> {
    pod.get_mut("spec")?.get_mut(field)?.as_array_mut()
}

/// SetDefaults_Pod: on the host's network a container port is a host port, the same number
/// unless one is given (on a Pod only: a template keeps 0, its pods get the port).
fn host_network_ports(pod: &mut Value) {
    if pod["spec"]["hostNetwork"] != true {
        return;
    }
    for field in ["containers", "initContainers"] {
        let Some(containers) = containers_mut(pod, field) else { continue };
        let ports = containers.iter_mut().filter_map(|c| c.get_mut("ports").and_then(Value::as_array_mut));
        for port in ports.flatten() {
            if port["hostPort"].as_i64().unwrap_or(0) == 0 && port["containerPort"].is_number() {
                port["hostPort"] = port["containerPort"].clone();
            }
        }
    }
}

/// SetDefaults_Service, as far as validation reads it: an empty `type` or `sessionAffinity` is
/// the default (left unset here: ClusterIP, None), and a Service without session affinity keeps
/// no sessionAffinityConfig.
fn service_defaults(service: &mut Value) {
    let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) else { return };
    for field in ["type", "sessionAffinity"] {
        if spec.get(field).and_then(Value::as_str) == Some("") {
            spec.remove(field);
        }
    }
    if spec.get("sessionAffinity").and_then(Value::as_str).is_none_or(|affinity| affinity == "None") {
        spec.remove("sessionAffinityConfig");
    }
}

/// Upstream's dropTypeDependentFields for the fields only some Service types may set (node ports
/// and cluster IPs have their own, in node_ports.rs and cluster_ips.rs): a Service switched away
/// from LoadBalancer, or to a type not reachable from outside, lets go of those it held, unless
/// the change sets them anew (which validation then refuses). Runs on updates, before validation.
pub fn drop_type_dependent(resource: Resource, current: &Value, object: &mut Value) {
    if resource != resources::SERVICE {
        return;
    }
    let kind = |service: &Value| service["spec"]["type"].as_str().unwrap_or("ClusterIP").to_string();
    let externally_accessible = |service: &Value| match kind(service).as_str() {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => service["spec"]["externalIPs"].as_array().is_some_and(|ips| !ips.is_empty()),
        _ => false,
    };
    let (old, new) = (kind(current), kind(object));
    let mut dropped: Vec<&str> = Vec::new();
    if old == "LoadBalancer" && new != "LoadBalancer" {
        dropped.extend(["allocateLoadBalancerNodePorts", "loadBalancerClass"]);
        if current["spec"]["externalTrafficPolicy"] == "Local" {
            dropped.push("healthCheckNodePort");
        }
    }
    if externally_accessible(current) && !externally_accessible(object) {
        dropped.push("externalTrafficPolicy");
    }
    let unchanged: Vec<&str> =
        dropped.into_iter().filter(|field| object["spec"][*field] == current["spec"][*field]).collect();
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        for field in unchanged {
            spec.remove(field);
        }
    }
}

/// A pod volume that names no source is an emptyDir (SetDefaults_Volume), in a Pod and in any
/// controller's template alike.
fn volume_sources(resource: Resource, object: &mut Value) {
    let Some((_, path)) = super::schema::pod_spec(resource, object) else { return };
    let spec = path.split('.').try_fold(object, |value, field| value.get_mut(field));
    let Some(volumes) = spec.and_then(|spec| spec.get_mut("volumes")).and_then(Value::as_array_mut) else { return };
    for volume in volumes.iter_mut().filter_map(Value::as_object_mut) {
        if volume.keys().all(|key| key == "name") {
            volume.insert("emptyDir".into(), json!({}));
        }
    }
}

/// A Secret's type is `Opaque` unless it says otherwise; its `stringData` is a convenience for
/// writing: the API server encodes each value into `data` (over a key `data` also has) and stores
/// no `stringData`.
fn secret_defaults(object: &mut Value) {
    let Some(object) = object.as_object_mut() else { return };
    if object.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
        object.insert("type".into(), "Opaque".into());
    }
    let Some(Value::Object(strings)) = object.remove("stringData") else { return };
    let data = object.entry("data").or_insert(Value::Null);
    if !data.is_object() {
        *data = json!({});
    }
    let Some(data) = data.as_object_mut() else { return };
    for (key, value) in strings {
        let bytes = k8s_openapi::ByteString(value.as_str().unwrap_or_default().as_bytes().to_vec());
        data.insert(key, serde_json::to_value(bytes).unwrap_or_default());
    }
}

/// The defaults the API server gives a RoleBinding before validating it.
fn role_binding_defaults(object: &mut Value) {
    if let Some(role_ref) = object.get_mut("roleRef").and_then(Value::as_object_mut)
        && role_ref.get("apiGroup").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        role_ref.insert("apiGroup".into(), resources::ROLE_BINDING.group.into());
    }
    for subject in object.get_mut("subjects").and_then(Value::as_array_mut).into_iter().flatten() {
        let Some(subject) = subject.as_object_mut() else { continue };
        let unset = subject.get("apiGroup").and_then(Value::as_str).is_none_or(str::is_empty);
        let of_rbac = matches!(subject.get("kind").and_then(Value::as_str), Some("User" | "Group"));
        if unset && of_rbac {
            subject.insert("apiGroup".into(), resources::ROLE_BINDING.group.into());
        }
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

    #[test]
    fn a_pods_limits_are_its_requests_where_it_sets_none() {
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "setup", "resources": {"limits": {"cpu": "1"}}}],
            "containers": [
                {"name": "web", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "log"},
            ],
        }});
        apply(resources::POD, &mut pod);
        assert_eq!(pod["spec"]["initContainers"][0]["resources"]["requests"], json!({"cpu": "1"}));
        assert_eq!(pod["spec"]["containers"][0]["resources"]["requests"], json!({"cpu": "100m", "memory": "1Gi"}));
        assert_eq!(pod["spec"]["containers"][1], json!({"name": "log"}));
        assert!(pod["spec"].get("terminationGracePeriodSeconds").is_none(), "left to the API's own default");
        let mut plain = json!({"spec": {"containers": [{"name": "web"}]}});
        apply(resources::POD, &mut plain);
        assert_eq!(plain, json!({"spec": {"containers": [{"name": "web"}]}}), "no init containers made up as null");
        let mut negative = json!({"spec": {"terminationGracePeriodSeconds": -5, "containers": []}});
        apply(resources::POD, &mut negative);
        assert_eq!(negative["spec"]["terminationGracePeriodSeconds"], 1, "a negative grace period is 1 s");
        let mut deployment = json!({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": -5, "containers": [{"name": "web", "resources": {"limits": {"cpu": "1"}}}]}}}});
        apply(resources::DEPLOYMENT, &mut deployment);
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "1"}}),
            "not a template's"
        );
        assert_eq!(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], -5, "nor its grace period");
    }

    #[test]
    fn on_the_hosts_network_a_pods_container_ports_are_host_ports() {
        let spec = json!({"hostNetwork": true,
            "initContainers": [{"name": "setup", "ports": [{"containerPort": 9000}]}],
            "containers": [{"name": "web", "ports": [
                {"containerPort": 8080},
                {"containerPort": 8443, "hostPort": 0},
                {"containerPort": 9090, "hostPort": 9091},
            ]}],
        });
        let mut pod = json!({"spec": spec.clone()});
        apply(resources::POD, &mut pod);
        assert_eq!(pod["spec"]["initContainers"][0]["ports"][0]["hostPort"], 9000);
        assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 1);
        let mut portless = json!({"spec": {"hostNetwork": true, "containers": [{"name": "web"}]}});
        apply(resources::POD, &mut portless);
        assert_eq!(portless["spec"], json!({"hostNetwork": true, "containers": [{"name": "web"}]}), "no ports made up");
        let host_ports: Vec<&Value> =
            pod["spec"]["containers"][0]["ports"].as_array().unwrap().iter().map(|p| &p["hostPort"]).collect();
        assert_eq!(host_ports, [8080, 8443, 9091], "a port given is kept (validation refuses it)");
        let mut elsewhere = json!({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 8080}]}]}});
        apply(resources::POD, &mut elsewhere);
        assert_eq!(elsewhere["spec"]["containers"][0]["ports"][0], json!({"containerPort": 8080}));
        let mut deployment = json!({"spec": {"template": {"spec": spec}}});
        apply(resources::DEPLOYMENT, &mut deployment);
        assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0], json!({"containerPort": 8080}));
    }

    #[test]
    fn a_service_defaults_empty_fields_and_a_type_switch_drops_what_the_old_type_allowed() {
        let config = json!({"clientIP": {"timeoutSeconds": 60}});
        let spec =
            defaulted(resources::SERVICE, json!({"type": "", "sessionAffinity": "", "sessionAffinityConfig": config}));
        assert_eq!(spec, json!({}), "empty is the default, and None keeps no config");
        let sticky = json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": config});
        assert_eq!(defaulted(resources::SERVICE, sticky.clone()), sticky);

        let balancer = json!({"metadata": {"name": "x"}, "spec": {
            "type": "LoadBalancer", "loadBalancerClass": "example.com/lb", "allocateLoadBalancerNodePorts": false,
            "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000, "selector": {"app": "x"}}});
        let mut switched = balancer.clone();
        switched["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent(resources::SERVICE, &balancer, &mut switched);
        assert_eq!(switched["spec"], json!({"type": "ClusterIP", "selector": {"app": "x"}}));
        let mut renamed = balancer.clone();
        renamed["spec"]["type"] = json!("NodePort");
        renamed["spec"]["loadBalancerClass"] = json!("example.com/other");
        drop_type_dependent(resources::SERVICE, &balancer, &mut renamed);
        assert_eq!(renamed["spec"]["loadBalancerClass"], "example.com/other", "a change is validation's to refuse");
        assert_eq!(renamed["spec"]["externalTrafficPolicy"], "Local", "a NodePort Service is reachable from outside");
    }
}
