//! Round trips and error cases of the protobuf codec.

use super::*;
use serde_json::json;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Reference vectors produced by Go (k8s.io/api etc. v0.34.13): the protobuf
/// serializer's bytes and `encoding/json`'s output for the same object.
const GO_VECTORS: &[(&str, &str, &str)] = &[
    (
        "apiservice",
        concat!(
            "6b3873000a270a19617069726567697374726174696f6e2e6b38732e696f2f7631120a4150495365",
            "7276696365124f0a1e0a0e76312e6578616d706c652e636f6d12001a0022002a0032003800420012",
            "2b0a0c0a026e73120373766318bb03120b6578616d706c652e636f6d1a02763120012a0301020338",
            "e807400f1a001a002200",
        ),
        r##"{"kind":"APIService","apiVersion":"apiregistration.k8s.io/v1","metadata":{"name":"v1.example.com"},"spec":{"service":{"namespace":"ns","name":"svc","port":443},"group":"example.com","version":"v1","insecureSkipTLSVerify":true,"caBundle":"AQID","groupPriorityMinimum":1000,"versionPriority":15},"status":{}}"##,
    ),
    (
        "clusterrole",
        concat!(
            "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b436c",
            "7573746572526f6c6512280a110a017212001a0022002a0032003800420012130a036765740a046c",
            "69737412001a04706f64731a002200",
        ),
        r##"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r"},"rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"]}]}"##,
    ),
    (
        "configmap",
        concat!(
            "6b3873000a0f0a0276311209436f6e6669674d6170129b010a790a03636d3112001a076465666175",
            "6c7422002a003200380042005a080a036170701201788a01520a0e6b75626563746c2d6372656174",
            "6512065570646174651a027631220808d983e2b106100032084669656c647356313a1e0a1c7b2266",
            "3a64617461223a7b222e223a7b7d2c22663a61223a7b7d7d7d420012060a016112013112090a0565",
            "6d70747912001a0b0a0362696e1204000102ff1a002200",
        ),
        r##"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm1","namespace":"default","labels":{"app":"x"},"managedFields":[{"manager":"kubectl-create","operation":"Update","apiVersion":"v1","time":"2024-05-06T07:08:09Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:a":{}}}}]},"data":{"a":"1","empty":""},"binaryData":{"bin":"AAEC/w=="}}"##,
    ),
    (
        "configmaplist",
        concat!(
            "6b3873000a130a027631120d436f6e6669674d61704c697374123c0a080a00120234321a00121b0a",
            "110a016112001a0022002a0032003800420012060a016b12017612130a110a016212001a0022002a",
            "003200380042001a002200",
        ),
        r##"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"42"},"items":[{"metadata":{"name":"a"},"data":{"k":"v"}},{"metadata":{"name":"b"}}]}"##,
    ),
    (
        "controllerrevision",
        concat!(
            "6b3873000a1d0a07617070732f76311212436f6e74726f6c6c65725265766973696f6e12330a130a",
            "0372657612001a0022002a00320038004200121a0a187b2273706563223a7b2278223a5b312c322c",
            "2279225d7d7d18021a002200",
        ),
        r##"{"kind":"ControllerRevision","apiVersion":"apps/v1","metadata":{"name":"rev"},"data":{"spec":{"x":[1,2,"y"]}},"revision":2}"##,
    ),
    (
        "crd",
        concat!(
            "6b3873000a330a17617069657874656e73696f6e732e6b38732e696f2f76311218437573746f6d52",
            "65736f75726365446566696e6974696f6e12d1070a230a13776964676574732e6578616d706c652e",
            "636f6d12001a0022002a00320038004200129d070a0b6578616d706c652e636f6d1a250a07776964",
            "67657473120677696467657422065769646765742a0a5769646765744c697374220a4e616d657370",
            "616365643ad8060a0276311001180122c7060ac4060a00120022002a066f626a65637432003a0050",
            "0060007a00900100ea019c060a04737065631293060a00120022002a066f626a65637432003a0050",
            "0060007a00900100ba010473697a65ea01280a03616e7912210a00120022002a0032003a00500060",
            "007a00900100a80200b00201b80200c00201ea01330a06636c6f73656412290a00120022002a066f",
            "626a65637432003a00500060007a00900100f201020800a80200b80200c00200ea01420a05636f6c",
            "6f7212390a00120022002a06737472696e6732003a00500060007a00900100a201070a0522726564",
            "22a201080a0622626c756522a80200b80200c00200ea01670a0364657012600a00120022002a066f",
            "626a65637432003a00500060007a0090010082020b0a0161120612016212016382022b0a01641226",
            "0a240a00120022002a066f626a65637432003a00500060007a00900100a80200b80200c00200a802",
            "00b80200c00200ea01590a066c6162656c73124f0a00120022002a066f626a65637432003a005000",
            "60007a00900100f20128080112240a00120022002a06737472696e6732003a00500060007a009001",
            "00a80200b80200c00200a80200b80200c00200ea01360a03726566122f0a0012001a0f232f646566",
            "696e6974696f6e732f7822002a0032003a00500060007a00900100a80200b80200c00200ea01440a",
            "0473697a65123c0a00120022002a07696e746567657232003a0042030a013349000000000000f83f",
            "500059000000000000f03f60007a00900100a80200b80200c00200ea015a0a047461677312520a00",
            "120022002a05617272617932003a00500060007a00900100c201260a240a00120022002a06737472",
            "696e6732003a00500060007a00900100a80200b80200c00200a80200b80200c00200d20203736574",
            "ea017c0a057475706c6512730a00120022002a05617272617932003a00500060007a00900100c201",
            "4d12240a00120022002a06737472696e6732003a00500060007a00900100a80200b80200c0020012",
            "250a00120022002a07696e746567657232003a00500060007a00900100a80200b80200c00200a802",
            "00b80200c00200a80200b80200c00200e2021d0a0d73656c662e73697a65203e20301208706f7369",
            "746976651a002a00a80200b80200c002002a020a00380050001a0a12080a00120022002a001a0022",
            "00",
        ),
        r##"{"kind":"CustomResourceDefinition","apiVersion":"apiextensions.k8s.io/v1","metadata":{"name":"widgets.example.com"},"spec":{"group":"example.com","names":{"plural":"widgets","singular":"widget","kind":"Widget","listKind":"WidgetList"},"scope":"Namespaced","versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","required":["size"],"properties":{"any":{"x-kubernetes-preserve-unknown-fields":true,"x-kubernetes-int-or-string":true},"closed":{"type":"object","additionalProperties":false},"color":{"type":"string","enum":["red","blue"]},"dep":{"type":"object","dependencies":{"a":["b","c"],"d":{"type":"object"}}},"labels":{"type":"object","additionalProperties":{"type":"string"}},"ref":{"$ref":"#/definitions/x"},"size":{"type":"integer","default":3,"maximum":1.5,"minimum":1},"tags":{"type":"array","items":{"type":"string"},"x-kubernetes-list-type":"set"},"tuple":{"type":"array","items":[{"type":"string"},{"type":"integer"}]}},"x-kubernetes-validations":[{"rule":"self.size \u003e 0","message":"positive"}]}}}},"subresources":{"status":{}}}]},"status":{"conditions":null,"acceptedNames":{"plural":"","kind":""},"storedVersions":null}}"##,
    ),
    (
        "deleteoptions",
        concat!(
            "6b3873000a130a027631120d44656c6574654f7074696f6e7312130800220a466f726567726f756e",
            "642a03416c6c1a002200",
        ),
        r##"{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0,"propagationPolicy":"Foreground","dryRun":["All"]}"##,
    ),
    (
        "deployment",
        concat!(
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412ae030a270a0377656212001a",
            "0022002a0032003800420808d983e2b10610005a0a0a03617070120377656212b9020800120c0a0a",
            "0a0361707012037765621afa010a1c0a0012001a0022002a003200380042005a0a0a036170701203",
            "77656212d9010a160a03636667120f9a010c0a050a03636d3118a4032000129c010a056e67696e78",
            "12056e67696e782a00320d0a001000185022035443502a0042310a0d0a0363707512060a04353030",
            "6d0a110a066d656d6f727912070a053132384d69120d0a0363707512060a043130306d4a150a0363",
            "666710001a082f6574632f6366672200320052210a1512130a012f120a080110001a04687474701a",
            "00220010001800200a280030036a007200800100880100900100a201001a00201e320042004a0052",
            "00580060006800720210008201008a01009a0100c2010022240a0d526f6c6c696e67557064617465",
            "12130a06080010011a001209080110001a033235252800300a38001a470800100018002000280032",
            "390a09417661696c61626c6512045472756522184d696e696d756d5265706c69636173417661696c",
            "61626c652a00320808d983e2b10610003a0038001a002200",
        ),
        r##"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTimestamp":"2024-05-06T07:08:09Z","labels":{"app":"web"}},"spec":{"replicas":0,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"volumes":[{"name":"cfg","configMap":{"name":"cm1","defaultMode":420,"optional":false}}],"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80,"protocol":"TCP"}],"resources":{"limits":{"cpu":"500m","memory":"128Mi"},"requests":{"cpu":"100m"}},"volumeMounts":[{"name":"cfg","mountPath":"/etc/cfg"}],"livenessProbe":{"httpGet":{"path":"/","port":"http"},"periodSeconds":10,"failureThreshold":3}}],"terminationGracePeriodSeconds":30,"securityContext":{"runAsUser":0}}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":"25%"}},"revisionHistoryLimit":10},"status":{"conditions":[{"type":"Available","status":"True","lastUpdateTime":"2024-05-06T07:08:09Z","lastTransitionTime":null,"reason":"MinimumReplicasAvailable"}]}}"##,
    ),
    (
        "event",
        concat!(
            "6b3873000a190a106576656e74732e6b38732e696f2f763112054576656e74127b0a1a0a03657631",
            "12001a0764656661756c7422002a00320038004200120b08d983e2b106108094ef3a220363746c2a",
            "0563746c2d313202446f3a074265636175736542190a03506f64120764656661756c741a01702200",
            "2a0032003a0052005a064e6f726d616c62040a0012006a00720808d983e2b106100078001a002200",
        ),
        r##"{"kind":"Event","apiVersion":"events.k8s.io/v1","metadata":{"name":"ev1","namespace":"default"},"eventTime":"2024-05-06T07:08:09.123456Z","reportingController":"ctl","reportingInstance":"ctl-1","action":"Do","reason":"Because","regarding":{"kind":"Pod","namespace":"default","name":"p"},"type":"Normal","deprecatedSource":{},"deprecatedFirstTimestamp":null,"deprecatedLastTimestamp":"2024-05-06T07:08:09Z"}"##,
    ),
    (
        "ingressclass",
        concat!(
            "6b3873000a240a146e6574776f726b696e672e6b38732e696f2f7631120c496e6772657373436c61",
            "737312340a120a02696312001a0022002a00320038004200121e0a03782f7912170a0f6b38732e65",
            "78616d706c652e636f6d1201501a016e1a002200",
        ),
        r##"{"kind":"IngressClass","apiVersion":"networking.k8s.io/v1","metadata":{"name":"ic"},"spec":{"controller":"x/y","parameters":{"apiGroup":"k8s.example.com","kind":"P","name":"n","scope":null}}}"##,
    ),
    (
        "pod",
        concat!(
            "6b3873000a090a0276311203506f641284020a440a01701202702d1a0022002a0431323334320137",
            "380342004a0808d983e2b1061000501e6a1e0a0a5265706c6963615365741a0272732201752a0761",
            "7070732f763130011275122d0a01631201692a003a110a014512001a0a22080a030a017312016b42",
            "006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a",
            "0100c201009202270a220a03646267120762757379626f782a0042006a0072008001018801009001",
            "00a201001201631a450a0752756e6e696e67121f0a0552656164791204547275651a00220808d983",
            "e2b10610002a00320038001a0022002a0032003a0808d983e2b10610004a005a0072008801001a00",
            "2200",
        ),
        r##"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","generateName":"p-","uid":"1234","resourceVersion":"7","generation":3,"deletionTimestamp":"2024-05-06T07:08:09Z","deletionGracePeriodSeconds":30,"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":true}]},"spec":{"containers":[{"name":"c","image":"i","env":[{"name":"E","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}],"resources":{}}],"ephemeralContainers":[{"name":"dbg","image":"busybox","resources":{},"stdin":true,"targetContainerName":"c"}]},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2024-05-06T07:08:09Z"}],"startTime":"2024-05-06T07:08:09Z"}}"##,
    ),
    (
        "secret",
        concat!(
            "6b3873000a0c0a0276311206536563726574123a0a120a02733112001a0022002a00320038004200",
            "12070a016b1202dead12130a0870617373776f7264120768756e746572321a064f70617175651a00",
            "2200",
        ),
        r##"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s1"},"data":{"k":"3q0=","password":"aHVudGVyMg=="},"type":"Opaque"}"##,
    ),
    (
        "tokenreview",
        concat!(
            "6b3873000a270a1861757468656e7469636174696f6e2e6b38732e696f2f7631120b546f6b656e52",
            "657669657712380a100a0012001a0022002a0032003800420012050a036162631a1d080112170a01",
            "75120022100a0673636f70657312060a01610a01621a001a002200",
        ),
        r##"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{},"spec":{"token":"abc"},"status":{"authenticated":true,"user":{"username":"u","extra":{"scopes":["a","b"]}}}}"##,
    ),
];

