//! Strategic merge patch cases with upstream's results and errors.

use super::super::merge_keys::{NoMetadata, builtin_schema};
use super::*;
use serde_json::json;

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn pod_table() {
    let schema = builtin_schema("", "Pod").unwrap();
    let base = pod(json!({
        "containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "b:1"}
        ],
        "tolerations": [{"key": "k1"}],
        "volumes": [{"name": "v", "configMap": {"name": "cm"}}]
    }));
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "merge container by name",
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
            json!([
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "b:2"}
            ]),
        ),
        (
            "new container goes first",
            json!({"spec": {"containers": [{"name": "c", "image": "c"}]}}),
            json!([
                {"name": "c", "image": "c"},
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "b:1"}
            ]),
        ),
        (
            "delete element",
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
            json!([{"name": "b", "image": "b:1"}]),
        ),
        (
            "replace list",
            json!({"spec": {"containers": [{"name": "z"}, {"$patch": "replace"}]}}),
            json!([{"name": "z"}]),
        ),
        (
            "nested env merge and null delete",
            json!({"spec": {"containers": [{"name": "a", "image": null, "env": [{"name": "Y", "value": "2"}]}]}}),
            json!([
                {"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "b:1"}
            ]),
        ),
        (
            "setElementOrder",
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "containers": [{"name": "a", "image": "a:2"}]}}),
            json!([
                {"name": "b", "image": "b:1"},
                {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]}
            ]),
        ),
    ];
    for (name, patch, want) in cases {
        let got = apply(&base, &patch, &schema).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got["spec"]["containers"], want, "{name}");
    }

    // Atomic list replaced, retainKeys clears other volume sources.
    let got = apply(
        &base,
        &json!({"spec": {
            "tolerations": [{"key": "k2"}],
            "volumes": [{"name": "v", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}]
        }}),
        &schema,
    )
    .unwrap();
    assert_eq!(got["spec"]["tolerations"], json!([{"key": "k2"}]));
    assert_eq!(
        got["spec"]["volumes"],
        json!([{"name": "v", "secret": {"secretName": "s"}}])
    );
}

#[test]
fn aliasing_of_deletions_orders_like_go() {
    // Live [a x b]; the patch deletes b and adds d; x is server-only.
    // Go's deletion writes d into the live array seen by the ordering
    // step, which places x before d.
    let schema = builtin_schema("", "Pod").unwrap();
    let base = pod(json!({"containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}]}));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "d"}],
        "containers": [{"name": "b", "$patch": "delete"}, {"name": "d"}]
    }});
    let got = apply(&base, &patch, &schema).unwrap();
    assert_eq!(names(&got["spec"]["containers"]), ["a", "x", "d"]);
}

