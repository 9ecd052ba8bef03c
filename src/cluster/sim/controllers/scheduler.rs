//! The scheduler: binds each pod that has no node (and is not being deleted) to the node that
//! passes upstream's filters, in upstream's order (NodeUnschedulable, TaintToleration,
//! NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread's hard constraints,
//! InterPodAffinity's required terms), after the pre-filter that rejects a pod whose claim does
//! not exist (`claims::missing`), with the fewest
//! pods, ties by name; a pod no node takes stays Pending with PodScheduled False, Unschedulable,
//! and the scheduler's message.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::super::claims;
use super::super::facts::Facts;
use super::super::quantity::Quantity;
use super::super::resources::{NODE, POD};
use super::super::store::Store;
use super::demand::{self, HostPort, Resources};
use super::nodes::{matches_affinity, untolerated_taint};
use super::{is_deleting, is_terminal, name, selects, write};

/// Whether the pod waits for this scheduler: no node yet, not being deleted (read from its facts,
/// so the pods on a node cost no JSON lookup), and this scheduler named.
fn waits(pod: &Value, facts: &Facts) -> bool {
    facts.node_name.is_empty()
        && !facts.deleting
        && pod["spec"]["schedulerName"].as_str().unwrap_or("default-scheduler") == "default-scheduler"
}

pub fn run(store: &mut Store, namespaces: &[String]) {
    // Most rounds have no pod to place: only then is every node's load worth counting.
    if !namespaces.iter().any(|ns| store.list_with_facts(POD, ns).any(|(pod, facts)| waits(pod, facts))) {
        return;
    }
    let nodes: Vec<Value> = store.list(NODE, None).cloned().collect();
    let mut loads: BTreeMap<String, Load> = nodes.iter().map(|n| (name(n).to_string(), Load::on(n))).collect();
    let mut waiting = Vec::new();
    let mut placed = Placements::default();
    for namespace in store.namespaces().iter() {
        for (pod, facts) in store.list_with_facts(POD, namespace) {
            match pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                // Pods that have ended no longer hold their node (the scheduler does not watch them).
                Some(node) if !is_terminal(pod) => {
                    if let Some(load) = loads.get_mut(node) {
                        load.add(&pod["spec"]);
                    }
                    placed.push(Placed::new(namespace, pod, node));
                }
                Some(_) => {}
                None if waits(pod, facts) && namespaces.contains(namespace) => {
                    waiting.push((namespace.clone(), pod.clone()))
                }
                None => {}
            }
        }
    }
    for (namespace, mut pod) in waiting {
        if pod["spec"]["schedulingGates"].as_array().is_some_and(|g| !g.is_empty()) {
            set_scheduled(store, &namespace, pod, "False", Some(GATED));
            continue;
        }
        // The pre-filters: a claim the namespace lacks rejects the pod before any node is weighed
        // (no node at all is said first, as upstream checks that before them).
        if let Some(message) =
            claims::missing(store, &namespace, &pod["spec"], nodes.len()).filter(|_| !nodes.is_empty())
        {
            set_scheduled(store, &namespace, pod, "False", Some(("Unschedulable", &message)));
            continue;
        }
        let wants = Wants::of(&pod["spec"]);
        let only = named_nodes(&pod["spec"]);
        let spread = Spread::of(&namespace, &pod, &nodes, &placed.all);
        let mut refusals = Vec::new();
        let mut best: Option<(i64, &Value)> = None;
        for node in &nodes {
            let load = &loads[name(node)];
            // Nodes the pre-filter left out are never weighed (a daemon pod's other nodes).
            let left_out = only.as_ref().is_some_and(|only| !only.contains(name(node)));
            let refusal = left_out
                .then(|| Refusal::unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]"))
                .or_else(|| filter(&pod["spec"], &wants, node, load))
                .or_else(|| spread.refusal(node))
                .or_else(|| inter_pod_affinity(&namespace, &pod, node, &nodes, &placed));
            match refusal {
                Some(refusal) => refusals.push(refusal),
                None => {
                    if best.is_none_or(|(fewest, _)| load.pods < fewest) {
                        best = Some((load.pods, node));
                    }
                }
            }
        }
        match best {
            Some((_, node)) => {
                loads.get_mut(name(node)).expect("a known node").add(&pod["spec"]);
                pod["spec"]["nodeName"] = name(node).into();
                placed.push(Placed::new(&namespace, &pod, name(node)));
                set_scheduled(store, &namespace, pod, "True", None);
            }
            None => {
                let message = unschedulable_message(nodes.len(), &refusals);
                set_scheduled(store, &namespace, pod, "False", Some(("Unschedulable", &message)));
            }
        }
    }
}

