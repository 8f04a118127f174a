//! `docker-compose.yml`, the `Dockerfile` and `nats/cluster/`, checked
//! without Docker: every service's image, dependencies and health check,
//! the worker replicas, each service's own NATS user and Vault identity,
//! and that no secret is written in the file. Where a `docker` binary with
//! the compose plugin exists, `docker compose config -q` checks the file
//! against Compose's own schema too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::{Mapping, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compose_text() -> String {
    read("docker-compose.yml")
}

/// The compose file with its anchors and merge keys (`<<`) resolved, as
/// Compose reads it.
fn compose() -> Value {
    let mut value: Value =
        serde_norway::from_str(&compose_text()).expect("docker-compose.yml parses");
    value.apply_merge().expect("merge keys resolve");
    // apply_merge resolves `<<` on the mappings it reaches from the root;
    // a service's `environment` merged from an anchor is reached as well.
    value
}

fn services(compose: &Value) -> BTreeMap<String, Mapping> {
    compose
        .get("services")
        .and_then(Value::as_mapping)
        .expect("a `services` mapping")
        .iter()
        .map(|(name, def)| {
            let name = name.as_str().expect("service names are strings").to_owned();
            let def = def
                .as_mapping()
                .unwrap_or_else(|| panic!("service {name} is a mapping"))
                .clone();
            (name, def)
        })
        .collect()
}

fn str_field<'a>(def: &'a Mapping, key: &str) -> Option<&'a str> {
    def.get(key).and_then(Value::as_str)
}

/// A one-shot job: it runs to completion and is never restarted.
fn is_one_shot(def: &Mapping) -> bool {
    str_field(def, "restart") == Some("no")
}

/// The services that run the fleet image.
fn is_fleet(def: &Mapping) -> bool {
    str_field(def, "image").is_some_and(|image| image.contains("connector-fleet"))
}

/// `environment` as name → value (`None`: passed through from the caller's
/// environment), in either of Compose's two forms.
fn environment(def: &Mapping) -> BTreeMap<String, Option<String>> {
    match def.get("environment") {
        None => BTreeMap::new(),
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(k, v)| {
                let key = k.as_str().expect("variable names are strings").to_owned();
                let value = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    Value::Bool(b) => Some(b.to_string()),
                    Value::Number(n) => Some(n.to_string()),
                    other => panic!("{key}: unexpected value {other:?}"),
                };
                (key, value)
            })
            .collect(),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(|item| {
                let item = item.as_str().expect("environment entries are strings");
                match item.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (item.to_owned(), None),
                }
            })
            .collect(),
        Some(other) => panic!("unexpected environment {other:?}"),
    }
}

/// `depends_on` as target → condition (the short list form means
/// `service_started`).
fn depends_on(def: &Mapping) -> BTreeMap<String, String> {
    match def.get("depends_on") {
        None => BTreeMap::new(),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(|t| (t.as_str().unwrap().to_owned(), "service_started".to_owned()))
            .collect(),
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(target, spec)| {
                let condition = spec
                    .get("condition")
                    .and_then(Value::as_str)
                    .unwrap_or("service_started");
                (target.as_str().unwrap().to_owned(), condition.to_owned())
            })
            .collect(),
        Some(other) => panic!("unexpected depends_on {other:?}"),
    }
}

/// The volumes a service mounts: (source, target, read-only), from the
/// short `source:target[:mode]` form.
fn mounts(def: &Mapping) -> Vec<(String, String, bool)> {
    let Some(list) = def.get("volumes").and_then(Value::as_sequence) else {
        return Vec::new();
    };
    list.iter()
        .map(|entry| {
            let entry = entry.as_str().expect("volumes use the short form");
            let parts: Vec<&str> = entry.split(':').collect();
            assert!(
                (2..=3).contains(&parts.len()),
                "volume {entry}: source:target[:mode]"
            );
            let read_only = parts
                .get(2)
                .is_some_and(|mode| mode.split(',').any(|m| m == "ro"));
            (parts[0].to_owned(), parts[1].to_owned(), read_only)
        })
        .collect()
}

