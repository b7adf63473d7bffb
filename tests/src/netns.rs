//! Containers as processes in network namespaces of their own, with veth links and test
//! addresses (198.51.100.0/24, 2001:db8::/32). Everything lives inside the namespace, so the
//! host's network is never touched, and it all goes away with the process.

use std::process::Command;

use crate::clients::run;
use crate::process::Proc;
use crate::wait;

/// A `sleep` in a new network namespace.
#[derive(Debug)]
pub struct NetnsLeader {
    proc: Proc,
}

impl NetnsLeader {
    /// Starts it, with duplicate address detection off (so IPv6 addresses are usable at once)
    /// and a veth pair `veth0`/`veth1` up inside.
    pub fn start() -> Self {
        let proc = Proc::spawn(Command::new("unshare").args(["--net", "--", "sleep", "100000"]));
        let pid = proc.pid();
        wait::until("the new network namespace", || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
                != std::fs::read_link("/proc/self/ns/net").ok()
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
        });
        let leader = Self { proc };
        leader.sysctl("net.ipv6.conf.all.accept_dad=0");
        leader.sysctl("net.ipv6.conf.default.accept_dad=0");
        leader.ip(&[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ]);
        leader.ip(&["link", "set", "veth0", "up"]);
        leader.ip(&["link", "set", "veth1", "up"]);
        leader.ip(&["link", "set", "lo", "up"]);
        leader
    }

    /// Starts one with IPv6 off (so no link-local addresses come and go) and `addresses`
    /// (`ADDRESS/PREFIX`) on veth0.
    pub fn ipv4_only(addresses: &[&str]) -> Self {
        let leader = Self::start();
        leader.sysctl("net.ipv6.conf.all.disable_ipv6=1");
        for address in addresses {
            leader.ip(&["addr", "add", address, "dev", "veth0"]);
        }
        leader
    }

    /// The leader's PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Runs `ip ARGS…` inside the namespace.
    ///
    /// # Panics
    /// When `ip` fails.
    pub fn ip(&self, args: &[&str]) {
        let pid = self.pid().to_string();
        let out = run(Command::new("nsenter")
            .args(["-t", &pid, "-n", "ip"])
            .args(args));
        assert!(out.success, "ip {args:?}: {out:?}");
    }

    /// Sets a sysctl (`NAME=VALUE`) inside the namespace.
    ///
    /// # Panics
    /// When `sysctl` fails.
    pub fn sysctl(&self, setting: &str) {
        let pid = self.pid().to_string();
        let out = run(Command::new("nsenter").args(["-t", &pid, "-n", "sysctl", "-qw", setting]));
        assert!(out.success, "sysctl {setting}: {out:?}");
    }

    /// The interface index of `name` inside the namespace (from `ip -o link show`, as sysfs
    /// still shows the host's interfaces).
    pub fn ifindex(&self, name: &str) -> u32 {
        let pid = self.pid().to_string();
        let out =
            run(Command::new("nsenter").args(["-t", &pid, "-n", "ip", "-o", "link", "show", name]));
        let index = out.stdout.split(':').next().unwrap_or_default();
        index
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no index for {name}: {out:?}"))
    }
}

/// A `sleep` in a new user namespace whose UIDs and GIDs 0…65535 map to `shift`….
#[derive(Debug)]
pub struct UsernsLeader {
    proc: Proc,
}

impl UsernsLeader {
    /// Starts it and writes its maps from outside (as root may).
    pub fn start(shift: u32) -> Self {
        Self::with_maps(&format!("0 {shift} 65536"))
    }

    /// Starts it with `map` as both its UID and GID map (lines `inside outside count`).
    pub fn with_maps(map: &str) -> Self {
        let proc = Proc::spawn(Command::new("unshare").args(["--user", "--", "sleep", "100000"]));
        let pid = proc.pid();
        wait::until("the new user namespace", || {
            std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()
                != std::fs::read_link("/proc/self/ns/user").ok()
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
        });
        std::fs::write(format!("/proc/{pid}/uid_map"), map).expect("uid_map");
        std::fs::write(format!("/proc/{pid}/gid_map"), map).expect("gid_map");
        Self { proc }
    }

    /// The leader's PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}
