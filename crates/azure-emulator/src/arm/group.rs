//! One container group's state: its request, its provisioning state and instance
//! view, and how they change (pulls, starts, exits, stops, evictions), rendered as
//! the ACI JSON of the 2023-05-01 API.

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::spec;
use crate::time::rfc3339;

/// The exit code reported for containers that were killed from outside (a stop, a
/// delete, a Spot eviction): 128 + SIGKILL, as the engine reports them.
pub const KILLED_EXIT_CODE: i64 = 137;

/// Name of the group event (type `Warning`) written when an injected Spot eviction
/// stops a group. ACI documents that Spot groups can be evicted but not the event it
/// writes then; this name and its message are the emulator's own.
pub const SPOT_EVICTION_EVENT: &str = "SpotContainerGroupEvicted";

/// An instance-view event (`count`, `firstTimestamp`, `lastTimestamp`, `name`,
/// `message`, `type`). Repeats of the same name and message bump `count`.
#[derive(Clone, Debug)]
pub(crate) struct AciEvent {
    name: &'static str,
    warning: bool,
    message: String,
    count: u32,
    first: SystemTime,
    last: SystemTime,
}

impl AciEvent {
    fn json(&self) -> Value {
        json!({
            "count": self.count,
            "firstTimestamp": rfc3339(self.first, false),
            "lastTimestamp": rfc3339(self.last, false),
            "name": self.name,
            "message": self.message,
            "type": if self.warning { "Warning" } else { "Normal" },
        })
    }
}

fn push_event(events: &mut Vec<AciEvent>, name: &'static str, warning: bool, message: String) {
    let now = SystemTime::now();
    if let Some(e) = events.iter_mut().find(|e| e.name == name && e.message == message) {
        e.count += 1;
        e.last = now;
        return;
    }
    events.push(AciEvent { name, warning, message, count: 1, first: now, last: now });
}

/// A container's `currentState` or `previousState`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ContainerState {
    /// `Waiting`, `Running` or `Terminated`.
    pub(crate) state: &'static str,
    pub(crate) start: Option<SystemTime>,
    pub(crate) finish: Option<SystemTime>,
    pub(crate) exit_code: Option<i64>,
    pub(crate) detail: String,
}

impl ContainerState {
    fn waiting() -> Self {
        ContainerState { state: "Waiting", ..Default::default() }
    }

    fn json(&self) -> Value {
        let mut state = Map::new();
        state.insert("state".into(), self.state.into());
        if let Some(start) = self.start {
            state.insert("startTime".into(), rfc3339(start, true).into());
        }
        if let Some(code) = self.exit_code {
            state.insert("exitCode".into(), code.into());
        }
        if let Some(finish) = self.finish {
            state.insert("finishTime".into(), rfc3339(finish, true).into());
        }
        state.insert("detailStatus".into(), self.detail.clone().into());
        Value::Object(state)
    }
}

/// A container's instance view.
#[derive(Clone, Debug)]
pub(crate) struct ContainerView {
    pub(crate) current: ContainerState,
    pub(crate) previous: Option<ContainerState>,
    pub(crate) events: Vec<AciEvent>,
}

impl ContainerView {
    fn new() -> Self {
        ContainerView { current: ContainerState::waiting(), previous: None, events: Vec::new() }
    }

    pub(crate) fn event(&mut self, name: &'static str, warning: bool, message: String) {
        push_event(&mut self.events, name, warning, message);
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.current.state == "Terminated"
    }

    pub(crate) fn started(&mut self, at: SystemTime) {
        self.current =
            ContainerState { state: "Running", start: Some(at), ..ContainerState::default() };
        self.event("Started", false, "Started container".to_owned());
    }

    pub(crate) fn exited(&mut self, code: Option<i64>, at: SystemTime) {
        if self.is_terminated() {
            return;
        }
        let detail = match code {
            Some(0) => "Completed",
            _ => "Error",
        };
        self.current = ContainerState {
            state: "Terminated",
            start: self.current.start,
            finish: Some(at),
            exit_code: code,
            detail: detail.to_owned(),
        };
    }

    /// Killed from outside (stop, delete, eviction): Terminated with 137, and a
    /// `Killing` event saying why.
    pub(crate) fn killed(&mut self, detail: &str, why: &str, at: SystemTime) {
        if self.is_terminated() {
            return;
        }
        self.event("Killing", false, why.to_owned());
        self.current = ContainerState {
            state: "Terminated",
            start: self.current.start,
            finish: Some(at),
            exit_code: Some(KILLED_EXIT_CODE),
            detail: detail.to_owned(),
        };
    }

    fn json(&self) -> Value {
        let mut view = Map::new();
        view.insert("restartCount".into(), 0.into());
        view.insert("currentState".into(), self.current.json());
        if let Some(previous) = &self.previous {
            view.insert("previousState".into(), previous.json());
        }
        view.insert("events".into(), self.events.iter().map(AciEvent::json).collect());
        Value::Object(view)
    }
}