fn healthcheck_test(def: &Mapping) -> Option<Vec<String>> {
    let test = def.get("healthcheck")?.get("test")?;
    match test {
        Value::Sequence(parts) => Some(
            parts
                .iter()
                .map(|p| p.as_str().expect("test arguments are strings").to_owned())
                .collect(),
        ),
        Value::String(s) => Some(vec!["CMD-SHELL".to_owned(), s.clone()]),
        other => panic!("unexpected healthcheck test {other:?}"),
    }
}

/// One `${...}` in the file: the variable and what follows its name
/// (`:?message`, `:-default`, or nothing).
#[derive(Debug)]
struct Interpolation {
    name: String,
    rest: String,
}

fn interpolations(text: &str) -> Vec<Interpolation> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        let after = &rest[start + 1..];
        if let Some(escaped) = after.strip_prefix('$') {
            rest = escaped;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            assert!(
                !after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'),
                "write ${{VAR}}, not $VAR, so every interpolation is checked: {}",
                &rest[start..(start + 40).min(rest.len())]
            );
            rest = after;
            continue;
        };
        let end = body.find('}').expect("every ${ has its }");
        let inner = &body[..end];
        let name_len = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        found.push(Interpolation {
            name: inner[..name_len].to_owned(),
            rest: inner[name_len..].to_owned(),
        });
        rest = &body[end + 1..];
    }
    found
}

/// A variable name that holds a secret.
fn names_a_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "_KEY", "CREDENTIAL"]
        .iter()
        .any(|word| upper.contains(word))
        && !upper.ends_with("_FILE")
        && !upper.ends_with("_ID")
}

/// Text without YAML comments (a `#` at the start of a line or after a
/// space), for checks that must not read the explanations.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with('#') {
                ""
            } else if let Some(at) = line.find(" #") {
                &line[..at]
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const FLEET_SERVICES: [&str; 4] = ["provision", "gateway", "bridge", "worker"];
const EXPECTED: [&str; 8] = [
    "nats",
    "postgres",
    "openbao",
    "openbao-init",
    "provision",
    "gateway",
    "bridge",
    "worker",
];

#[test]
fn compose_runs_the_whole_fleet_and_every_service_has_an_image() {
    let services = services(&compose());
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, EXPECTED.into_iter().collect(), "services");

    for (name, def) in &services {
        let image = str_field(def, "image");
        assert!(
            image.is_some() || def.contains_key("build"),
            "{name} has neither image nor build"
        );
        if let Some(image) = image {
            let tag = image.rsplit_once(':').map(|(_, tag)| tag);
            assert!(
                tag.is_some_and(|t| !t.is_empty() && t != "latest"),
                "{name}: pin the image's version ({image})"
            );
        }
    }
    // The fleet's services run one image, built from the repository's
    // Dockerfile.
    let fleet_images: BTreeSet<&str> = FLEET_SERVICES
        .iter()
        .map(|name| {
            let def = &services[*name];
            assert!(is_fleet(def), "{name} runs the fleet image");
            let build = def
                .get("build")
                .unwrap_or_else(|| panic!("{name} builds the image"));
            assert_eq!(
                build.get("context").and_then(Value::as_str),
                Some("."),
                "{name}"
            );
            assert_eq!(
                build.get("dockerfile").and_then(Value::as_str),
                Some("Dockerfile"),
                "{name}"
            );
            str_field(def, "image").unwrap()
        })
        .collect();
    assert_eq!(fleet_images.len(), 1, "one fleet image: {fleet_images:?}");
    for name in FLEET_SERVICES {
        let command = services[name]
            .get("command")
            .and_then(Value::as_sequence)
            .and_then(|c| c.first())
            .and_then(Value::as_str);
        assert_eq!(command, Some(name), "{name} runs `fleet {name}`");
    }
}

