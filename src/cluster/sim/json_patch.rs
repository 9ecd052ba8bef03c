//! JSON patches (RFC 6902, `application/json-patch+json`) as the API server applies them: the
//! operations of the `json-patch` crate, with the API server's answers when one does not apply
//! and the one place where its library is more lenient than the RFC.

use json_patch::{AddOperation, PatchOperation};
use serde_json::Value;

use super::error::ApiError;

/// `object` with the patch in `body` applied, operation by operation; the first that does not
/// apply refuses the whole patch.
pub fn apply(object: &Value, body: Value) -> Result<Value, ApiError> {
    let top_level = match &body {
        Value::Array(_) => None,
        Value::Object(_) => Some("object"),
        Value::String(_) => Some("string"),
        Value::Number(_) => Some("number"),
        Value::Bool(_) => Some("bool"),
        Value::Null => None,
    };
    if let Some(found) = top_level {
        return Err(ApiError::bad_request(format!(
            "error decoding patch: json: cannot unmarshal {found} into Go value of type []handlers.jsonPatchOp"
        )));
    }
    // `null` decodes to no operations at all, as in Go.
    let operations: Vec<PatchOperation> = match body {
        Value::Null => Vec::new(),
        operations => serde_json::from_value(operations).map_err(|_| not_applicable())?,
    };
    let mut patched = object.clone();
    for operation in operations {
        // Judged against the object as the operations before it left it.
        let operation = replace_missing_as_add(&patched, operation);
        json_patch::patch_unsafe(&mut patched, std::slice::from_ref(&operation)).map_err(|_| not_applicable())?;
    }
    Ok(patched)
}

/// The API server's library replaces a member an object does not have by adding it, where the
/// RFC calls that an error (`kubectl patch --type=json` with `replace` of a missing annotation
/// map sets it); a missing array index stays an error.
fn replace_missing_as_add(object: &Value, operation: PatchOperation) -> PatchOperation {
    let PatchOperation::Replace(replace) = operation else { return operation };
    let missing_member = replace.path.split_back().is_some_and(|(parent, _)| {
        object.pointer(parent.as_str()).is_some_and(Value::is_object) && object.pointer(replace.path.as_str()).is_none()
    });
    if missing_member {
        PatchOperation::Add(AddOperation { path: replace.path, value: replace.value })
    } else {
        PatchOperation::Replace(replace)
    }
}

/// What the API server answers to an operation that does not apply (a `test` that fails, a
/// path that is not there, an unknown `op`), whichever it is.
fn not_applicable() -> ApiError {
    ApiError::invalid_request("the server rejected our request due to an error in our request")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::apply;

    fn service() -> serde_json::Value {
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web", "track": "blue"}, "ports": [{"port": 80}]}})
    }

    #[test]
    fn an_add_replaces_a_whole_member_and_leaves_the_rest() {
        let object =
            apply(&service(), json!([{"op": "add", "path": "/spec/selector", "value": {"app": "web"}}])).unwrap();
        assert_eq!(object["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(object["spec"]["ports"], json!([{"port": 80}]));
    }

    #[test]
    fn a_replace_of_a_missing_member_adds_it_and_of_a_missing_index_is_refused() {
        let object =
            apply(&service(), json!([{"op": "replace", "path": "/metadata/annotations", "value": {"a": "b"}}]))
                .unwrap();
        assert_eq!(object["metadata"]["annotations"], json!({"a": "b"}));
        // Against the object as the operation before it left it.
        let object = apply(
            &service(),
            json!([{"op": "add", "path": "/metadata/labels", "value": {}}, {"op": "replace", "path": "/metadata/labels/x", "value": "1"}]),
        )
        .unwrap();
        assert_eq!(object["metadata"]["labels"], json!({"x": "1"}));
        let refused = apply(&service(), json!([{"op": "replace", "path": "/spec/ports/5", "value": {"port": 81}}]));
        assert_eq!(refused.unwrap_err().code, 422);
    }

    #[test]
    fn an_operation_that_does_not_apply_refuses_the_whole_patch_in_the_api_servers_words() {
        for operations in [
            json!([{"op": "add", "path": "/spec/selector/x", "value": "1"}, {"op": "test", "path": "/metadata/name", "value": "db"}]),
            json!([{"op": "remove", "path": "/spec/selector/zzz"}]),
            json!([{"op": "bogus", "path": "/spec"}]),
            json!([{"op": "add", "path": "/nope/x", "value": 1}]),
        ] {
            let refused = apply(&service(), operations.clone()).unwrap_err();
            assert_eq!(
                (refused.code, refused.reason, refused.message.as_str()),
                (422, "Invalid", "the server rejected our request due to an error in our request"),
                "{operations}"
            );
        }
    }

    #[test]
    fn a_body_that_is_not_a_list_of_operations_is_a_bad_request() {
        let refused = apply(&service(), json!({"not": "array"})).unwrap_err();
        assert_eq!(refused.code, 400);
        assert_eq!(
            refused.message,
            "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
        );
    }
}
