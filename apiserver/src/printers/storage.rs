//! Printers for `storage.k8s.io`.

use serde_json::Value;

use super::quantity::quantity_value;
use super::util::{age, arr_at, b, get, len_at, map_at, n, name, opt_bool, opt_str, s, str_at};
use super::{AGE, ColumnDef, Ctx, NAME, Printer, col, docs};

// ---------------------------------------------------------------- storage classes

pub(super) static STORAGE_CLASSES: Printer = Printer {
    columns: &[
        NAME,
        col("Provisioner", "string", docs::STORAGE_CLASS_PROVISIONER),
        col(
            "ReclaimPolicy",
            "string",
            docs::STORAGE_CLASS_RECLAIM_POLICY,
        ),
        col(
            "VolumeBindingMode",
            "string",
            docs::STORAGE_CLASS_VOLUME_BINDING_MODE,
        ),
        col(
            "AllowVolumeExpansion",
            "string",
            docs::STORAGE_CLASS_ALLOW_VOLUME_EXPANSION,
        ),
        AGE,
    ],
    cells: storage_class_cells,
};

const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

fn storage_class_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let annotations = map_at(obj, &["metadata", "annotations"]);
    let is_default = DEFAULT_CLASS_ANNOTATIONS.iter().any(|key| {
        annotations
            .and_then(|a| a.get(*key))
            .and_then(Value::as_str)
            == Some("true")
    });
    let mut display_name = name(obj).to_string();
    if is_default {
        display_name.push_str(" (default)");
    }
    vec![
        s(display_name),
        s(str_at(obj, &["provisioner"])),
        s(opt_str(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
        s(opt_str(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
        b(opt_bool(obj, &["allowVolumeExpansion"]).unwrap_or(false)),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- volume attributes classes

pub(super) static VOLUME_ATTRIBUTES_CLASSES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "DriverName",
            "string",
            docs::VOLUME_ATTRIBUTES_CLASS_DRIVER_NAME,
        ),
        AGE,
    ],
    cells: volume_attributes_class_cells,
};

fn volume_attributes_class_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(str_at(obj, &["driverName"])),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- volume attachments

pub(super) static VOLUME_ATTACHMENTS: Printer = Printer {
    columns: &[
        NAME,
        ColumnDef {
            format: "name",
            ..col("Attacher", "string", docs::VOLUME_ATTACHMENT_SPEC_ATTACHER)
        },
        col("PV", "string", docs::VOLUME_ATTACHMENT_SOURCE_PV),
        col("Node", "string", docs::VOLUME_ATTACHMENT_SPEC_NODE_NAME),
        col(
            "Attached",
            "boolean",
            docs::VOLUME_ATTACHMENT_STATUS_ATTACHED,
        ),
        AGE,
    ],
    cells: volume_attachment_cells,
};

fn volume_attachment_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "attacher"])),
        s(str_at(obj, &["spec", "source", "persistentVolumeName"])),
        s(str_at(obj, &["spec", "nodeName"])),
        b(opt_bool(obj, &["status", "attached"]).unwrap_or(false)),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- CSI nodes

pub(super) static CSI_NODES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Drivers",
            "integer",
            "Drivers indicates the number of CSI drivers registered on the node",
        ),
        AGE,
    ],
    cells: csi_node_cells,
};

fn csi_node_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    vec![
        s(name(obj)),
        n(len_at(obj, &["spec", "drivers"])),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- CSI drivers

pub(super) static CSI_DRIVERS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "AttachRequired",
            "boolean",
            docs::CSI_DRIVER_ATTACH_REQUIRED,
        ),
        col(
            "PodInfoOnMount",
            "boolean",
            docs::CSI_DRIVER_POD_INFO_ON_MOUNT,
        ),
        col(
            "StorageCapacity",
            "boolean",
            docs::CSI_DRIVER_STORAGE_CAPACITY,
        ),
        col("TokenRequests", "string", docs::CSI_DRIVER_TOKEN_REQUESTS),
        col(
            "RequiresRepublish",
            "boolean",
            docs::CSI_DRIVER_REQUIRES_REPUBLISH,
        ),
        col("Modes", "string", docs::CSI_DRIVER_VOLUME_LIFECYCLE_MODES),
        AGE,
    ],
    cells: csi_driver_cells,
};

fn csi_driver_cells(obj: &Value, ctx: &Ctx<'_>) -> Vec<Value> {
    let flag = |field: &str, default: bool| b(opt_bool(obj, &["spec", field]).unwrap_or(default));
    let token_requests = match get(obj, &["spec", "tokenRequests"]) {
        None => "<unset>".to_string(),
        Some(_) => arr_at(obj, &["spec", "tokenRequests"])
            .iter()
            .map(|t| str_at(t, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
    };
    let modes: Vec<&str> = arr_at(obj, &["spec", "volumeLifecycleModes"])
        .iter()
        .map(|m| m.as_str().unwrap_or(""))
        .collect();
    // v1 defaulting sets volumeLifecycleModes to [Persistent] when empty.
    let modes = if modes.is_empty() {
        "Persistent".to_string()
    } else {
        modes.join(",")
    };
    vec![
        s(name(obj)),
        flag("attachRequired", true),
        flag("podInfoOnMount", false),
        flag("storageCapacity", false),
        s(token_requests),
        flag("requiresRepublish", false),
        s(modes),
        s(age(obj, ctx.now)),
    ]
}

// ---------------------------------------------------------------- CSI storage capacities

pub(super) static CSI_STORAGE_CAPACITIES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "StorageClassName",
            "string",
            docs::CSI_STORAGE_CAPACITY_STORAGE_CLASS,
        ),
        col("Capacity", "string", docs::CSI_STORAGE_CAPACITY_CAPACITY),
    ],
    cells: csi_storage_capacity_cells,
};

fn csi_storage_capacity_cells(obj: &Value, _ctx: &Ctx<'_>) -> Vec<Value> {
    let capacity = match get(obj, &["capacity"]) {
        None => "<unset>".to_string(),
        Some(q) => quantity_value(Some(q)),
    };
    vec![
        s(name(obj)),
        s(str_at(obj, &["storageClassName"])),
        s(capacity),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support;

    fn row(resource: &str, obj: &Value) -> Vec<Value> {
        test_support::row("storage.k8s.io", resource, obj)
    }

    #[test]
    fn storage_class() {
        let sc = json!({
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer",
        });
        assert_eq!(
            row("storageclasses", &sc)[..5],
            [
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
            ]
        );
    }

    #[test]
    fn csi() {
        let d = json!({"metadata": {"name": "d"}, "spec": {"tokenRequests": [{"audience": "a"}, {"audience": "b"}]}});
        assert_eq!(
            row("csidrivers", &d)[1..7],
            [
                json!(true),
                json!(false),
                json!(false),
                json!("a,b"),
                json!(false),
                json!("Persistent")
            ]
        );
        let c = json!({"capacity": "2048Mi", "storageClassName": "fast"});
        assert_eq!(
            row("csistoragecapacities", &c)[1..],
            [json!("fast"), json!("2Gi")]
        );
        let va = json!({"spec": {"attacher": "csi.example.com", "nodeName": "n1",
                                 "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true}});
        assert_eq!(
            row("volumeattachments", &va)[1..5],
            [
                json!("csi.example.com"),
                json!("pv1"),
                json!("n1"),
                json!(true)
            ]
        );
    }
}