#[test]
fn compose_dependencies_exist_wait_for_health_or_completion_and_have_no_cycle() {
    let services = services(&compose());
    // Every edge waits for what the dependent needs: a long-running
    // service to be healthy, a one-shot job to have succeeded. The one
    // exception: openbao-init must start while OpenBao is still sealed,
    // which its health check reports as unhealthy.
    let exceptions: BTreeSet<(&str, &str)> = [("openbao-init", "openbao")].into();
    for (name, def) in &services {
        for (target, condition) in depends_on(def) {
            let target_def = services
                .get(&target)
                .unwrap_or_else(|| panic!("{name} depends on {target}, which does not exist"));
            let expected = if exceptions.contains(&(name.as_str(), target.as_str())) {
                "service_started"
            } else if is_one_shot(target_def) {
                "service_completed_successfully"
            } else {
                "service_healthy"
            };
            assert_eq!(condition, expected, "{name} -> {target}");
        }
    }

    // What each service cannot work without.
    let needs: [(&str, &[&str]); 6] = [
        ("openbao-init", &["openbao"]),
        ("provision", &["nats"]),
        (
            "gateway",
            &["nats", "postgres", "openbao", "openbao-init", "provision"],
        ),
        ("bridge", &["nats", "postgres", "provision"]),
        (
            "worker",
            &["nats", "postgres", "openbao", "openbao-init", "provision"],
        ),
        ("nats", &[]),
    ];
    for (name, wanted) in needs {
        let actual: BTreeSet<String> = depends_on(&services[name]).into_keys().collect();
        let wanted: BTreeSet<String> = wanted.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(actual, wanted, "{name} depends on");
    }

    // No cycle: repeatedly remove services whose dependencies are all
    // removed.
    let mut left: BTreeMap<String, BTreeSet<String>> = services
        .iter()
        .map(|(name, def)| (name.clone(), depends_on(def).into_keys().collect()))
        .collect();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(name, _)| name.clone())
            .collect();
        assert!(
            !ready.is_empty(),
            "dependency cycle among {:?}",
            left.keys()
        );
        for name in ready {
            left.remove(&name);
        }
    }
}

#[test]
fn compose_long_running_services_have_health_checks_and_jobs_run_once() {
    let services = services(&compose());
    let jobs: BTreeSet<&str> = services
        .iter()
        .filter(|(_, def)| is_one_shot(def))
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(jobs, ["openbao-init", "provision"].into(), "one-shot jobs");

    for (name, def) in &services {
        if is_one_shot(def) {
            continue;
        }
        let test = healthcheck_test(def).unwrap_or_else(|| panic!("{name} has no health check"));
        assert!(
            matches!(test.first().map(String::as_str), Some("CMD" | "CMD-SHELL")) && test.len() > 1,
            "{name}: health check {test:?}"
        );
        assert_ne!(
            def.get("healthcheck").and_then(|h| h.get("disable")),
            Some(&Value::Bool(true)),
            "{name}: health check disabled"
        );
        assert!(
            matches!(str_field(def, "restart"), Some("unless-stopped" | "always")),
            "{name} restarts after a crash"
        );
    }

    // The fleet image has no shell and no curl: its services ask
    // `fleet healthcheck` for their own readiness, on the port they listen on.
    let listen = [
        ("gateway", "FLEET_GATEWAY_LISTEN"),
        ("bridge", "FLEET_BRIDGE__LISTEN"),
        ("worker", "FLEET_WORKER_LISTEN"),
    ];
    for (name, variable) in listen {
        let def = &services[name];
        let env = environment(def);
        let address = env
            .get(variable)
            .cloned()
            .flatten()
            .unwrap_or_else(|| panic!("{name} sets {variable}"));
        let port = address.rsplit_once(':').expect("host:port").1;
        assert_eq!(
            healthcheck_test(def).unwrap(),
            [
                "CMD".to_owned(),
                "fleet".to_owned(),
                "healthcheck".to_owned(),
                format!("http://127.0.0.1:{port}/readyz"),
            ],
            "{name}"
        );
    }
}

