//! Each scenario runs in a namespace it creates and labels as its own, and deletes afterwards.
//! rehearse never deletes a namespace it did not create (it deletes by uid).

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

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

/// A namespace rehearse created: its name, and the uid that tells it apart from any namespace
/// given the same name later.
#[derive(Clone, Debug)]
pub struct OwnNamespace {
    pub name: String,
    pub uid: String,
}

pub async fn create(client: &Client, scenario: &str) -> Result<OwnNamespace, kube::Error> {
    let name = name_for(scenario);
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {OWNER_LABEL: OWNER_VALUE}}
    }))
    .expect("a valid namespace");
    let created = Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await?;
    Ok(OwnNamespace { name, uid: created.metadata.uid.unwrap_or_default() })
}

/// Deletes the namespace rehearse created, and only that one: the uid precondition makes the API
/// refuse to delete any other namespace that has the same name by now. Gone already is fine.
pub async fn delete(client: &Client, namespace: &OwnNamespace) -> Result<(), kube::Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: Some(namespace.uid.clone()), resource_version: None }),
        ..DeleteParams::background()
    };
    match Api::<Namespace>::all(client.clone()).delete(&namespace.name, &params).await {
        Ok(_) => Ok(()),
        // 404: gone already; 409: the name now belongs to a namespace rehearse did not make.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
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
