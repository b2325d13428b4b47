//! Operation parameters. The delete options' descriptions come from the
//! `DeleteOptions` schema; the others are ours, describing what the server
//! does with each parameter.

use std::collections::BTreeMap;

use serde_json::Value;

use super::schemas::DELETE_OPTIONS;

/// Where a parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loc {
    Path,
    Query,
}

#[derive(Clone, Debug)]
pub(super) struct Param {
    pub name: String,
    pub loc: Loc,
    /// `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub description: String,
    pub required: bool,
}

fn query(name: &str, ty: &'static str, description: &str) -> Param {
    Param {
        name: name.to_string(),
        loc: Loc::Query,
        ty,
        description: description.to_string(),
        required: false,
    }
}

const ALLOW_WATCH_BOOKMARKS: &str = "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers may send bookmarks at their discretion; clients must not rely on their timing. Ignored when this is not a watch.";
const CONTINUE: &str = "The continue token returned in the metadata of a previous, limited list response: the server answers with the next chunk of the same consistent list. An expired token yields 410 Gone. Not supported when watch is true.";
const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters.";
const FIELD_MANAGER_PATCH: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters. Required for apply requests (application/apply-patch), optional for the other patch types.";
const FIELD_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.";
const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: unknown fields are dropped and duplicate fields resolved silently (last one wins). - Warn: the same, with a warning header for each unknown or duplicate field (the default). - Strict: the request fails with 400 BadRequest listing every unknown and duplicate field.";
const FORCE: &str = "Force is going to \"force\" Apply requests: the applier takes over fields owned by other managers instead of failing with a conflict. Must be unset for non-apply patch requests.";
const LABEL_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.";
const LIMIT: &str = "limit is the maximum number of objects to return in one list response. When more exist, the response carries a continue token for the next chunk; chunks of one list are a consistent snapshot. Not supported when watch is true.";
const NAMESPACE: &str = "object name and auth scope, such as for teams and projects";
const PRETTY: &str = "If 'true', then the output is pretty printed.";
const RESOURCE_VERSION: &str = "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset";
const RESOURCE_VERSION_MATCH: &str = "resourceVersionMatch determines how resourceVersion is applied to list calls (Exact or NotOlderThan). See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset";
const SEND_INITIAL_EVENTS: &str = "sendInitialEvents=true may be set together with watch=true: the watch starts with synthetic ADDED events for the current objects, followed by a BOOKMARK annotated \"k8s.io/initial-events-end\": \"true\", then proceeds as usual. Requires resourceVersionMatch=NotOlderThan.";
const TIMEOUT_SECONDS: &str = "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.";
const WATCH: &str = "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.";

/// Descriptions of the delete options, read from the `DeleteOptions` schema.
pub(super) struct Params {
    delete: BTreeMap<String, (String, &'static str)>,
}

impl Params {
    pub(super) fn new(definitions: &BTreeMap<String, Value>) -> Params {
        let mut delete = BTreeMap::new();
        for (name, ty) in [
            ("gracePeriodSeconds", "integer"),
            (
                "ignoreStoreReadErrorWithClusterBreakingPotential",
                "boolean",
            ),
            ("orphanDependents", "boolean"),
            ("propagationPolicy", "string"),
        ] {
            let d = definitions
                .get(DELETE_OPTIONS)
                .and_then(|d| d.pointer(&format!("/properties/{name}/description")))
                .and_then(Value::as_str)
                .unwrap_or_default();
            delete.insert(name.to_string(), (d.to_string(), ty));
        }
        Params { delete }
    }

    fn delete_param(&self, name: &str) -> Param {
        let (d, ty) = self
            .delete
            .get(name)
            .cloned()
            .unwrap_or((String::new(), "string"));
        query(name, ty, &d)
    }

    pub(super) fn pretty(&self) -> Param {
        query("pretty", "string", PRETTY)
    }

    pub(super) fn namespace(&self) -> Param {
        Param {
            loc: Loc::Path,
            required: true,
            ..query("namespace", "string", NAMESPACE)
        }
    }

    pub(super) fn name(&self, kind: &str) -> Param {
        Param {
            loc: Loc::Path,
            required: true,
            ..query("name", "string", &format!("name of the {kind}"))
        }
    }

    pub(super) fn proxy_path(&self) -> Param {
        Param {
            loc: Loc::Path,
            required: true,
            ..query("path", "string", "path to the resource")
        }
    }