#[test]
fn compose_runs_several_workers_and_publishes_no_worker_port() {
    let services = services(&compose());
    let worker = &services["worker"];
    let replicas = worker
        .get("deploy")
        .and_then(|d| d.get("replicas"))
        .and_then(Value::as_u64);
    assert_eq!(replicas, Some(3), "worker replicas");
    // Replicas cannot share a host port or a container name.
    assert!(!worker.contains_key("ports"), "worker publishes ports");
    assert!(
        !worker.contains_key("container_name"),
        "worker has a container_name"
    );
    // In-flight work gets the worker's grace period (20 s) after SIGTERM.
    assert_eq!(str_field(worker, "stop_grace_period"), Some("30s"));
}

#[test]
fn compose_secrets_come_only_from_required_variables() {
    let text = compose_text();
    let code = without_comments(&text);
    let found = interpolations(&code);
    assert!(!found.is_empty());
    for interpolation in &found {
        if names_a_secret(&interpolation.name) {
            assert!(
                interpolation.rest.starts_with(":?") && interpolation.rest.len() > 2,
                "${{{}{}}}: a secret must be required, with a message (`:?`)",
                interpolation.name,
                interpolation.rest
            );
        }
        assert!(
            !interpolation.rest.starts_with('?'),
            "${{{}{}}}: use `:?`, which also refuses an empty value",
            interpolation.name,
            interpolation.rest
        );
    }

    let services = services(&compose());
    for (name, def) in &services {
        for (key, value) in environment(def) {
            if !names_a_secret(&key) {
                continue;
            }
            // A secret is passed through from the caller (no value), or is
            // exactly one required variable.
            if let Some(value) = value {
                let inner = interpolations(&value);
                assert!(
                    inner.len() == 1
                        && value.starts_with("${")
                        && value.ends_with('}')
                        && inner[0].rest.starts_with(":?"),
                    "{name}: {key} is not a required variable: {value}"
                );
            }
        }
        let env = environment(def);
        // A URL's password is a required variable too.
        for (key, value) in &env {
            let Some(value) = value else { continue };
            if let Some((_, after_scheme)) = value.split_once("://")
                && let Some((userinfo, _)) = after_scheme.split_once('@')
                && let Some((_, password)) = userinfo.split_once(':')
            {
                let inner = interpolations(password);
                assert!(
                    inner.len() == 1 && inner[0].rest.starts_with(":?"),
                    "{name}: the password in {key} is not a required variable"
                );
            }
        }
        // The services never use OpenBao's root token.
        assert!(
            !env.contains_key("FLEET_VAULT__AUTH__TOKEN"),
            "{name} logs in to Vault with a token"
        );
        assert!(
            !env.contains_key("BAO_TOKEN") && !env.contains_key("VAULT_TOKEN"),
            "{name} holds a Vault token"
        );
    }

    // Nothing that looks like a credential is written out.
    for pattern in [
        "hvs.",
        "s.",
        "root_token:",
        "BEGIN PRIVATE KEY",
        "BEGIN RSA",
    ] {
        for line in code.lines() {
            let value = line.split_once(": ").map_or("", |(_, v)| v.trim());
            assert!(!value.starts_with(pattern), "a literal credential? {line}");
        }
    }
    assert!(
        !code.contains("-dev"),
        "OpenBao runs in server mode, not dev mode"
    );
}