/// Go prints `null` for nil slices, maps and pointers without
/// `omitempty`; they are not on the wire, so `decode` leaves them out.
fn drop_unwired_nulls(go: &mut Value, ours: &Value) {
    match (go, ours) {
        (Value::Object(g), Value::Object(o)) => {
            g.retain(|k, v| !v.is_null() || o.contains_key(k));
            for (k, v) in g.iter_mut() {
                if let Some(ov) = o.get(k) {
                    drop_unwired_nulls(v, ov);
                }
            }
        }
        (Value::Array(g), Value::Array(o)) => {
            for (gv, ov) in g.iter_mut().zip(o) {
                drop_unwired_nulls(gv, ov);
            }
        }
        _ => {}
    }
}

fn roundtrip(obj: &Value) -> Value {
    let bytes = encode(obj).unwrap_or_else(|e| panic!("encode: {e}"));
    assert!(bytes.starts_with(MAGIC));
    decode(&bytes).unwrap_or_else(|e| panic!("decode: {e}"))
}

#[test]
fn decodes_go_bytes_exactly_as_go_prints_json() {
    for (name, hex, go_json) in GO_VECTORS {
        let ours = decode(&unhex(hex)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut go: Value = serde_json::from_str(go_json).unwrap();
        drop_unwired_nulls(&mut go, &ours);
        // Compare text, so key order counts too.
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&go).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn go_vectors_survive_encode_decode() {
    for (name, hex, _) in GO_VECTORS {
        let first = decode(&unhex(hex)).unwrap();
        assert_eq!(roundtrip(&first), first, "{name}");
    }
}

#[test]
fn encodes_go_json_to_the_same_object() {
    for (name, hex, go_json) in GO_VECTORS {
        let go: Value = serde_json::from_str(go_json).unwrap();
        let from_go_bytes = decode(&unhex(hex)).unwrap();
        assert_eq!(roundtrip(&go), from_go_bytes, "{name}");
    }
}

#[test]
fn configmap_roundtrip() {
    let cm = json!({
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": "game-config",
            "namespace": "default",
            "labels": {"b": "2", "a": "1"},
            "annotations": {"note": ""},
            "resourceVersion": "12",
            "creationTimestamp": "2024-01-02T03:04:05Z"
        },
        "immutable": false,
        "data": {"game.properties": "enemies=aliens\nlives=3\n", "empty": ""}
    });
    let back = roundtrip(&cm);
    assert_eq!(back, cm);
    // Maps come back in Go's sorted order.
    let labels: Vec<&String> = back["metadata"]["labels"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(labels, ["a", "b"]);
}

#[test]
fn secret_bytes_are_base64() {
    let secret = json!({
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "s"},
        "data": {"bin": "AP8Q", "password": "aHVudGVyMg=="},
        "type": "Opaque"
    });
    assert_eq!(roundtrip(&secret), secret);
    let bad = json!({"kind": "Secret", "apiVersion": "v1", "data": {"x": "!!"}});
    let err = encode(&bad).unwrap_err();
    assert!(err.to_string().contains("data.x"), "{err}");
}

#[test]
fn deployment_special_types_roundtrip() {
    let dep = json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web", "creationTimestamp": "2024-05-06T07:08:09Z", "generation": 2},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "volumes": [{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420}}],
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                        "livenessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 10},
                        "readinessProbe": {"tcpSocket": {"port": "http"}}
                    }],
                    "securityContext": {"runAsUser": 0}
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
        },
        "status": {
            "conditions": [{
                "type": "Available",
                "status": "True",
                "lastUpdateTime": "2024-05-06T07:08:09Z",
                "lastTransitionTime": "2024-05-06T07:08:10Z"
            }]
        }
    });
    let back = roundtrip(&dep);
    assert_eq!(back, dep);
    let c = &back["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], json!(8080));
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], json!("http"));
    // The Volume's inlined VolumeSource stays inline.
    assert_eq!(
        back["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
        "cm"
    );
}