/// A container group as the emulator keeps it. `Debug` shows the body without its
/// secrets.
pub(crate) struct Group {
    /// Unique over the emulator's life; a PUT that replaces the group gets a new one.
    pub(crate) uid: u64,
    /// The resource group's name as the request that created the group wrote it.
    pub(crate) resource_group: String,
    pub(crate) name: String,
    /// The PUT body, secrets included (it is what runs, and what a repeated PUT is
    /// compared with).
    pub(crate) body: Value,
    pub(crate) spec: spec::GroupSpec,
    pub(crate) created: SystemTime,
    /// `Pending`, `Creating`, `Succeeded`, `Failed` or `Deleting`.
    pub(crate) provisioning: &'static str,
    /// The group's `instanceView.state`: `Pending`, `Running`, `Succeeded`, `Failed`
    /// or `Stopped`.
    pub(crate) state: &'static str,
    pub(crate) events: Vec<AciEvent>,
    pub(crate) containers: Vec<ContainerView>,
    /// `arm/logs/<uid>` under the data directory, where containers' output goes.
    pub(crate) log_dir: String,
    /// A stop recycled the containers without keeping their state (an injected
    /// fault): GET shows no instance view for them.
    pub(crate) containers_forgotten: bool,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("uid", &self.uid)
            .field("resource_group", &self.resource_group)
            .field("name", &self.name)
            .field("body", &spec::redacted(&self.body))
            .field("spec", &self.spec)
            .field("created", &self.created)
            .field("provisioning", &self.provisioning)
            .field("state", &self.state)
            .field("events", &self.events)
            .field("containers", &self.containers)
            .field("log_dir", &self.log_dir)
            .field("containers_forgotten", &self.containers_forgotten)
            .finish()
    }
}

impl Group {
    pub(crate) fn new(
        uid: u64,
        resource_group: &str,
        name: &str,
        body: Value,
        spec: spec::GroupSpec,
    ) -> Self {
        let containers = spec.containers.iter().map(|_| ContainerView::new()).collect();
        Group {
            uid,
            resource_group: resource_group.to_owned(),
            name: name.to_owned(),
            body,
            spec,
            created: SystemTime::now(),
            provisioning: "Pending",
            state: "Pending",
            events: Vec::new(),
            containers,
            log_dir: format!("arm/logs/{uid}"),
            containers_forgotten: false,
        }
    }

    /// Whether the group still runs or is about to: a different PUT is refused then.
    pub(crate) fn is_active(&self) -> bool {
        matches!(self.state, "Pending" | "Running") && self.provisioning != "Failed"
    }

    pub(crate) fn event(&mut self, name: &'static str, warning: bool, message: String) {
        push_event(&mut self.events, name, warning, message);
    }

    /// Every container ran and exited 0 (instant mode): the whole life in one step.
    pub(crate) fn complete_instantly(&mut self) {
        self.start_instantly();
        self.finish_instant_run();
    }

    /// Every container pulled its image and started (instant mode, with a run time).
    pub(crate) fn start_instantly(&mut self) {
        let now = SystemTime::now();
        for (view, def) in self.containers.iter_mut().zip(&self.spec.containers) {
            view.event("Pulling", false, format!("pulling image \"{}\"", def.image_text));
            view.event(
                "Pulled",
                false,
                format!("Successfully pulled image \"{}\"", def.image_text),
            );
            view.started(now);
        }
        self.provisioning = "Succeeded";
        self.state = "Running";
    }

    /// The instant run is over: every container exits 0, unless the group was
    /// stopped (its containers were killed, which [`ContainerView::exited`] leaves
    /// alone, and [`Group::settle`] leaves a `Stopped` group so) or is being deleted.
    pub(crate) fn finish_instant_run(&mut self) {
        if self.provisioning == "Deleting" {
            return;
        }
        let now = SystemTime::now();
        for view in &mut self.containers {
            view.exited(Some(0), now);
        }
        self.settle();
    }

    /// The containers started running: `Running` (and provisioned) once all have.
    pub(crate) fn container_started(&mut self, index: usize, at: SystemTime) {
        self.containers[index].started(at);
        self.state = "Running";
        if self.containers.iter().all(|c| c.current.start.is_some()) {
            self.provisioning = "Succeeded";
        }
    }

    /// Sets `Succeeded` or `Failed` once every container has terminated.
    pub(crate) fn settle(&mut self) {
        if self.state == "Stopped" || !self.containers.iter().all(ContainerView::is_terminated) {
            return;
        }
        let all_zero = self.containers.iter().all(|c| c.current.exit_code == Some(0));
        self.state = if all_zero { "Succeeded" } else { "Failed" };
        if self.provisioning != "Failed" {
            self.provisioning = "Succeeded";
        }
    }