#[test]
fn compose_services_log_in_to_nats_and_openbao_as_themselves() {
    let nats_conf = read("nats/nats-server.conf");
    let services = services(&compose());
    for name in FLEET_SERVICES {
        let env = environment(&services[name]);
        let get = |key: &str| env.get(key).cloned().flatten().unwrap_or_default();
        assert_eq!(get("FLEET_NATS__URL"), "nats://nats:4222", "{name}");
        // Provisioning needs the worker user's stream and consumer rights.
        let user = if name == "provision" { "worker" } else { name };
        assert_eq!(get("FLEET_NATS__USER"), user, "{name}: NATS user");
        assert!(
            nats_conf.contains(&format!("user: {user}\n")),
            "{user} is not a user of nats/nats-server.conf"
        );
        assert_eq!(
            get("FLEET_NATS__INBOX_PREFIX"),
            format!("_INBOX_{user}"),
            "{name}: inbox prefix"
        );
        let password_var = format!("FLEET_NATS_{}_PASSWORD", user.to_ascii_uppercase());
        assert!(
            get("FLEET_NATS__PASSWORD").starts_with(&format!("${{{password_var}:?")),
            "{name}: NATS password from {password_var}"
        );
        assert!(
            nats_conf.contains(&format!("password: ${password_var}\n")),
            "nats-server.conf reads {password_var}"
        );
    }

    // The services that use OpenBao log in with their own AppRole, whose
    // secret id openbao-init leaves in a volume only they mount.
    let init = &services["openbao-init"];
    let init_mounts = mounts(init);
    for name in ["gateway", "worker"] {
        let def = &services[name];
        let env = environment(def);
        let get = |key: &str| env.get(key).cloned().flatten().unwrap_or_default();
        assert_eq!(get("FLEET_VAULT__ADDR"), "http://openbao:8200", "{name}");
        assert_eq!(get("FLEET_VAULT__AUTH__METHOD"), "approle", "{name}");
        assert_eq!(
            get("FLEET_VAULT__AUTH__ROLE_ID"),
            format!("fleet-{name}"),
            "{name}"
        );
        assert!(
            repo().join(format!("vault/policies/{name}.hcl")).is_file(),
            "vault/policies/{name}.hcl"
        );
        let secret_file = get("FLEET_VAULT__AUTH__SECRET_ID_FILE");
        let (dir, file) = secret_file.rsplit_once('/').expect("an absolute path");
        assert_eq!(file, "secret_id", "{name}");
        let volume = format!("vault-{name}");
        assert!(
            mounts(def).contains(&(volume.clone(), dir.to_owned(), true)),
            "{name} mounts {volume} read-only at {dir}"
        );
        assert!(
            init_mounts
                .iter()
                .any(|(source, target, _)| *source == volume
                    && *target == format!("/handover/{name}")),
            "openbao-init writes {volume}"
        );
        // No other service sees this secret id.
        for (other, other_def) in &services {
            if other != name && other != "openbao-init" {
                assert!(
                    mounts(other_def)
                        .iter()
                        .all(|(source, _, _)| *source != volume),
                    "{other} mounts {volume}"
                );
            }
        }
    }
    for (name, def) in &services {
        if name != "openbao-init" {
            assert!(
                mounts(def)
                    .iter()
                    .all(|(source, _, _)| source != "openbao-init"),
                "{name} mounts the unseal key and root token"
            );
        }
    }
    // The bridge needs no Vault identity.
    let bridge = environment(&services["bridge"]);
    assert!(bridge.keys().all(|k| !k.starts_with("FLEET_VAULT__")));
}

#[test]
fn compose_volumes_are_declared_and_bind_mounts_exist() {
    let compose = compose();
    let declared: BTreeSet<String> = compose
        .get("volumes")
        .and_then(Value::as_mapping)
        .expect("top-level volumes")
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let mut used = BTreeSet::new();
    for (name, def) in services(&compose) {
        for (source, target, _) in mounts(&def) {
            if let Some(path) = source.strip_prefix("./") {
                assert!(
                    repo().join(path).exists(),
                    "{name} mounts ./{path}, which does not exist"
                );
            } else {
                assert!(
                    declared.contains(&source),
                    "{name}: volume {source} is not declared"
                );
                used.insert(source.clone());
            }
            assert!(target.starts_with('/'), "{name}: {target}");
        }
    }
    assert_eq!(used, declared, "declared volumes that no service uses");
}

/// The Dockerfile's stages: (`FROM` line, instructions).
fn dockerfile_stages() -> Vec<(String, Vec<String>)> {
    let text = read("Dockerfile");
    let mut stages: Vec<(String, Vec<String>)> = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() && logical.is_empty() {
            continue;
        }
        if let Some(continued) = trimmed.strip_suffix('\\') {
            logical.push_str(continued);
            logical.push(' ');
            continue;
        }
        logical.push_str(trimmed);
        let instruction = std::mem::take(&mut logical);
        if instruction.to_ascii_uppercase().starts_with("FROM ") {
            stages.push((instruction, Vec::new()));
        } else if let Some((_, body)) = stages.last_mut() {
            body.push(instruction);
        }
    }
    stages
}

