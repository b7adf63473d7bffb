//! Links the module as glibc loads it: soname `libnss_mymachines.so.2`, and only the
//! `_nss_mymachines_*` symbols exported (`nss_mymachines.sym`).

fn main() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/nss_mymachines.sym");
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnss_mymachines.so.2");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={script}");
}