    /// The image of the containers at `indexes` could not be pulled: they wait with
    /// `ErrImagePull` and the deployment fails, as ACI reports it.
    pub(crate) fn pull_failed(&mut self, indexes: &[usize], image: &str, reason: &str) {
        for &i in indexes {
            let view = &mut self.containers[i];
            view.event("Failed", true, format!("Failed to pull image \"{image}\": {reason}"));
            view.current =
                ContainerState { detail: "ErrImagePull".into(), ..ContainerState::waiting() };
        }
        self.provisioning = "Failed";
    }

    /// A container could not be started (its program does not exist, say): it is
    /// terminated with `exit_code` and Docker's words, the others are killed.
    pub(crate) fn start_failed(&mut self, index: usize, exit_code: i64, message: String) {
        let now = SystemTime::now();
        let view = &mut self.containers[index];
        view.event("Failed", true, message);
        view.current = ContainerState {
            state: "Terminated",
            start: None,
            finish: Some(now),
            exit_code: Some(exit_code),
            detail: "Error".to_owned(),
        };
        for view in &mut self.containers {
            view.killed("Killed", "Killing container.", now);
        }
        self.provisioning = "Failed";
        self.state = "Failed";
    }

    /// The platform failed (Docker unreachable, say): a group event, and the
    /// containers that ran are killed.
    pub(crate) fn platform_failed(&mut self, message: String) {
        let now = SystemTime::now();
        self.event("Failed", true, message);
        for view in self.containers.iter_mut().filter(|c| c.current.start.is_some()) {
            view.killed("Killed", "Killing container.", now);
        }
        self.provisioning = "Failed";
        self.state = "Failed";
    }

    /// `POST …/stop`: every container still alive is killed; the group is Stopped.
    pub(crate) fn stopped(&mut self) {
        let now = SystemTime::now();
        for view in &mut self.containers {
            view.killed("Killed", "Killing container.", now);
        }
        self.state = "Stopped";
        if matches!(self.provisioning, "Pending" | "Creating") {
            self.provisioning = "Succeeded";
        }
    }

    /// A Spot eviction: containers killed, the group Stopped, with an event saying so.
    pub(crate) fn evicted(&mut self) {
        let now = SystemTime::now();
        for view in &mut self.containers {
            let why = "Killing container: the Spot container group was evicted.";
            view.killed("Evicted", why, now);
        }
        self.event(
            SPOT_EVICTION_EVENT,
            true,
            "The Spot container group was evicted because Azure needed the capacity back; its \
             containers were stopped."
                .to_owned(),
        );
        self.state = "Stopped";
    }

    /// The resource id.
    pub(crate) fn id(&self, subscription: &str) -> String {
        format!(
            "/subscriptions/{subscription}/resourceGroups/{}/providers/\
             Microsoft.ContainerInstance/containerGroups/{}",
            self.resource_group, self.name
        )
    }

    /// The group as GET returns it: the request without its secrets, ACI's defaults,
    /// the provisioning state and the instance views.
    pub(crate) fn json(&self, subscription: &str) -> Value {
        let mut root = spec::redacted(&self.body);
        let mut out = Map::new();
        out.insert("id".into(), self.id(subscription).into());
        out.insert("name".into(), self.name.clone().into());
        out.insert("type".into(), "Microsoft.ContainerInstance/containerGroups".into());
        out.insert("location".into(), self.spec.location.clone().into());
        let mut props = match root.remove("properties") {
            Some(Value::Object(props)) => props,
            _ => Map::new(),
        };
        for (key, value) in root {
            out.insert(key, value);
        }

        props.insert("provisioningState".into(), self.provisioning.into());
        props.entry("sku").or_insert_with(|| "Standard".into());
        props.entry("restartPolicy").or_insert_with(|| "Always".into());
        props.entry("initContainers").or_insert_with(|| json!([]));
        if let Some(Value::Array(containers)) = props.get_mut("containers") {
            for (container, view) in containers.iter_mut().zip(&self.containers) {
                let Some(Value::Object(cp)) = container.get_mut("properties") else { continue };
                cp.entry("command").or_insert_with(|| json!([]));
                cp.entry("ports").or_insert_with(|| json!([]));
                cp.entry("environmentVariables").or_insert_with(|| json!([]));
                if !self.containers_forgotten {
                    cp.insert("instanceView".into(), view.json());
                }
            }
        }
        props.insert(
            "instanceView".into(),
            json!({
                "events": self.events.iter().map(AciEvent::json).collect::<Vec<_>>(),
                "state": self.state,
            }),
        );
        out.insert("properties".into(), Value::Object(props));
        Value::Object(out)
    }

    /// The group's instance-view events.
    pub(crate) fn events_json(&self) -> Value {
        self.events.iter().map(AciEvent::json).collect()
    }

    /// The message of the last warning, for a failed asynchronous operation.
    pub(crate) fn last_warning(&self) -> Option<String> {
        self.containers
            .iter()
            .flat_map(|c| &c.events)
            .chain(&self.events)
            .filter(|e| e.warning)
            .max_by_key(|e| e.last)
            .map(|e| e.message.clone())
    }
}