#[test]
fn times_and_durations() {
    assert_eq!(
        format_time(0, 0, false).as_deref(),
        Some("1970-01-01T00:00:00Z")
    );
    assert_eq!(
        format_time(1_714_979_289, 123_456_789, true).as_deref(),
        Some("2024-05-06T07:08:09.123456Z")
    );
    assert_eq!(
        format_time(1_714_979_289, 0, true).as_deref(),
        Some("2024-05-06T07:08:09.000000Z")
    );
    assert_eq!(format_time(i64::MAX, 0, false), None);
    for (ns, text) in [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (2_000_000, "2ms"),
        (1_500_000_000, "1.5s"),
        (30_000_000_000, "30s"),
        (60_000_000_000, "1m0s"),
        (3_600_000_000_000, "1h0m0s"),
        (5_430_100_000_000, "1h30m30.1s"),
        (-90_000_000_000, "-1m30s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
    ] {
        assert_eq!(go_duration(ns), text);
        assert_eq!(parse_go_duration(text), Some(ns), "{text}");
    }
    assert_eq!(parse_go_duration("1h1h"), Some(7_200_000_000_000));
    assert_eq!(parse_go_duration(".5s"), Some(500_000_000));
    assert_eq!(parse_go_duration("0"), Some(0));
    for bad in ["", "1", "s", "1x", "-", "3000000h"] {
        assert_eq!(parse_go_duration(bad), None, "{bad}");
    }
    // MicroTime keeps microseconds; Time keeps seconds only.
    let ev = json!({
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"name": "e", "namespace": "default"},
        "eventTime": "2024-05-06T07:08:09.123456Z",
        "series": {"count": 2, "lastObservedTime": "2024-05-06T07:08:10.000001Z"},
        "reportingController": "c",
        "regarding": {"kind": "Pod", "name": "p"},
        "deprecatedFirstTimestamp": "2024-05-06T07:08:09Z"
    });
    assert_eq!(roundtrip(&ev), ev);
    let mut fractional = ev.clone();
    fractional["deprecatedFirstTimestamp"] = json!("2024-05-06T07:08:09.9+02:00");
    assert_eq!(
        roundtrip(&fractional)["deprecatedFirstTimestamp"],
        "2024-05-06T05:08:09Z"
    );
    // A null or zero time is Go's zero time: null, or dropped where
    // the field is omitzero (creationTimestamp).
    let pod = json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "p", "creationTimestamp": null},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "0001-01-01T00:00:00Z"}]}
    });
    let back = roundtrip(&pod);
    assert_eq!(back["metadata"], json!({"name": "p"}));
    assert_eq!(
        back["status"]["conditions"][0],
        json!({"type": "Ready", "status": "True", "lastTransitionTime": null})
    );
}

