//! The operations of one group-version, as a model both document flavours
//! render: every verb of every resource and subresource in the resource
//! table, with upstream's operation ids, actions, parameters and kinds.

use super::params::{self, Param};
use super::schemas::{API_RESOURCE_LIST, Catalog, DELETE_OPTIONS, Gvk, STATUS, WATCH_EVENT};
use crate::resources::{GroupVersion, ResourceInfo, Subresource};

/// What an operation's request body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Body {
    None,
    /// A whole object of the given definition.
    Object(String),
    /// A patch document (`io.k8s.apimachinery.pkg.apis.meta.v1.Patch`).
    Patch,
    /// Optional `DeleteOptions`.
    Delete,
}

/// What an operation answers, which decides the media types it lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Output {
    Object,
    /// A list or a watch stream.
    Stream,
    /// `pods/log`: text.
    Text,
    /// Connect operations (exec, attach, port-forward, proxy): a string.
    Connect,
}

#[derive(Clone, Debug)]
pub(super) struct Op {
    /// Lower-case HTTP method.
    pub method: &'static str,
    pub action: &'static str,
    pub id: String,
    pub description: String,
    pub params: Vec<Param>,
    pub body: Body,
    pub output: Output,
    /// Definition answered (None: a plain string).
    pub response: Option<String>,
    pub codes: &'static [(&'static str, &'static str)],
    pub gvk: Option<Gvk>,
    pub tag: String,
    /// Whether the operation is a custom resource's (JSON and YAML only, no
    /// strategic merge patch).
    pub custom: bool,
}

/// Whose operations a group-version has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// Built-in resources: every verb, with the watch paths.
    Builtin,
    /// Custom resources, as upstream's CRD builder lists them: no watch
    /// paths and no resource list at the group-version root.
    Custom,
}

#[derive(Clone, Debug)]
pub(super) struct PathItem {
    pub path: String,
    pub params: Vec<Param>,
    pub ops: Vec<Op>,
}

const OK: &[(&str, &str)] = &[("200", "OK")];
const CREATED: &[(&str, &str)] = &[("200", "OK"), ("201", "Created"), ("202", "Accepted")];
const REPLACED: &[(&str, &str)] = &[("200", "OK"), ("201", "Created")];
const DELETED: &[(&str, &str)] = &[("200", "OK"), ("202", "Accepted")];

/// `networking.k8s.io` → `Networking`, `` → `Core`, `flowcontrol.apiserver.k8s.io`
/// → `FlowcontrolApiserver` (upstream's operation-id spelling).
pub(super) fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The tag of a group-version's operations, e.g. `apps_v1`, `core_v1`,
/// `rbacAuthorization_v1`.
pub(super) fn tag(group: &str, version: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    let lower = match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

fn article(kind: &str) -> &'static str {
    if kind.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// The URL prefix of a group-version, e.g. `/apis/apps/v1`.
pub(super) fn base(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

struct Ctx<'a> {
    catalog: &'a Catalog,
    p: &'a params::Params,
    r: &'a ResourceInfo,
    /// `CoreV1`, `AppsV1`, …
    gv_id: String,
    tag: String,
    kind_def: Option<String>,
    origin: Origin,
}

impl Ctx<'_> {
    fn op(
        &self,
        method: &'static str,
        action: &'static str,
        id: String,
        description: String,
    ) -> Op {
        Op {
            method,
            action,
            id,
            description,
            params: Vec::new(),
            body: Body::None,
            output: Output::Object,
            response: self.kind_def.clone(),
            codes: OK,
            gvk: Some(Gvk::new(&self.r.group, &self.r.version, &self.r.kind)),
            tag: self.tag.clone(),
            custom: self.origin == Origin::Custom,
        }
    }

    fn def(&self, group: &str, version: &str, kind: &str) -> Option<String> {
        self.catalog.kind(group, version, kind).map(str::to_string)
    }

    /// `Namespaced` for operations under `/namespaces/{namespace}`.
    fn scope(&self) -> &'static str {
        if self.r.namespaced { "Namespaced" } else { "" }
    }
}

