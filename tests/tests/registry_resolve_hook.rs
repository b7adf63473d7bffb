//! The resolve hook, checked with varlinkctl 257: the filter follows the machines, machine
//! names get address records, names below them NXDOMAIN, everything else passes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use berth_interfaces::client::MachineProxy;
use berth_interfaces::machine::MachineClass;
use berth_tests::clients::varlinkctl_call;
use berth_tests::daemon::Registry;
use berth_tests::machines::machine;
use berth_tests::netns::NetnsLeader;
use berth_tests::process::Proc;
use berth_tests::require;
use serde_json::{Value, json};

fn hook(registry: &Registry) -> std::path::PathBuf {
    registry
        .runtime_dir()
        .join("systemd/resolve.hook/io.systemd.Machine")
}

fn resolve(registry: &Registry, name: &str, rr_type: u16) -> Value {
    let question = json!({"question": [{"key": {"class": 1, "type": rr_type, "name": name}}]});
    let run = varlinkctl_call(
        &hook(registry),
        "io.systemd.Resolve.Hook.ResolveRecord",
        &question.to_string(),
        false,
    );
    assert!(run.success, "{run:?}");
    run.json()
}

#[tokio::test]
async fn machine_names_resolve_and_names_below_them_do_not_exist() {
    if !(require::root() && require::varlinkctl() && require::program("unshare")) {
        return;
    }
    let registry = Registry::start();
    let leader = NetnsLeader::start();
    leader.ip(&["addr", "add", "198.51.100.7/24", "dev", "veth0"]);
    leader.ip(&["addr", "add", "2001:db8::7/64", "dev", "veth0"]);
    let mut conn = registry.connect().await;
    conn.register(&machine("web", MachineClass::Container, leader.pid()))
        .await
        .unwrap()
        .unwrap();

    let a = resolve(&registry, "web", 1);
    assert_eq!(a["rcode"], 0);
    let answers = a["answer"].as_array().unwrap();
    assert_eq!(answers.len(), 1, "{a}");
    assert_eq!(
        answers[0]["rr"],
        json!({"key": {"class": 1, "type": 1, "name": "web"}, "address": [198, 51, 100, 7]})
    );
    // "web" as labels, type A, class IN, TTL 0, 4 bytes of address.
    assert_eq!(answers[0]["raw"], "A3dlYgAAAQABAAAAAAAExjNkBw==");

    let aaaa = resolve(&registry, "web", 28);
    let v6: Vec<Value> = aaaa["answer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rr"]["address"].clone())
        .collect();
    assert!(
        v6.contains(&json!([32, 1, 13, 184, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7])),
        "{aaaa}"
    );

    assert_eq!(resolve(&registry, "www.web", 1), json!({"rcode": 3}));
    assert_eq!(resolve(&registry, "example.org", 1), json!({}));
    let txt = resolve(&registry, "web", 16);
    assert_eq!(txt, json!({"rcode": 0, "answer": []}));

    let empty = varlinkctl_call(
        &hook(&registry),
        "io.systemd.Resolve.Hook.ResolveRecord",
        r#"{"question":[]}"#,
        false,
    );
    assert!(
        !empty.success && empty.stderr.contains("InvalidParameter"),
        "{empty:?}"
    );
    assert_eq!(empty.json(), json!({"parameter": "question"}));
}

#[tokio::test]
async fn the_filter_follows_the_machines() {
    if !require::varlinkctl() {
        return;
    }
    let registry = Registry::start();
    let first = Proc::sleeper();
    let mut conn = registry.connect().await;
    conn.register(&machine("one", MachineClass::Vm, first.pid()))
        .await
        .unwrap()
        .unwrap();
    let mut watcher = Proc::spawn(
        Command::new(require::VARLINKCTL)
            .args(["call", "-j", "--more"])
            .arg(hook(&registry))
            .args(["io.systemd.Resolve.Hook.QueryFilter", "{}"])
            .stdout(Stdio::piped()),
    );
    let mut lines = BufReader::new(watcher.child().stdout.take().unwrap()).lines();
    let mut next = || -> Value {
        let line = lines.next().expect("a filter update").unwrap();
        serde_json::from_str(line.trim_start_matches('\u{1e}')).unwrap()
    };
    assert_eq!(next(), json!({"filterDomains": ["one"]}));
    let mut second = Proc::sleeper();
    conn.register(&machine("two", MachineClass::Container, second.pid()))
        .await
        .unwrap()
        .unwrap();
    let mut domains: Vec<String> = serde_json::from_value(next()["filterDomains"].clone()).unwrap();
    domains.sort();
    assert_eq!(domains, ["one", "two"]);
    second.kill();
    assert_eq!(next(), json!({"filterDomains": ["one"]}));
}