#[test]
fn duration_field_roundtrip() {
    let reg = registry().unwrap();
    let desc = reg
        .pool
        .get_message_by_name("k8s.io.apimachinery.pkg.apis.meta.v1.Duration")
        .unwrap();
    let mut ctx = Ctx::default();
    let mut buf = Vec::new();
    reg.encode_message_value(&desc, &json!("1h0m0s"), &mut buf, &mut ctx)
        .unwrap();
    let msg = DynamicMessage::decode(desc, buf.as_slice()).unwrap();
    assert_eq!(
        reg.message_to_json(&msg, &mut ctx).unwrap(),
        json!("1h0m0s")
    );
}

#[test]
fn crd_schema_roundtrip() {
    let crd = json!({
        "kind": "CustomResourceDefinition",
        "apiVersion": "apiextensions.k8s.io/v1",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 0, "maximum": 10.5, "default": 3},
                                "mode": {"type": "string", "enum": ["a", "b", null], "nullable": true},
                                "obj": {"type": "object", "default": {"k": [1, "x", {"y": null}]}},
                                "list": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                "tuple": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                                "open": {"type": "object", "additionalProperties": true},
                                "closed": {"type": "object", "additionalProperties": false},
                                "typed": {"type": "object", "additionalProperties": {"type": "integer"}},
                                "dep": {"dependencies": {"a": ["b"], "c": {"required": ["d"]}}},
                                "ios": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                "ref": {"$ref": "#/x", "$schema": "http://json-schema.org/draft-04/schema#"}
                            },
                            "x-kubernetes-validations": [{"rule": "self.size >= 0", "message": "neg"}]
                        }
                    }
                }},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]
            }],
            "conversion": {"strategy": "None"}
        }
    });
    assert_eq!(roundtrip(&crd), crd);
}