/// Every path of one group-version, sorted by path.
pub(super) fn gv_paths(
    catalog: &Catalog,
    p: &params::Params,
    group: &str,
    gv: &GroupVersion,
    origin: Origin,
) -> Vec<PathItem> {
    let base = base(group, &gv.version);
    let gv_id = format!("{}{}", group_camel(group), capitalize(&gv.version));
    let tag = tag(group, &gv.version);
    let mut items = Vec::new();
    if origin == Origin::Builtin {
        items.push(PathItem {
            path: format!("{base}/"),
            params: vec![],
            ops: vec![Op {
                method: "get",
                action: "",
                id: format!("get{gv_id}APIResources"),
                description: "get available resources".into(),
                params: vec![],
                body: Body::None,
                output: Output::Object,
                response: Some(API_RESOURCE_LIST.into()),
                codes: OK,
                gvk: None,
                tag: tag.clone(),
                custom: false,
            }],
        });
    }
    for r in &gv.resources {
        let ctx = Ctx {
            catalog,
            p,
            r,
            gv_id: gv_id.clone(),
            tag: tag.clone(),
            kind_def: catalog
                .kind(&r.group, &r.version, &r.kind)
                .map(str::to_string),
            origin,
        };
        resource_paths(&ctx, &base, &mut items);
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    items
}

fn resource_paths(c: &Ctx<'_>, base: &str, items: &mut Vec<PathItem>) {
    let r = c.r;
    let (gv, kind, scope) = (&c.gv_id, &r.kind, c.scope());
    let ns_param = || {
        if r.namespaced {
            vec![c.p.namespace()]
        } else {
            vec![]
        }
    };
    let collection = if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{base}/{}", r.plural)
    };
    let list_def = c.def(&r.group, &r.version, &r.list_kind);
    let mut coll_ops = Vec::new();
    if r.has_verb("list") {
        let mut op = c.op(
            "get",
            "list",
            format!("list{gv}{scope}{kind}"),
            format!("list or watch objects of kind {kind}"),
        );
        op.params = c.p.list();
        op.output = Output::Stream;
        op.response = list_def.clone();
        coll_ops.push(op);
    }
    if r.has_verb("create") {
        let mut op = c.op(
            "post",
            "post",
            format!("create{gv}{scope}{kind}"),
            format!("create {} {kind}", article(kind)),
        );
        op.params = c.p.write(false);
        op.body = c.kind_def.clone().map_or(Body::None, Body::Object);
        op.codes = CREATED;
        coll_ops.push(op);
    }
    if r.has_verb("deletecollection") {
        let mut op = c.op(
            "delete",
            "deletecollection",
            format!("delete{gv}Collection{scope}{kind}"),
            format!("delete collection of {kind}"),
        );
        op.params = c.p.delete_collection();
        op.body = Body::Delete;
        op.response = Some(STATUS.into());
        coll_ops.push(op);
    }
    if !coll_ops.is_empty() {
        let mut params = ns_param();
        params.push(c.p.pretty());
        items.push(PathItem {
            path: collection.clone(),
            params,
            ops: coll_ops,
        });
    }
    let item_path = format!("{collection}/{{name}}");
    let item_params = || {
        let mut v = vec![c.p.name(kind)];
        v.extend(ns_param());
        v.push(c.p.pretty());
        v
    };
    let mut item_ops = Vec::new();
    if r.has_verb("get") {
        item_ops.push(c.op(
            "get",
            "get",
            format!("read{gv}{scope}{kind}"),
            format!("read the specified {kind}"),
        ));
    }
    if r.has_verb("update") {
        let mut op = c.op(
            "put",
            "put",
            format!("replace{gv}{scope}{kind}"),
            format!("replace the specified {kind}"),
        );
        op.params = c.p.write(false);
        op.body = c.kind_def.clone().map_or(Body::None, Body::Object);
        op.codes = REPLACED;
        item_ops.push(op);
    }
    if r.has_verb("patch") {
        let mut op = c.op(
            "patch",
            "patch",
            format!("patch{gv}{scope}{kind}"),
            format!("partially update the specified {kind}"),
        );
        op.params = c.p.write(true);
        op.body = Body::Patch;
        op.codes = REPLACED;
        item_ops.push(op);
    }
    if r.has_verb("delete") {
        let mut op = c.op(
            "delete",
            "delete",
            format!("delete{gv}{scope}{kind}"),
            format!("delete {} {kind}", article(kind)),
        );
        op.params = c.p.delete();
        op.body = Body::Delete;
        op.response = Some(STATUS.into());
        op.codes = DELETED;
        item_ops.push(op);
    }
    if !item_ops.is_empty() {
        items.push(PathItem {
            path: item_path.clone(),
            params: item_params(),
            ops: item_ops,
        });
    }
    match c.origin {
        Origin::Builtin if r.has_verb("watch") => watch_paths(c, base, items),
        Origin::Builtin => {}
        Origin::Custom if r.namespaced && r.has_verb("list") => {
            items.push(list_all_namespaces(c, base));
        }
        Origin::Custom => {}
    }
    for sub in &r.subresources {
        subresource_path(c, sub, &item_path, item_params(), items);
    }
}

