//! Where a Service's traffic goes, by kube-proxy's rules, read from its EndpointSlices.
//!
//! kube-proxy merges the endpoints of every slice labelled with the Service's name and sends
//! traffic to the ready ones, terminating or not (a Service that publishes not-ready addresses
//! has its terminating pods listed ready). Only when there is no ready endpoint does it fall back
//! to the ones that are terminating but still serving (KEP-1669, on by default since Kubernetes
//! 1.26). An unset `ready` or `serving` counts as true, an unset `terminating` as false, as
//! kube-proxy reads them (pkg/proxy/endpointslicecache.go; the EndpointSlice controller always
//! sets all three). The pods behind those endpoints receive the traffic, whatever state the pods
//! themselves are in by now: a stale slice still routes to a deleted pod.

use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice, and the EndpointSlice controller's value of it.
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const ENDPOINT_SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// One endpoint kube-proxy sends traffic to: the pod behind it, as the slice names it, or only
/// its address when it names no pod (a slice made by hand for a Service without a selector,
/// often for a backend outside the cluster).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Backend {
    /// The pod's name; the endpoint's (first) address when it names no pod.
    pub pod_name: String,
    pub pod_uid: Option<String>,
    /// Whether the endpoint names a pod (its `targetRef` is one): only then is there a pod to
    /// wait for and judge.
    pub names_pod: bool,
    /// Routed only because no endpoint was ready: the pod is terminating but still serving.
    pub terminating: bool,
}

impl Backend {
    /// How results name the endpoint when its pod is not in the view: `pod/NAME`, or
    /// `address 192.0.2.10` when it names no pod (a backend outside the cluster, say).
    pub fn named(&self) -> String {
        if self.names_pod { format!("pod/{}", self.pod_name) } else { format!("address {}", self.pod_name) }
    }
}

/// Whether a slice belongs to the Service `service`.
pub fn belongs_to(slice: &EndpointSlice, service: &str) -> bool {
    slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).map(String::as_str) == Some(service)
}

/// Whether the EndpointSlice controller manages a slice (others are made by hand, or by
/// another controller).
pub fn managed_by_controller(slice: &EndpointSlice) -> bool {
    slice.metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY)).map(String::as_str)
        == Some(ENDPOINT_SLICE_CONTROLLER)
}