#[test]
fn primitive_lists() {
    let schema = builtin_schema("", "Pod").unwrap();
    let base = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let cases: Vec<(Value, Value)> = vec![
        (
            json!({"metadata": {"finalizers": ["d"]}}),
            json!(["d", "a", "b", "c"]),
        ),
        (
            json!({"metadata": {"finalizers": ["b", "d"]}}),
            json!(["a", "b", "d", "c"]),
        ),
        (
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            json!(["a", "c"]),
        ),
        (
            json!({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b", "e"], "finalizers": ["e"]}}),
            json!(["c", "a", "b", "e"]),
        ),
        (json!({"metadata": {"finalizers": null}}), Value::Null),
    ];
    for (patch, want) in cases {
        let got = apply(&base, &patch, &schema).unwrap();
        assert_eq!(got["metadata"]["finalizers"], want, "{patch}");
    }
    // Without a merge strategy primitive lists are replaced.
    let got = apply(&json!({"a": [1, 2]}), &json!({"a": [3]}), &NoMetadata).unwrap();
    assert_eq!(got, json!({"a": [3]}));
}

#[test]
fn map_directives() {
    let schema = builtin_schema("policy", "PodDisruptionBudget").unwrap();
    let base = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {
        "selector": {"matchLabels": {"x": "1"}}, "minAvailable": 1
    }});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "replace map",
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            json!({"metadata": {"labels": {"c": "3"}}, "spec": base["spec"]}),
        ),
        (
            "delete map keeps an empty object",
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
            json!({"metadata": {"labels": {}}, "spec": base["spec"]}),
        ),
        (
            "replace strategy field",
            json!({"spec": {"selector": {"matchExpressions": []}}}),
            json!({"metadata": base["metadata"], "spec": {"selector": {"matchExpressions": []}, "minAvailable": 1}}),
        ),
        (
            "top level replace",
            json!({"$patch": "replace", "kind": "X"}),
            json!({"kind": "X"}),
        ),
        (
            "retainKeys clears",
            json!({"spec": {"$retainKeys": ["maxUnavailable"], "maxUnavailable": 2}}),
            json!({"metadata": base["metadata"], "spec": {"maxUnavailable": 2}}),
        ),
        (
            "directive map on a missing field adds nothing",
            json!({"spec": {"other": {"$patch": "delete"}, "new": {"k": null, "j": 1}}}),
            json!({"metadata": base["metadata"], "spec": {
                "selector": {"matchLabels": {"x": "1"}}, "minAvailable": 1, "new": {"j": 1}
            }}),
        ),
        ("null patch is a no-op", json!(null), base.clone()),
    ];
    for (name, patch, want) in cases {
        let got = apply(&base, &patch, &schema).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn errors() {
    let schema = builtin_schema("", "Pod").unwrap();
    let base = pod(json!({"containers": [{"name": "a"}], "tolerations": [{"key": "k"}]}));
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!([1]),
            400,
            "json: cannot unmarshal array into Go value of type map[string]interface {}",
        ),
        (
            json!({"spec": {"$retainKeys": "x"}}),
            400,
            "invalid patch format of retainKeys",
        ),
        (
            json!({"spec": {"$retainKeys": ["a"], "b": 1}}),
            400,
            "invalid patch format of retainKeys",
        ),
        (
            json!({"spec": {"$deleteFromPrimitiveListX": ["a"]}}),
            400,
            "invalid patch format of primitive list",
        ),
        (
            json!({"spec": {"$setElementOrderX": []}}),
            400,
            "invalid patch format of setElementOrder list",
        ),
        (
            json!({"spec": {"containers": [[1]]}}),
            500,
            "list element types are not identical: [[map[name:a]] [[1]]]",
        ),
        (
            json!({"spec": {"containers": [{"image": "x"}]}}),
            500,
            "map: map[image:x] does not contain declared merge key: name",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}),
            500,
            "merging lists cannot yet be specified in the patch",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "$patch": 1}]}}),
            500,
            "unknown patch type: %!s(int64=1) in map: map[$patch:1 name:a]",
        ),
        (
            json!({"spec": {"$patch": "merge"}}),
            500,
            "unknown patch type: merge in map: map[$patch:merge]",
        ),
        (
            json!({"spec": {"containers": ["a"]}}),
            500,
            "list element types are not identical: [[map[name:a]] [a]]",
        ),
        (
            json!({"spec": {"$deleteFromPrimitiveList/tolerations": [{"key": "k"}]}}),
            500,
            "cannot merge lists without merge key for struct",
        ),
        (
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "b"}]}}),
            500,
            "The order in patch list:\n[map[name:b]]\n doesn't match $setElementOrder list:\n[map[name:a]]\n",
        ),
        (
            json!({"spec": {"$setElementOrder/containers": "a"}}),
            500,
            "expected a []interface {}, but received a string",
        ),
    ];
    for (patch, code, msg) in cases {
        let err = apply(&base, &patch, &schema).expect_err(&patch.to_string());
        assert_eq!(
            (err.code(), err.to_string().as_str()),
            (code, msg),
            "{patch}"
        );
    }
    // A list of lists (first element a list) is 422.
    let empty = pod(json!({"containers": []}));
    let err = apply(&empty, &json!({"spec": {"containers": [[1]]}}), &schema).unwrap_err();
    assert_eq!(
        (err.code(), err.detail().as_str()),
        (422, "lists of lists are not supported")
    );
    // Maps as merge-key values make Go compare maps: a runtime panic.
    let err = apply(
        &base,
        &json!({"spec": {"containers": [{"name": {"x": 1}}]}}),
        &schema,
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::Panic { .. }), "{err:?}");
    // Lookups into types without JSON fields fail like upstream.
    let rev = builtin_schema("apps", "ControllerRevision").unwrap();
    let err = apply(
        &json!({"data": {"spec": {"a": 1}}}),
        &json!({"data": {"spec": {"a": 2}}}),
        &rev,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to find api field in struct RawExtension for the json field \"spec\""
    );
    assert_eq!(err.code(), 500);
}