fn watch_paths(c: &Ctx<'_>, base: &str, items: &mut Vec<PathItem>) {
    let r = c.r;
    let (gv, kind, scope) = (&c.gv_id, &r.kind, c.scope());
    let watch = |action: &'static str, id: String, description: String| {
        let mut op = c.op("get", action, id, description);
        op.output = Output::Stream;
        op.response = Some(WATCH_EVENT.into());
        op
    };
    let mut list_params = c.p.list();
    list_params.push(c.p.pretty());
    let ns = if r.namespaced {
        "namespaces/{namespace}/"
    } else {
        ""
    };
    let mut coll_params = list_params.clone();
    let mut item_params = list_params.clone();
    item_params.push(c.p.name(kind));
    if r.namespaced {
        coll_params.push(c.p.namespace());
        item_params.push(c.p.namespace());
    }
    items.push(PathItem {
        path: format!("{base}/watch/{ns}{}", r.plural),
        params: coll_params,
        ops: vec![watch(
            "watchlist",
            format!("watch{gv}{scope}{kind}List"),
            format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
        )],
    });
    items.push(PathItem {
        path: format!("{base}/watch/{ns}{}/{{name}}", r.plural),
        params: item_params,
        ops: vec![watch(
            "watch",
            format!("watch{gv}{scope}{kind}"),
            format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."),
        )],
    });
    if r.namespaced {
        items.push(PathItem {
            path: format!("{base}/watch/{}", r.plural),
            params: list_params,
            ops: vec![watch(
                "watchlist",
                format!("watch{gv}{kind}ListForAllNamespaces"),
                format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
            )],
        });
        items.push(list_all_namespaces(c, base));
    }
}

/// `GET {base}/{plural}`: a namespaced resource listed across namespaces.
fn list_all_namespaces(c: &Ctx<'_>, base: &str) -> PathItem {
    let r = c.r;
    let (gv, kind) = (&c.gv_id, &r.kind);
    let mut params = c.p.list();
    params.push(c.p.pretty());
    let mut op = c.op(
        "get",
        "list",
        format!("list{gv}{kind}ForAllNamespaces"),
        format!("list or watch objects of kind {kind}"),
    );
    op.output = Output::Stream;
    op.response = c.def(&r.group, &r.version, &r.list_kind);
    PathItem {
        path: format!("{base}/{}", r.plural),
        params,
        ops: vec![op],
    }
}

