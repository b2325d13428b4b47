//! PersistentVolumes and PersistentVolumeClaims: upstream's defaults and the
//! initial `Pending` phase a new one starts in (its binding controller moves
//! it on from there).

use serde_json::{Value, json};

use crate::registry::strategy::Strategy;

pub struct PersistentVolumes;
impl Strategy for PersistentVolumes {
    fn prepare_for_create(&self, obj: &mut Value) {
        self.apply_defaults(obj);
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        obj["status"] = json!({"phase": "Pending", "lastPhaseTransitionTime": now});
    }
    fn apply_defaults(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        spec.entry("persistentVolumeReclaimPolicy")
            .or_insert_with(|| json!("Retain"));
        spec.entry("volumeMode")
            .or_insert_with(|| json!("Filesystem"));
        if let Some(host_path) = spec.get_mut("hostPath").and_then(Value::as_object_mut) {
            host_path.entry("type").or_insert_with(|| json!(""));
        }
    }
}

pub struct PersistentVolumeClaims;
impl Strategy for PersistentVolumeClaims {
    fn prepare_for_create(&self, obj: &mut Value) {
        self.apply_defaults(obj);
        obj["status"] = json!({"phase": "Pending"});
    }
    fn apply_defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("volumeMode")
                .or_insert_with(|| json!("Filesystem"));
        }
    }
}
