//! Deep merge of instance data, as vNext does it: objects merge key by key,
//! recursively; anything else (arrays included) replaces the old value whole.

use serde_json::Value;

/// Merges `patch` into `target` in place.
pub fn deep_merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, p) => *t = p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_merge_arrays_replace() {
        let mut d = json!({"a": {"x": 1, "y": [1, 2]}, "b": 1});
        deep_merge(&mut d, json!({"a": {"y": [3], "z": true}, "c": null}));
        assert_eq!(d, json!({"a": {"x": 1, "y": [3], "z": true}, "b": 1, "c": null}));
    }

    #[test]
    fn scalar_replaces_object() {
        let mut d = json!({"a": {"x": 1}});
        deep_merge(&mut d, json!({"a": 5}));
        assert_eq!(d, json!({"a": 5}));
    }
}