#[test]
fn lists_and_meta_kinds() {
    let list = json!({
        "kind": "ConfigMapList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "9", "continue": "tok"},
        "items": [{"metadata": {"name": "a"}, "data": {"k": "v"}}, {"metadata": {"name": "b"}}]
    });
    assert_eq!(roundtrip(&list), list);
    for api_version in ["v1", "apps/v1", "meta.k8s.io/v1", "batch/v1"] {
        let opts = json!({
            "kind": "DeleteOptions",
            "apiVersion": api_version,
            "gracePeriodSeconds": 0,
            "propagationPolicy": "Background",
            "preconditions": {"uid": "u"}
        });
        assert_eq!(roundtrip(&opts), opts);
    }
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "nope",
        "reason": "NotFound",
        "details": {"name": "x", "kind": "pods"},
        "code": 404
    });
    assert_eq!(roundtrip(&status), status);
    let rbac = json!({
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "b"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "u"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"}
    });
    assert_eq!(roundtrip(&rbac), rbac);
    let svc = json!({
        "kind": "APIService",
        "apiVersion": "apiregistration.k8s.io/v1",
        "metadata": {"name": "v1.x"},
        "spec": {"group": "x", "version": "v1", "groupPriorityMinimum": 1, "versionPriority": 1}
    });
    assert_eq!(roundtrip(&svc), svc);
    let sar = json!({
        "kind": "SubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": {"user": "u", "extra": {"scopes": ["a", "b"]}, "resourceAttributes": {"verb": "get"}},
        "status": {"allowed": true}
    });
    assert_eq!(roundtrip(&sar), sar);
    assert!(supports("v1", "Pod"));
    assert!(supports(
        "internal.apiserver.k8s.io/v1alpha1",
        "StorageVersion"
    ));
    assert!(!supports("example.com/v1", "Widget"));
    assert!(!supports("v1", "Pod.Spec"));
}