#[test]
fn deployment_and_cronjob_templates() {
    let dep = builtin_schema("apps", "Deployment").unwrap();
    let base = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]}}}});
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 81}]}]}}}});
    let got = apply(&base, &patch, &dep).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 81}, {"containerPort": 80, "name": "http"}])
    );
    let cj = builtin_schema("batch", "CronJob").unwrap();
    let base = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}}});
    let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "i"}]}}}}}});
    let got = apply(&base, &patch, &cj).unwrap();
    assert_eq!(
        got["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "i"}])
    );
}

#[test]
fn hostile_input_is_bounded() {
    let schema = builtin_schema("", "Pod").unwrap();
    let mut deep = json!({});
    for _ in 0..(MAX_DEPTH + 5) {
        deep = json!({"a": deep});
    }
    let err = apply(&json!({}), &deep, &schema).unwrap_err();
    assert_eq!(err.code(), 422);
    // Dismantle without recursion.
    let mut stack = vec![deep];
    while let Some(v) = stack.pop() {
        if let Value::Object(m) = v {
            stack.extend(m.into_iter().map(|(_, v)| v));
        }
    }
    // Many elements with duplicate keys stay fast and deterministic.
    let list: Vec<Value> = (0..2000)
        .map(|i| json!({"name": (i % 7).to_string()}))
        .collect();
    let base = pod(json!({"containers": list.clone()}));
    let got = apply(&base, &json!({"spec": {"containers": list}}), &schema).unwrap();
    assert_eq!(got["spec"]["containers"].as_array().unwrap().len(), 2000);
}

#[test]
fn other_kinds() {
    let cases: Vec<(&str, &str, Value, Value, Value)> = vec![
        (
            "",
            "Service",
            json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}}),
            json!({"spec": {"ports": [{"port": 443, "name": "https"}]}}),
            json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}),
        ),
        (
            "",
            "ConfigMap",
            json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}, "data": {"k": "v"}}),
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}, "data": {"k": null, "j": "w"}}),
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}]}, "data": {"j": "w"}}),
        ),
        (
            "apps",
            "Deployment",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}}}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"$patch": "replace", "requests": {"cpu": "2"}}}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}}}),
        ),
        (
            "",
            "Node",
            json!({"spec": {"taints": [{"key": "a"}], "podCIDRs": ["10.0.0.0/24"]}}),
            json!({"spec": {"taints": [{"key": "b"}], "podCIDRs": ["fd00::/64"]}}),
            json!({"spec": {"taints": [{"key": "b"}], "podCIDRs": ["fd00::/64", "10.0.0.0/24"]}}),
        ),
    ];
    for (group, kind, doc, patch, want) in cases {
        let schema = builtin_schema(group, kind).unwrap();
        assert_eq!(apply(&doc, &patch, &schema).unwrap(), want, "{kind}");
    }
}

#[test]
fn dedup_like_go() {
    let got = deduplicate_scalars(vec![json!("a"), json!("b"), json!("a"), json!("c")]).unwrap();
    assert_eq!(got, vec![json!("a"), json!("b"), json!("c")]);
    let got = deduplicate_scalars(vec![json!(1), json!(1), json!(2), json!(1)]).unwrap();
    assert_eq!(got, vec![json!(1), json!(2)]);
}