fn subresource_path(
    c: &Ctx<'_>,
    sub: &Subresource,
    item_path: &str,
    params: Vec<Param>,
    items: &mut Vec<PathItem>,
) {
    let r = c.r;
    let (gv, kind, scope) = (&c.gv_id, &r.kind, c.scope());
    let name = sub.name;
    let cap = capitalize(name);
    let (sg, sv) = if sub.version.is_empty() {
        (r.group.as_str(), r.version.as_str())
    } else {
        (sub.group.as_str(), sub.version.as_str())
    };
    let sub_gvk = Gvk::new(sg, sv, &sub.kind);
    let sub_def = c.def(sg, sv, &sub.kind);
    let path = format!("{item_path}/{name}");
    let mut ops = Vec::new();
    let with = |mut op: Op| {
        op.gvk = Some(sub_gvk.clone());
        op.response = sub_def.clone();
        op
    };
    match name {
        "exec" | "attach" | "portforward" | "proxy" => {
            let methods: &[(&'static str, &str)] = if name == "proxy" {
                &[
                    ("delete", "DELETE"),
                    ("get", "GET"),
                    ("head", "HEAD"),
                    ("options", "OPTIONS"),
                    ("patch", "PATCH"),
                    ("post", "POST"),
                    ("put", "PUT"),
                ]
            } else {
                &[("get", "GET"), ("post", "POST")]
            };
            let connect_params = c.p.connect(name);
            let make = |suffix: &str| {
                methods
                    .iter()
                    .map(|(m, upper)| {
                        let camel = capitalize(&upper.to_ascii_lowercase());
                        let mut op = with(c.op(
                            m,
                            "connect",
                            format!("connect{gv}{camel}{scope}{kind}{cap}{suffix}"),
                            format!("connect {upper} requests to {name} of {kind}"),
                        ));
                        op.output = Output::Connect;
                        op.response = None;
                        op.params = connect_params.clone();
                        op
                    })
                    .collect::<Vec<_>>()
            };
            ops = make("");
            if name == "proxy" {
                let mut with_path = params.clone();
                with_path.push(c.p.proxy_path());
                let mut path_ops = make("WithPath");
                for op in &mut path_ops {
                    op.params.retain(|p| p.name != "path");
                }
                items.push(PathItem {
                    path: format!("{path}/{{path}}"),
                    params: with_path,
                    ops: path_ops,
                });
            }
        }
        "log" => {
            let mut op = with(c.op(
                "get",
                "get",
                format!("read{gv}{scope}{kind}Log"),
                format!("read log of the specified {kind}"),
            ));
            op.output = Output::Text;
            op.response = None;
            op.params = c.p.log();
            ops.push(op);
        }
        _ => {
            for verb in &sub.verbs {
                let op = match *verb {
                    "get" => with(c.op(
                        "get",
                        "get",
                        format!("read{gv}{scope}{kind}{cap}"),
                        format!("read {name} of the specified {kind}"),
                    )),
                    "update" => {
                        let mut op = with(c.op(
                            "put",
                            "put",
                            format!("replace{gv}{scope}{kind}{cap}"),
                            format!("replace {name} of the specified {kind}"),
                        ));
                        op.params = c.p.write(false);
                        op.body = sub_def.clone().map_or(Body::None, Body::Object);
                        op.codes = REPLACED;
                        op
                    }
                    "patch" => {
                        let mut op = with(c.op(
                            "patch",
                            "patch",
                            format!("patch{gv}{scope}{kind}{cap}"),
                            format!("partially update {name} of the specified {kind}"),
                        ));
                        op.params = c.p.write(true);
                        op.body = Body::Patch;
                        op.codes = REPLACED;
                        op
                    }
                    "create" => {
                        let mut op = with(c.op(
                            "post",
                            "post",
                            format!("create{gv}{scope}{kind}{cap}"),
                            format!("create {name} of {} {kind}", article(kind)),
                        ));
                        op.params = c.p.write(false);
                        op.body = sub_def.clone().map_or(Body::None, Body::Object);
                        op.codes = CREATED;
                        op
                    }
                    _ => continue,
                };
                ops.push(op);
            }
        }
    }
    if !ops.is_empty() {
        items.push(PathItem { path, params, ops });
    }
}

/// The parameter list of an operation, sorted like upstream's.
pub(super) fn sorted(mut params: Vec<Param>) -> Vec<Param> {
    params.sort_by(|a, b| a.name.cmp(&b.name));
    params
}

/// The definitions an operation refers to.
pub(super) fn op_refs(op: &Op) -> Vec<String> {
    let mut out: Vec<String> = op.response.iter().cloned().collect();
    match &op.body {
        Body::Object(d) => out.push(d.clone()),
        Body::Patch => out.push(super::schemas::PATCH.into()),
        Body::Delete => out.push(DELETE_OPTIONS.into()),
        Body::None => {}
    }
    out
}
