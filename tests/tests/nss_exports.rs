//! The NSS module exports exactly nss-mymachines' entry points, under its soname.

use std::process::Command;

use berth_tests::clients::run;
use berth_tests::{nss, require};

#[test]
fn only_the_eight_nss_entry_points_are_exported() {
    if !require::program("nm") {
        return;
    }
    let out = run(Command::new("nm")
        .args(["-D", "--defined-only", "--format=just-symbols"])
        .arg(nss::module()));
    assert!(out.success, "{out:?}");
    let mut symbols: Vec<&str> = out.stdout.lines().collect();
    symbols.sort_unstable();
    assert_eq!(
        symbols,
        [
            "_nss_mymachines_getgrgid_r",
            "_nss_mymachines_getgrnam_r",
            "_nss_mymachines_gethostbyname2_r",
            "_nss_mymachines_gethostbyname3_r",
            "_nss_mymachines_gethostbyname4_r",
            "_nss_mymachines_gethostbyname_r",
            "_nss_mymachines_getpwnam_r",
            "_nss_mymachines_getpwuid_r",
        ]
    );
}

#[test]
fn the_soname_is_the_one_glibc_asks_for() {
    if !require::program("objdump") {
        return;
    }
    let out = run(Command::new("objdump").arg("-p").arg(nss::module()));
    assert!(out.success, "{out:?}");
    let soname = out
        .stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("SONAME"))
        .map(str::trim);
    assert_eq!(soname, Some("libnss_mymachines.so.2"));
}