#[test]
fn raw_extension_roundtrip_and_nested_protobuf() {
    let rev = json!({
        "kind": "ControllerRevision",
        "apiVersion": "apps/v1",
        "metadata": {"name": "r"},
        "data": {"spec": {"template": {"x": [1, 2.5, "s", null, true]}}},
        "revision": 3
    });
    assert_eq!(roundtrip(&rev), rev);
    // A RawExtension may carry a protobuf-encoded object.
    let inner =
        encode(&json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "in"}}))
            .unwrap();
    // v1.List{items: [RawExtension{raw: <protobuf ConfigMap>}]}
    let mut list = Vec::new();
    let mut ext = Vec::new();
    put_bytes(&mut ext, 1, &inner);
    put_bytes(&mut list, 2, &ext);
    let mut tm = Vec::new();
    put_bytes(&mut tm, 1, b"v1");
    put_bytes(&mut tm, 2, b"List");
    let mut body = MAGIC.to_vec();
    put_bytes(&mut body, 1, &tm);
    put_bytes(&mut body, 2, &list);
    let v = decode(&body).unwrap();
    assert_eq!(
        v["items"][0],
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "in"}})
    );
}

#[test]
fn rejects_garbage_without_panicking() {
    assert!(matches!(decode(b""), Err(ProtoError::BadMagic)));
    assert!(matches!(decode(b"{\"kind\":1}"), Err(ProtoError::BadMagic)));
    assert!(matches!(decode(b"k8s\0"), Err(ProtoError::MissingTypeMeta)));
    assert!(matches!(
        decode(b"k8s\0\x0a\xff"),
        Err(ProtoError::Envelope(_))
    ));
    // Unknown kind.
    let mut tm = Vec::new();
    put_bytes(&mut tm, 1, b"example.com/v1");
    put_bytes(&mut tm, 2, b"Widget");
    let mut body = MAGIC.to_vec();
    put_bytes(&mut body, 1, &tm);
    let err = decode(&body).unwrap_err();
    assert!(matches!(err, ProtoError::UnknownKind { .. }), "{err}");
    assert!(err.to_string().contains("example.com/v1"));
    // gzip content encoding is not supported.
    let mut gz = body.clone();
    put_bytes(&mut gz, 3, b"gzip");
    assert!(matches!(
        decode(&gz),
        Err(ProtoError::UnsupportedEncoding(_))
    ));
    // Every truncation and many corruptions of real bodies fail cleanly.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for (_, hex, _) in GO_VECTORS {
        let bytes = unhex(hex);
        for len in 0..bytes.len() {
            let _ = decode(&bytes[..len]);
        }
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = 4 + (seed as usize) % (b.len() - 4);
                b[i] = (seed >> 32) as u8;
            }
            // Whatever decodes must encode without panicking.
            if let Ok(v) = decode(&b) {
                let _ = encode(&v);
            }
        }
    }
    // Encoding rejects what cannot be a Kubernetes object.
    assert!(matches!(encode(&json!([])), Err(ProtoError::NotAnObject)));
    assert!(matches!(
        encode(&json!({"kind": "Pod"})),
        Err(ProtoError::NotAnObject)
    ));
    let err =
        encode(&json!({"kind": "Pod", "apiVersion": "v1", "spec": {"containers": [{"name": 5}]}}))
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value at spec.containers[0].name: expected a string"
    );
    let err =
        encode(&json!({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"replicas": 1e12}}))
            .unwrap_err();
    assert!(err.to_string().contains("spec.replicas"), "{err}");
}