#[test]
fn compose_image_runs_only_fleet_as_a_non_root_user() {
    let stages = dockerfile_stages();
    assert!(stages.len() >= 2, "a multi-stage build");
    let (from, runtime) = stages.last().unwrap();
    assert!(
        from.contains("distroless") || from.contains("slim"),
        "a small runtime image: {from}"
    );
    let users: Vec<&String> = runtime.iter().filter(|i| i.starts_with("USER ")).collect();
    let user = users.last().expect("the runtime stage sets USER");
    let name = user["USER ".len()..].split(':').next().unwrap().trim();
    assert!(
        !name.is_empty() && name != "root" && name != "0",
        "the runtime stage runs as root: {user}"
    );
    assert!(
        runtime.contains(&r#"ENTRYPOINT ["fleet"]"#.to_owned()),
        "ENTRYPOINT [\"fleet\"]"
    );
    let copies: Vec<&String> = runtime.iter().filter(|i| i.starts_with("COPY")).collect();
    assert_eq!(
        copies.len(),
        1,
        "the runtime stage copies only the binary: {copies:?}"
    );
    assert!(copies[0].ends_with("/usr/local/bin/fleet"), "{}", copies[0]);

    // The builder uses the toolchain rust-toolchain.toml pins, and the
    // lock file.
    let toolchain = read("rust-toolchain.toml");
    let channel = toolchain
        .lines()
        .find_map(|l| l.strip_prefix("channel = "))
        .expect("a channel")
        .trim_matches('"');
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("ARG RUST_VERSION={channel}\n")),
        "the Dockerfile builds with Rust {channel}"
    );
    let build = stages
        .iter()
        .flat_map(|(_, body)| body)
        .find(|i| i.contains("cargo build"))
        .expect("a cargo build");
    for flag in ["--release", "--locked", "-p fleet"] {
        assert!(build.contains(flag), "cargo build {flag}: {build}");
    }
    assert!(dockerfile.contains("SQLX_OFFLINE=true"));

    let ignore = read(".dockerignore");
    for path in ["/target", "/.tools", "/fuzz", ".git", ".env"] {
        assert!(
            ignore.lines().any(|l| l.trim() == path),
            ".dockerignore leaves out {path}"
        );
    }
}

#[test]
fn compose_nats_cluster_nodes_share_the_accounts_and_route_to_each_other() {
    let nodes = ["a", "b", "c"];
    let common = read("nats/cluster/cluster.conf");
    assert!(
        common.contains("include \"../nats-server.conf\""),
        "the cluster reuses the accounts and users of nats/nats-server.conf"
    );
    for node in nodes {
        assert!(
            common.contains(&format!("nats-route://nats-{node}:6222")),
            "route to nats-{node}"
        );
        let conf = read(&format!("nats/cluster/node-{node}.conf"));
        assert!(
            conf.contains(&format!("server_name: nats-{node}\n")),
            "node-{node}"
        );
        assert!(conf.contains("include \"cluster.conf\""), "node-{node}");
    }
    assert!(
        !common.contains("password: \"") && common.contains("$FLEET_NATS_ROUTE_PASSWORD"),
        "the route password comes from the environment"
    );
}

#[test]
fn compose_config_is_accepted_by_docker_where_it_exists() {
    let available = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        println!(
            "SKIPPED `docker compose config -q`: no `docker` binary with the compose plugin on PATH; \
             the parse checks above still ran"
        );
        return;
    }
    // Placeholder values for the required variables, so that only the
    // file's own validity is checked.
    let mut command = Command::new("docker");
    command
        .current_dir(repo())
        .args(["compose", "-f", "docker-compose.yml", "config", "-q"]);
    for interpolation in interpolations(&without_comments(&compose_text())) {
        if interpolation.rest.starts_with(":?") {
            command.env(
                &interpolation.name,
                "placeholder-value-for-the-check-0123456789",
            );
        }
    }
    let output = command.output().expect("docker compose config runs");
    assert!(
        output.status.success(),
        "docker compose config -q: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("docker compose config -q accepted docker-compose.yml");
}