    /// The parameters of list and watch.
    pub(super) fn list(&self) -> Vec<Param> {
        vec![
            query("allowWatchBookmarks", "boolean", ALLOW_WATCH_BOOKMARKS),
            query("continue", "string", CONTINUE),
            query("fieldSelector", "string", FIELD_SELECTOR),
            query("labelSelector", "string", LABEL_SELECTOR),
            query("limit", "integer", LIMIT),
            query("resourceVersion", "string", RESOURCE_VERSION),
            query("resourceVersionMatch", "string", RESOURCE_VERSION_MATCH),
            query("sendInitialEvents", "boolean", SEND_INITIAL_EVENTS),
            query("timeoutSeconds", "integer", TIMEOUT_SECONDS),
            query("watch", "boolean", WATCH),
        ]
    }

    /// The parameters of create, update and (with `patch`) patch.
    pub(super) fn write(&self, patch: bool) -> Vec<Param> {
        let mut v = vec![
            query("dryRun", "string", DRY_RUN),
            query(
                "fieldManager",
                "string",
                if patch {
                    FIELD_MANAGER_PATCH
                } else {
                    FIELD_MANAGER
                },
            ),
            query("fieldValidation", "string", FIELD_VALIDATION),
        ];
        if patch {
            v.push(query("force", "boolean", FORCE));
        }
        v
    }

    /// The parameters of delete.
    pub(super) fn delete(&self) -> Vec<Param> {
        let mut v = vec![query("dryRun", "string", DRY_RUN)];
        for name in [
            "gracePeriodSeconds",
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "orphanDependents",
            "propagationPolicy",
        ] {
            v.push(self.delete_param(name));
        }
        v
    }

    /// The parameters of deletecollection: delete's and list's.
    pub(super) fn delete_collection(&self) -> Vec<Param> {
        let mut v = self.delete();
        v.extend(
            self.list()
                .into_iter()
                .filter(|p| !matches!(p.name.as_str(), "allowWatchBookmarks" | "watch")),
        );
        v
    }

    /// The query parameters of a connect subresource.
    pub(super) fn connect(&self, sub: &str) -> Vec<Param> {
        let b = |n: &str, d: &str| query(n, "boolean", d);
        let container = query(
            "container",
            "string",
            "The container in which to execute the command. Defaults to only container if there is only one container in the pod.",
        );
        match sub {
            "exec" => vec![
                query(
                    "command",
                    "string",
                    "Command is the remote command to execute. argv array. Not executed within a shell.",
                ),
                container,
                b(
                    "stderr",
                    "Redirect the standard error stream of the pod for this call.",
                ),
                b(
                    "stdin",
                    "Redirect the standard input stream of the pod for this call. Defaults to false.",
                ),
                b(
                    "stdout",
                    "Redirect the standard output stream of the pod for this call.",
                ),
                b(
                    "tty",
                    "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false.",
                ),
            ],
            "attach" => vec![
                container,
                b(
                    "stderr",
                    "Stderr if true indicates that stderr is to be redirected for the attach call. Defaults to true.",
                ),
                b(
                    "stdin",
                    "Stdin if true, redirects the standard input stream of the pod for this call. Defaults to false.",
                ),
                b(
                    "stdout",
                    "Stdout if true indicates that stdout is to be redirected for the attach call. Defaults to true.",
                ),
                b(
                    "tty",
                    "TTY if true indicates that a tty will be allocated for the attach call. This is passed through the container runtime so the tty is allocated on the worker node by the container runtime. Defaults to false.",
                ),
            ],
            "portforward" => vec![query(
                "ports",
                "integer",
                "List of ports to forward Required when using WebSockets",
            )],
            "proxy" => vec![query(
                "path",
                "string",
                "Path is the URL path to use for the current proxy request.",
            )],
            _ => vec![],
        }
    }

    /// The query parameters of `pods/log`.
    pub(super) fn log(&self) -> Vec<Param> {
        vec![
            query(
                "container",
                "string",
                "The container for which to stream logs. Defaults to only container if there is one container in the pod.",
            ),
            query(
                "follow",
                "boolean",
                "Follow the log stream of the pod. Defaults to false.",
            ),
            query(
                "insecureSkipTLSVerifyBackend",
                "boolean",
                "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to.",
            ),
            query(
                "limitBytes",
                "integer",
                "If set, the number of bytes to read from the server before terminating the log output.",
            ),
            query(
                "previous",
                "boolean",
                "Return previous terminated container logs. Defaults to false.",
            ),
            query(
                "sinceSeconds",
                "integer",
                "A relative time in seconds before the current time from which to show logs.",
            ),
            query(
                "stream",
                "string",
                "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\". Defaults to \"All\".",
            ),
            query(
                "tailLines",
                "integer",
                "If set, the number of lines from the end of the logs to show.",
            ),
            query(
                "timestamps",
                "boolean",
                "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.",
            ),
        ]
    }
}
