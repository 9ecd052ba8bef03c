//! Each scenario runs in a namespace it creates and labels as its own, and deletes afterwards.
//! rehearse never deletes a namespace without its label.

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};

/// The label that marks a namespace as made by rehearse.
pub const OWNER_LABEL: &str = "app.kubernetes.io/managed-by";
pub const OWNER_VALUE: &str = "rehearse";

/// A DNS label made from the scenario name, with a random suffix so parallel runs never collide.
pub fn name_for(scenario: &str) -> String {
    let mut slug: String =
        scenario.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    let slug: String = slug.trim_matches('-').chars().take(40).collect();
    let slug = slug.trim_end_matches('-');
    let suffix: u32 = rand_u32();
    format!("rehearse-{}{:08x}", if slug.is_empty() { String::new() } else { format!("{slug}-") }, suffix)
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish() as u32
}

pub async fn create(client: &Client, scenario: &str) -> Result<String, kube::Error> {
    let name = name_for(scenario);
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {OWNER_LABEL: OWNER_VALUE}}
    }))
    .expect("a valid namespace");
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await?;
    Ok(name)
}

/// Deletes the namespace if, and only if, rehearse made it.
pub async fn delete(client: &Client, name: &str) -> Result<(), kube::Error> {
    let api = Api::<Namespace>::all(client.clone());
    let Some(namespace) = api.get_opt(name).await? else { return Ok(()) };
    let ours =
        namespace.metadata.labels.as_ref().and_then(|l| l.get(OWNER_LABEL)).map(String::as_str) == Some(OWNER_VALUE);
    if ours {
        api.delete(name, &DeleteParams::background()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::name_for;

    #[test]
    fn namespace_names_are_dns_labels() {
        let name = name_for("Remove a pod from the load balancer!! (again)");
        assert!(name.starts_with("rehearse-remove-a-pod-from-the-load-balancer-"), "{name}");
        assert!(name.len() <= 63);
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_ne!(name_for("x"), name_for("x"));
        assert!(name_for("").starts_with("rehearse-"));
    }
}