/// NodeAffinity's pre-filter: when every required node selector term names nodes by
/// `metadata.name In [...]` (as a DaemonSet's pods do), only those nodes are weighed at all. None
/// when any term leaves every node eligible, or the terms name no node in common with one
/// another (then the filter refuses each node on its own).
fn named_nodes(spec: &Value) -> Option<BTreeSet<String>> {
    let terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        .as_array()
        .filter(|terms| !terms.is_empty())?;
    let mut names = BTreeSet::new();
    for term in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        let by_name = term["matchFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["key"] == "metadata.name" && r["operator"] == "In");
        for requirement in by_name {
            let values: BTreeSet<String> = requirement["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
            // Requirements of one term are ANDed.
            term_names = Some(match term_names {
                None => values,
                Some(earlier) => earlier.intersection(&values).cloned().collect(),
            });
        }
        // Terms are ORed: one without names leaves every node eligible.
        names.extend(term_names?);
    }
    (!names.is_empty()).then_some(names)
}

/// A node's room, read once per round: what it allocates (pods apart), and what the pods bound
/// to it hold: their number, their requests, their host ports.
#[derive(Default)]
struct Load {
    allocatable: Resources,
    allowed_pods: i64,
    pods: i64,
    requested: Resources,
    ports: Vec<HostPort>,
}

impl Load {
    fn on(node: &Value) -> Load {
        let allocatable = &node["status"]["allocatable"];
        let allowed_pods = allocatable
            .get("pods")
            .and_then(Quantity::from_json)
            .map_or(110, |pods| i64::try_from(pods.units()).unwrap_or(i64::MAX));
        Load { allocatable: demand::amounts(allocatable), allowed_pods, ..Load::default() }
    }

    fn add(&mut self, spec: &Value) {
        self.pods += 1;
        for (resource, amount) in demand::requests(spec) {
            let sum = self.requested.entry(resource).or_default();
            *sum = sum.saturating_add(amount);
        }
        self.ports.extend(demand::host_ports(spec));
    }
}

/// What the pod being placed asks for, worked out once for every node.
struct Wants {
    requests: Resources,
    ports: Vec<HostPort>,
}

impl Wants {
    fn of(spec: &Value) -> Wants {
        Wants { requests: demand::requests(spec), ports: demand::host_ports(spec) }
    }
}

/// Why a node cannot take the pod, in the scheduler's words (one filter can give several
/// reasons), and whether evicting pods could change that: upstream's Unschedulable, against
/// UnschedulableAndUnresolvable (taints, node affinity, an unschedulable node, a request larger
/// than the whole node).
struct Refusal {
    reasons: Vec<String>,
    preemption_might_help: bool,
}

impl Refusal {
    fn unresolvable(reason: &str) -> Refusal {
        Refusal { reasons: vec![reason.to_string()], preemption_might_help: false }
    }

    fn resolvable(reason: &str) -> Refusal {
        Refusal { reasons: vec![reason.to_string()], preemption_might_help: true }
    }
}

/// The first filter the node fails; None when it passes them all.
fn filter(spec: &Value, wants: &Wants, node: &Value, load: &Load) -> Option<Refusal> {
    let unschedulable_tolerated = spec["tolerations"].as_array().is_some_and(|tolerations| {
        tolerations.iter().any(|t| {
            let key_ok = t["key"].as_str().is_none_or(|k| k.is_empty() || k == "node.kubernetes.io/unschedulable");
            let effect_ok = t["effect"].as_str().is_none_or(|e| e.is_empty() || e == "NoSchedule");
            let exists = t["operator"] == "Exists" || t["key"].as_str().is_some_and(|k| !k.is_empty());
            key_ok && effect_ok && exists
        })
    });
    if node["spec"]["unschedulable"].as_bool() == Some(true) && !unschedulable_tolerated {
        return Some(Refusal::unresolvable("node(s) were unschedulable"));
    }
    // Today's scheduler no longer names the taint (older ones said `untolerated taint {key: value}`).
    if untolerated_taint(spec, node, &["NoSchedule", "NoExecute"]).is_some() {
        return Some(Refusal::unresolvable("node(s) had untolerated taint(s)"));
    }
    if !matches_affinity(spec, node) {
        return Some(Refusal::unresolvable("node(s) didn't match Pod's node affinity/selector"));
    }
    if wants.ports.iter().any(|port| load.ports.iter().any(|used| port.conflicts_with(used))) {
        return Some(Refusal::resolvable("node(s) didn't have free ports for the requested pod ports"));
    }
    fits_resources(wants, load)
}

/// NodeResourcesFit: room for one more pod, and for each resource the pod requests, what the
/// node's pods have not yet requested of its allocatable. Every shortfall is a reason.
fn fits_resources(wants: &Wants, load: &Load) -> Option<Refusal> {
    let mut reasons = Vec::new();
    let mut preemption_might_help = true;
    if load.pods + 1 > load.allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    for (resource, wanted) in wants.requests.iter().filter(|(_, wanted)| **wanted > 0) {
        let capacity = load.allocatable.get(resource).copied().unwrap_or(0);
        let used = load.requested.get(resource).copied().unwrap_or(0);
        if *wanted > capacity.saturating_sub(used) {
            reasons.push(format!("Insufficient {resource}"));
            // No eviction makes room for more than the whole node has.
            preemption_might_help &= *wanted <= capacity;
        }
    }
    (!reasons.is_empty()).then_some(Refusal { reasons, preemption_might_help })
}

/// PodTopologySpread's filter, for the pod's `DoNotSchedule` constraints: the node must carry
/// each constraint's topology key, and the pod there must leave its domain no more than
/// `maxSkew` matching pods above the emptiest eligible domain. Eligible are the nodes with every
/// constraint's key that the pod's node affinity allows (`nodeAffinityPolicy: Honor`, the
/// default) whatever their taints (`nodeTaintsPolicy: Ignore`, the default): so a tainted
/// control-plane node, holding none, keeps the minimum at 0. Terminating pods do not count.
///
/// The domains' counts do not depend on the node weighed, so they are counted once per pod
/// ([`Spread::of`]) and each node is only looked up in them ([`Spread::refusal`]): counted for
/// every node, a scale to 1,200 pods with a spread constraint took 6.5 s.
struct Spread {
    constraints: Vec<Counted>,
}

/// One constraint, counted: matching pods per domain of the eligible nodes.
struct Counted {
    topology_key: String,
    per_domain: BTreeMap<String, usize>,
    /// The emptiest eligible domain's count (0 with fewer domains than minDomains).
    minimum: usize,
    max_skew: usize,
    /// 1 when the pod matches its own constraint (it counts where it lands).
    itself: usize,
}

impl Spread {
    fn of(namespace: &str, pod: &Value, nodes: &[Value], placed: &[Placed]) -> Spread {
        let spec = &pod["spec"];
        let constraints: Vec<&Value> = spec["topologySpreadConstraints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["whenUnsatisfiable"] == "DoNotSchedule")
            .collect();
        let key = |c: &Value| c["topologyKey"].as_str().unwrap_or_default().to_string();
        let has_every_key = |n: &Value| constraints.iter().all(|c| n["metadata"]["labels"].get(key(c)).is_some());
        let labels = &pod["metadata"]["labels"];
        let counted = constraints.iter().map(|constraint| {
            let topology_key = key(constraint);
            // matchLabelKeys narrow the selector to the pod's own values (its pod-template-hash).
            let narrowed_to: Vec<(&str, &Value)> = constraint["matchLabelKeys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str())
                .filter_map(|k| labels.get(k).map(|v| (k, v)))
                .collect();
            let selector = &constraint["labelSelector"];
            let matches =
                |other: &Value| selects(selector, other) && narrowed_to.iter().all(|(k, v)| other.get(*k) == Some(*v));
            // An empty selector counts no pod (upstream skips it), though the pod matches it.
            let empty = |field: &str| match &selector[field] {
                Value::Object(map) => map.is_empty(),
                Value::Array(list) => list.is_empty(),
                _ => true,
            };
            let counts_none =
                selector.is_object() && empty("matchLabels") && empty("matchExpressions") && narrowed_to.is_empty();
            let eligible = |n: &&Value| {
                has_every_key(n)
                    && (constraint["nodeAffinityPolicy"] == "Ignore" || matches_affinity(spec, n))
                    && (constraint["nodeTaintsPolicy"] != "Honor"
                        || untolerated_taint(spec, n, &["NoSchedule", "NoExecute"]).is_none())
            };
            let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
            if !counts_none {
                for p in placed.iter().filter(|p| p.namespace == namespace && !p.deleting && matches(&p.labels)) {
                    *per_node.entry(p.node.as_str()).or_default() += 1;
                }
            }
            let mut per_domain: BTreeMap<String, usize> = BTreeMap::new();
            for eligible_node in nodes.iter().filter(eligible) {
                let value = eligible_node["metadata"]["labels"][&topology_key].as_str().unwrap_or_default();
                let count = per_node.get(name(eligible_node)).copied().unwrap_or(0);
                *per_domain.entry(value.to_string()).or_default() += count;
            }
            // Fewer domains than minDomains (1 unless set): the minimum is 0.
            let min_domains = constraint["minDomains"].as_u64().and_then(|m| usize::try_from(m).ok()).unwrap_or(1);
            let minimum = if per_domain.len() < min_domains {
                0
            } else {
                per_domain.values().copied().min().unwrap_or(usize::MAX)
            };
            let max_skew = constraint["maxSkew"].as_u64().and_then(|m| usize::try_from(m).ok()).unwrap_or(1);
            Counted { topology_key, per_domain, minimum, max_skew, itself: usize::from(matches(labels)) }
        });
        Spread { constraints: counted.collect() }
    }

    /// Whether the node is refused, constraint by constraint in the pod's order.
    fn refusal(&self, node: &Value) -> Option<Refusal> {
        for constraint in &self.constraints {
            let Some(domain) = node["metadata"]["labels"][&constraint.topology_key].as_str() else {
                return Some(Refusal::unresolvable(
                    "node(s) didn't match pod topology spread constraints (missing required label)",
                ));
            };
            let here = constraint.per_domain.get(domain).copied().unwrap_or(0) + constraint.itself;
            if here.saturating_sub(constraint.minimum) > constraint.max_skew {
                return Some(Refusal::resolvable("node(s) didn't match pod topology spread constraints"));
            }
        }
        None
    }
}

/// The pods bound to nodes, as the filters read them: all of them, and apart the few that hold
/// required anti-affinity terms, which every pod's placement on every node checks (looked for
/// among all pods each time, a scale to 5,000 pods spent two thirds of its time there).
#[derive(Default)]
struct Placements {
    all: Vec<Placed>,
    holding_anti_affinity: Vec<usize>,
}

impl Placements {
    fn push(&mut self, placed: Placed) {
        if !placed.anti_affinity.is_empty() {
            self.holding_anti_affinity.push(self.all.len());
        }
        self.all.push(placed);
    }

    fn holding_anti_affinity(&self) -> impl Iterator<Item = &Placed> {
        self.holding_anti_affinity.iter().map(|&index| &self.all[index])
    }
}

/// A pod bound to a node, as inter-pod affinity and topology spreading see it.
struct Placed {
    namespace: String,
    labels: Value,
    node: String,
    /// Its required anti-affinity terms, read once: every other pod's placement checks them.
    anti_affinity: Vec<Value>,
    deleting: bool,
}

impl Placed {
    fn new(namespace: &str, pod: &Value, node: &str) -> Placed {
        Placed {
            namespace: namespace.to_string(),
            labels: pod["metadata"]["labels"].clone(),
            node: node.to_string(),
            anti_affinity: pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            deleting: is_deleting(pod),
        }
    }
}

/// Upstream's InterPodAffinity filter, required terms only: the pod's anti-affinity (no
/// matching pod in the node's topology domain), existing pods' anti-affinity against it, and
/// its affinity (a matching pod in the domain, or none anywhere when it matches its own term).
fn inter_pod_affinity(
    namespace: &str,
    pod: &Value,
    node: &Value,
    nodes: &[Value],
    placed: &Placements,
) -> Option<Refusal> {
    let node_labels = |node_name: &str| {
        nodes.iter().find(|n| name(n) == node_name).map(|n| n["metadata"]["labels"].clone()).unwrap_or(Value::Null)
    };
    let same_domain = |key: &str, other_node: &str| {
        let here = node["metadata"]["labels"].get(key).and_then(Value::as_str);
        here.is_some() && here == node_labels(other_node).get(key).and_then(Value::as_str)
    };
    let required = |affinity: &Value, kind: &str| -> Vec<Value> {
        affinity[kind]["requiredDuringSchedulingIgnoredDuringExecution"].as_array().cloned().unwrap_or_default()
    };
    // The namespaces a term applies to: its list, or the namespace of the pod that holds it.
    let term_selects = |term: &Value, holder_namespace: &str, other_namespace: &str, labels: &Value| {
        let in_scope = match term["namespaces"].as_array().filter(|l| !l.is_empty()) {
            Some(list) => list.iter().any(|n| n.as_str() == Some(other_namespace)),
            None => holder_namespace == other_namespace,
        };
        in_scope && selects(&term["labelSelector"], labels)
    };
    let affinity = &pod["spec"]["affinity"];
    let labels = &pod["metadata"]["labels"];
    for term in required(affinity, "podAntiAffinity") {
        let key = term["topologyKey"].as_str().unwrap_or_default();
        if placed
            .all
            .iter()
            .any(|p| same_domain(key, &p.node) && term_selects(&term, namespace, &p.namespace, &p.labels))
        {
            return Some(Refusal::resolvable("node(s) didn't match pod anti-affinity rules"));
        }
    }
    for existing in placed.holding_anti_affinity() {
        for term in &existing.anti_affinity {
            let key = term["topologyKey"].as_str().unwrap_or_default();
            if same_domain(key, &existing.node) && term_selects(term, &existing.namespace, namespace, labels) {
                return Some(Refusal::resolvable("node(s) didn't satisfy existing pods anti-affinity rules"));
            }
        }
    }
    for term in required(affinity, "podAffinity") {
        let key = term["topologyKey"].as_str().unwrap_or_default();
        let matching: Vec<&Placed> =
            placed.all.iter().filter(|p| term_selects(&term, namespace, &p.namespace, &p.labels)).collect();
        let first_of_its_kind = matching.is_empty() && term_selects(&term, namespace, namespace, labels);
        if !first_of_its_kind && !matching.iter().any(|p| same_domain(key, &p.node)) {
            return Some(Refusal::unresolvable("node(s) didn't match pod affinity rules"));
        }
    }
    None
}

/// `0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Too many pods. preemption: 0/3
/// nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found
/// for incoming pod.` The first part counts reasons (a node short of CPU and memory gives two),
/// the second nodes. Parts are sorted as whole strings, as upstream's are.
fn unschedulable_message(nodes: usize, refusals: &[Refusal]) -> String {
    if nodes == 0 {
        return "no nodes available to schedule pods".to_string();
    }
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in refusals.iter().flat_map(|r| &r.reasons) {
        *reasons.entry(reason).or_default() += 1;
    }
    let found = histogram(reasons);
    let nodes_where = |helps: bool| refusals.iter().filter(|r| r.preemption_might_help == helps).count();
    // Every pod here has the same priority, so preemption never finds a pod to evict.
    let preemption = histogram([
        ("Preemption is not helpful for scheduling", nodes_where(false)),
        ("No preemption victims found for incoming pod", nodes_where(true)),
    ]);
    format!("0/{nodes} nodes are available: {found}. preemption: 0/{nodes} nodes are available: {preemption}.")
}

/// `2 Too many pods, 1 node(s) ...`: each reason with its count (none left out), sorted as whole
/// strings.
fn histogram<'a>(counts: impl IntoIterator<Item = (&'a str, usize)>) -> String {
    let mut parts: Vec<String> =
        counts.into_iter().filter(|(_, count)| *count > 0).map(|(reason, count)| format!("{count} {reason}")).collect();
    parts.sort();
    parts.join(", ")
}

/// Why a pod with scheduling gates is not scheduled: the API server says so on create, and the
/// scheduler leaves such a pod alone until its gates are gone.
pub const GATED: (&str, &str) = ("SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates");

/// A PodScheduled condition that turned `status` at `now`, and why.
pub fn pod_scheduled_condition(status: &str, why: Option<(&str, &str)>, now: &str) -> Value {
    let mut condition =
        json!({"type": "PodScheduled", "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some((reason, message)) = why {
        condition["reason"] = reason.into();
        condition["message"] = message.into();
    }
    condition
}

/// Writes the PodScheduled condition (and the binding, already in `pod`); the transition time
/// only changes with the status.
fn set_scheduled(store: &mut Store, namespace: &str, mut pod: Value, status: &str, why: Option<(&str, &str)>) {
    let mut condition = pod_scheduled_condition(status, why, &store.clock.timestamp());
    if !pod["status"].is_object() {
        pod["status"] = json!({"phase": "Pending"});
    }
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let conditions = pod["status"]["conditions"].as_array_mut().expect("an array");
    match conditions.iter_mut().find(|c| c["type"] == "PodScheduled") {
        Some(current) => {
            if current["status"] == status {
                condition["lastTransitionTime"] = current["lastTransitionTime"].clone();
            }
            *current = condition;
        }
        None => conditions.push(condition),
    }
    write(store, POD, namespace, pod);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refusals(pairs: &[(&[&str], bool, usize)]) -> Vec<Refusal> {
        pairs
            .iter()
            .flat_map(|(reasons, helps, nodes)| {
                (0..*nodes).map(|_| Refusal {
                    reasons: reasons.iter().map(|r| r.to_string()).collect(),
                    preemption_might_help: *helps,
                })
            })
            .collect()
    }

    const TAINT: &[&str] = &["node(s) had untolerated taint(s)"];

    #[test]
    fn preemption_is_said_to_find_no_victims_only_where_evicting_pods_could_help() {
        // The testbed's words (kube-scheduler v1.37): a rollout that overfills both workers.
        assert_eq!(
            unschedulable_message(3, &refusals(&[(TAINT, false, 1), (&["Too many pods"], true, 2)])),
            "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Too many pods. preemption: 0/3 nodes \
             are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming \
             pod."
        );
        let affinity: &[&str] = &["node(s) didn't match Pod's node affinity/selector"];
        assert_eq!(
            unschedulable_message(3, &refusals(&[(TAINT, false, 1), (affinity, false, 2)])),
            "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node \
             affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        // A node short of two resources gives two reasons, and counts once as a node.
        let short: &[&str] = &["Insufficient cpu", "Insufficient memory"];
        assert_eq!(
            unschedulable_message(3, &refusals(&[(TAINT, false, 1), (short, true, 2)])),
            "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu, 2 Insufficient \
             memory. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No \
             preemption victims found for incoming pod."
        );
        assert_eq!(unschedulable_message(0, &[]), "no nodes available to schedule pods");
    }

    #[test]
    fn only_the_nodes_every_required_term_names_are_weighed() {
        let spec = |terms: Value| json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}});
        let by_name = |names: Value| json!({"key": "metadata.name", "operator": "In", "values": names});
        let names = |list: &[&str]| Some(list.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>());
        // A daemon pod's pin.
        assert_eq!(named_nodes(&spec(json!([{"matchFields": [by_name(json!(["w1"]))]}]))), names(&["w1"]));
        // ANDed within a term, ORed across terms.
        let anded = json!({"matchFields": [by_name(json!(["w1", "w2"])), by_name(json!(["w2", "w3"]))]});
        let other = json!({"matchFields": [by_name(json!(["w4"]))]});
        assert_eq!(named_nodes(&spec(json!([anded, other]))), names(&["w2", "w4"]));
        // A term without names leaves every node eligible; no terms, no restriction.
        let by_label = json!({"matchExpressions": [{"key": "zone", "operator": "Exists"}]});
        assert_eq!(named_nodes(&spec(json!([{"matchFields": [by_name(json!(["w1"]))]}, by_label]))), None);
        assert_eq!(named_nodes(&spec(json!([]))), None);
        assert_eq!(named_nodes(&json!({"nodeSelector": {"a": "b"}})), None);
    }

    fn worker() -> Value {
        json!({"status": {"allocatable": {"cpu": "1k", "memory": "1Ti", "pods": "110"}}})
    }

    fn pod(requests: Value, host_port: Option<i64>) -> Value {
        let mut container = json!({"name": "web", "resources": {"requests": requests}});
        if let Some(port) = host_port {
            container["ports"] = json!([{"containerPort": port, "hostPort": port}]);
        }
        json!({"containers": [container]})
    }

    fn refusal(spec: &Value, node: &Value, load: &Load) -> Option<(Vec<String>, bool)> {
        filter(spec, &Wants::of(spec), node, load).map(|r| (r.reasons, r.preemption_might_help))
    }

    #[test]
    fn a_node_takes_a_pod_only_with_room_for_its_requests_and_free_host_ports() {
        let node = worker();
        let mut load = Load::on(&node);
        load.add(&pod(json!({"cpu": "600"}), Some(8080)));
        assert_eq!(refusal(&pod(json!({"cpu": "400"}), None), &node, &load), None, "exactly full");
        assert_eq!(
            refusal(&pod(json!({"cpu": "401", "memory": "1Gi"}), None), &node, &load),
            Some((vec!["Insufficient cpu".to_string()], true)),
            "a node that would fit it empty: eviction could help"
        );
        assert_eq!(
            refusal(&pod(json!({"cpu": "1001", "memory": "2Ti", "example.com/dongle": "1"}), None), &node, &load),
            Some((
                vec![
                    "Insufficient cpu".to_string(),
                    "Insufficient example.com/dongle".to_string(),
                    "Insufficient memory".to_string()
                ],
                false
            )),
            "more than the whole node: no eviction helps"
        );
        // Ports come before resources, as NodePorts runs before NodeResourcesFit.
        assert_eq!(
            refusal(&pod(json!({"cpu": "999"}), Some(8080)), &node, &load),
            Some((vec!["node(s) didn't have free ports for the requested pod ports".to_string()], true))
        );
        assert_eq!(refusal(&pod(json!({}), Some(8081)), &node, &load), None);
        let full = Load { pods: 110, ..Load::on(&node) };
        assert_eq!(refusal(&pod(json!({}), None), &node, &full), Some((vec!["Too many pods".to_string()], true)));
    }

    #[test]
    fn a_hard_spread_constraint_counts_every_node_with_the_key_tainted_or_not() {
        let node = |name: &str, zone: Option<&str>, tainted: bool| {
            let mut node = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {}});
            if let Some(zone) = zone {
                node["metadata"]["labels"]["topology.kubernetes.io/zone"] = zone.into();
            }
            if tainted {
                node["spec"]["taints"] =
                    json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
            }
            node
        };
        let nodes = [node("cp", Some("a"), true), node("w1", Some("a"), false), node("w2", None, false)];
        let pod = |key: &str, taints: &str| {
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"topologySpreadConstraints": [{
                "maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule",
                "nodeTaintsPolicy": taints, "labelSelector": {"matchLabels": {"app": "web"}},
            }]}})
        };
        let on = |node: &str, deleting: bool| Placed {
            namespace: "ns".into(),
            labels: json!({"app": "web"}),
            node: node.into(),
            anti_affinity: Vec::new(),
            deleting,
        };
        let verdict = |pod: &Value, node: usize, placed: &[Placed]| {
            Spread::of("ns", pod, &nodes, placed)
                .refusal(&nodes[node])
                .map(|r| (r.reasons[0].clone(), r.preemption_might_help))
        };
        let skewed = Some(("node(s) didn't match pod topology spread constraints".to_string(), true));
        let hostname = pod("kubernetes.io/hostname", "Ignore");
        // The control-plane node holds none, so the minimum is 0: w1 may hold one, not two.
        assert_eq!(verdict(&hostname, 1, &[]), None);
        assert_eq!(verdict(&hostname, 1, &[on("w1", false)]), skewed);
        assert_eq!(verdict(&hostname, 1, &[on("w1", true)]), None, "a terminating pod does not count");
        // Honouring taints leaves the control-plane node out: w2 now sets the minimum.
        let honoured = pod("kubernetes.io/hostname", "Honor");
        assert_eq!(verdict(&honoured, 1, &[on("w1", false), on("w2", false)]), None);
        assert_eq!(verdict(&honoured, 1, &[on("w1", false), on("w1", false), on("w2", false)]), skewed);
        // A node without the key can never take the pod, and no eviction changes that.
        let zone = pod("topology.kubernetes.io/zone", "Ignore");
        assert_eq!(
            verdict(&zone, 2, &[]),
            Some(("node(s) didn't match pod topology spread constraints (missing required label)".to_string(), false))
        );
        // Zone a is the only domain (w2 has no zone): its own count is the minimum.
        assert_eq!(verdict(&zone, 1, &[on("w1", false), on("cp", false)]), None);
    }
}