#[test]
fn deep_nesting_is_refused() {
    // JSONSchemaProps nested far past prost's recursion limit.
    let reg = registry().unwrap();
    let desc = reg
        .pool
        .get_message_by_name(
            "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        )
        .unwrap();
    let not = desc.get_field_by_name("not").unwrap().number();
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..5_000 {
        let mut next = Vec::new();
        put_bytes(&mut next, not, &inner);
        inner = next;
    }
    assert!(DynamicMessage::decode(desc, inner.as_slice()).is_err());
    // Unknown fields nest too: groups and unknown submessages.
    let mut tm = Vec::new();
    put_bytes(&mut tm, 1, b"v1");
    put_bytes(&mut tm, 2, b"ConfigMap");
    let mut body = MAGIC.to_vec();
    put_bytes(&mut body, 1, &tm);
    let mut groups = Vec::new();
    for _ in 0..100_000 {
        encode_key(99, WireType::StartGroup, &mut groups);
    }
    put_bytes(&mut body, 2, &groups);
    assert!(decode(&body).is_err());

    let mut deep = json!({});
    for _ in 0..1_000 {
        deep = json!({"not": deep});
    }
    let crd = json!({
        "kind": "CustomResourceDefinition",
        "apiVersion": "apiextensions.k8s.io/v1",
        "spec": {"versions": [{"schema": {"openAPIV3Schema": deep}}]}
    });
    assert!(matches!(encode(&crd), Err(ProtoError::TooDeep(_))));
    // Whatever encodes within the limit decodes again.
    let mut deep = json!({});
    for _ in 0..96 {
        deep = json!({"not": deep});
    }
    let crd = json!({
        "kind": "CustomResourceDefinition",
        "apiVersion": "apiextensions.k8s.io/v1",
        "spec": {"versions": [{"schema": {"openAPIV3Schema": deep}}]}
    });
    let back = roundtrip(&crd);
    assert_eq!(back["spec"], crd["spec"]);
}

#[test]
fn field_facts_match_the_descriptors() {
    let reg = registry().unwrap();
    let facts = parse_facts(JSON_FIELDS);
    assert!(facts.len() > 500, "facts file looks truncated");
    for (message, f) in &facts {
        let desc = reg
            .pool
            .get_message_by_name(message)
            .unwrap_or_else(|| panic!("{message} not in the protoset"));
        let nums = f
            .inline
            .iter()
            .chain(f.rename.keys())
            .chain(&f.emit_zero)
            .chain(&f.omit_zero)
            .chain(&f.order);
        for n in nums {
            assert!(desc.get_field(*n).is_some(), "{message} has no field {n}");
        }
    }
    // Spot checks of what the facts must say.
    let info = |name: &str| reg.messages.get(name).unwrap();
    let vol = info("k8s.io.api.core.v1.Volume");
    assert!(
        vol.fields
            .iter()
            .any(|f| f.inline && f.desc.name() == "volumeSource")
    );
    assert_eq!(
        vol.by_json
            .get("configMap")
            .map(|&i| vol.fields[i].desc.name()),
        Some("volumeSource")
    );
    let props = info("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps");
    assert!(props.by_json.contains_key("$ref"));
    assert!(
        props
            .by_json
            .contains_key("x-kubernetes-preserve-unknown-fields")
    );
    let spec = info("k8s.io.api.apps.v1.DeploymentSpec");
    assert!(
        spec.fields
            .iter()
            .any(|f| f.emit_zero && f.desc.name() == "replicas")
    );
    let specials: Vec<&str> = reg
        .messages
        .iter()
        .filter(|(_, m)| m.special == Some(Special::StringList))
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(specials.contains(&"k8s.io.api.authentication.v1.ExtraValue"));
    assert!(specials.contains(&"k8s.io.apimachinery.pkg.apis.meta.v1.Verbs"));
}