/// The endpoints kube-proxy routes a Service's traffic to, given all of the Service's slices;
/// one per pod, sorted by pod name.
pub fn routed<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Vec<Backend> {
    let mut ready = Vec::new();
    let mut serving_terminating = Vec::new();
    // kube-proxy of an IPv4 cluster (kind's default, the testbed's) reads IPv4 slices only: an
    // IPv6 or FQDN slice routes nothing.
    let ipv4 = slices.into_iter().filter(|s| s.address_type == "IPv4");
    for endpoint in ipv4.flat_map(|s| s.endpoints.iter()) {
        let conditions = endpoint.conditions.clone().unwrap_or_default();
        let is_ready = conditions.ready.unwrap_or(true);
        let is_serving = conditions.serving.unwrap_or(true);
        let is_terminating = conditions.terminating.unwrap_or(false);
        // kube-proxy reads the first address only; a reference to another kind than a pod (or
        // none at all) leaves the address as all there is to say.
        let target = endpoint.target_ref.as_ref().filter(|t| t.kind.as_deref().is_none_or(|k| k == "Pod"));
        let Some(address) = endpoint.addresses.first() else { continue };
        let backend = match target.filter(|t| t.name.is_some() || t.uid.is_some()) {
            // A pod named by uid alone is found by its uid; its name is unknown until then.
            Some(pod) => Backend {
                pod_name: pod.name.clone().unwrap_or_else(|| address.clone()),
                pod_uid: pod.uid.clone(),
                names_pod: true,
                terminating: false,
            },
            None => Backend { pod_name: address.clone(), pod_uid: None, names_pod: false, terminating: false },
        };
        if is_ready {
            ready.push(backend);
        } else if is_serving && is_terminating {
            serving_terminating.push(Backend { terminating: true, ..backend });
        }
    }
    let mut backends = if ready.is_empty() { serving_terminating } else { ready };
    // A pod is one backend even when several slices (one per port set, or mid-rotation) list it.
    backends.sort();
    backends.dedup_by(|a, b| a.pod_name == b.pod_name && a.pod_uid == b.pod_uid && a.names_pod == b.names_pod);
    backends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-abc", "labels": {SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4",
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    fn endpoint(pod: &str, ready: Option<bool>, serving: Option<bool>, terminating: Option<bool>) -> serde_json::Value {
        serde_json::json!({
            "addresses": ["10.0.0.1"],
            "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
            "targetRef": {"kind": "Pod", "name": pod, "uid": format!("uid-{pod}")},
        })
    }

    fn names(backends: &[Backend]) -> Vec<(&str, bool)> {
        backends.iter().map(|b| (b.pod_name.as_str(), b.terminating)).collect()
    }

    #[test]
    fn ready_endpoints_win_over_terminating_ones() {
        let slices = [slice(serde_json::json!([
            endpoint("a", Some(true), Some(true), Some(false)),
            endpoint("b", Some(false), Some(true), Some(true)),
            endpoint("c", Some(false), Some(false), Some(false)),
        ]))];
        assert_eq!(names(&routed(&slices)), [("a", false)]);
    }

    #[test]
    fn serving_terminating_endpoints_take_traffic_only_when_nothing_is_ready() {
        let slices = [slice(serde_json::json!([
            endpoint("b", Some(false), Some(true), Some(true)),
            endpoint("c", Some(false), Some(false), Some(true)),
            endpoint("d", Some(false), Some(false), Some(false)),
        ]))];
        assert_eq!(names(&routed(&slices)), [("b", true)]);
    }

    #[test]
    fn unset_conditions_read_as_kube_proxy_reads_them() {
        let slices =
            [slice(serde_json::json!(
                [endpoint("a", None, None, None), endpoint("b", Some(false), None, Some(true)),]
            ))];
        assert_eq!(names(&routed(&slices)), [("a", false)]);
        let only_terminating = [slice(serde_json::json!([endpoint("b", Some(false), None, Some(true))]))];
        assert_eq!(names(&routed(&only_terminating)), [("b", true)], "an unset serving counts as serving");
    }

    #[test]
    fn a_ready_endpoint_takes_traffic_even_while_terminating() {
        // A Service that publishes not-ready addresses: its terminating pods are listed ready.
        let slices = [slice(serde_json::json!([
            endpoint("a", Some(true), Some(true), Some(false)),
            endpoint("b", Some(true), Some(true), Some(true)),
        ]))];
        assert_eq!(names(&routed(&slices)), [("a", false), ("b", false)]);
    }

    #[test]
    fn a_pod_listed_by_two_slices_is_one_backend() {
        let slices = [
            slice(serde_json::json!([endpoint("a", Some(true), Some(true), Some(false))])),
            slice(serde_json::json!([
                endpoint("a", Some(true), Some(true), Some(false)),
                endpoint("b", Some(true), Some(true), Some(false)),
            ])),
        ];
        assert_eq!(names(&routed(&slices)), [("a", false), ("b", false)]);
    }

    #[test]
    fn an_endpoint_that_names_no_pod_is_its_first_address() {
        let slices = [slice(serde_json::json!([
            {"addresses": ["192.0.2.10", "192.0.2.11"], "conditions": {"ready": true}},
            {"addresses": ["192.0.2.12"], "targetRef": {"kind": "Node", "name": "worker"}},
            endpoint("a", Some(true), Some(true), Some(false)),
        ]))];
        let routed = routed(&slices);
        assert_eq!(names(&routed), [("192.0.2.10", false), ("192.0.2.12", false), ("a", false)]);
        assert_eq!(routed.iter().map(|b| b.names_pod).collect::<Vec<_>>(), [false, false, true]);
    }

    #[test]
    fn only_ipv4_slices_route_on_an_ipv4_cluster() {
        let mut fqdn = slice(serde_json::json!([{"addresses": ["db.example.com"]}]));
        fqdn.address_type = "FQDN".into();
        let mut ipv6 = slice(serde_json::json!([{"addresses": ["fd00::1"]}]));
        ipv6.address_type = "IPv6".into();
        let ipv4 = slice(serde_json::json!([endpoint("a", Some(true), Some(true), Some(false))]));
        assert_eq!(names(&routed(&[fqdn, ipv6, ipv4])), [("a", false)]);
    }

    #[test]
    fn no_endpoints_route_nowhere() {
        assert!(routed(&[slice(serde_json::json!([]))]).is_empty());
        assert!(routed(&[]).is_empty());
    }
}
