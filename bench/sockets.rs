//! `cargo bench --bench sockets`: restarts under load, under a real systemd (test box).
//!
//! Installs a socket-activated server (`tests/support/fd3_server.py`, `install --listen`), then
//! runs `bench/restart_load.py` in the box: a client connecting every 5 ms while 20
//! restarts run, each waited for until the new server answered; once with
//! `mydaemon restart`, once with `systemctl restart`. Prints connections and failures
//! (target: 0 failed). The unit's start limit is lifted for the loop (a drop-in).
//! `MYDAEMON_BENCH_ROUNDS` sets the number of restarts (default 20). Needs root.

#[path = "../tests/testbox/mod.rs"]
mod testbox;

use testbox::{TestBox, BIN};

fn main() {
    let n: usize = std::env::var("MYDAEMON_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let bx = TestBox::boot();
    bx.sh_ok("ip link set lo up");
    bx.write_file(
        "/usr/local/bin/fd3-server",
        include_str!("../tests/support/fd3_server.py").as_bytes(),
    );
    bx.write_file(
        "/usr/local/bin/restart-load",
        include_str!("restart_load.py").as_bytes(),
    );
    bx.sh_ok(&format!(
        "chmod 755 /usr/local/bin/fd3-server /usr/local/bin/restart-load && \
         {BIN} --name web install --listen tcp:127.0.0.1:8080 -- /usr/local/bin/fd3-server && \
         mkdir -p /etc/systemd/system/web.service.d && \
         printf '[Unit]\\nStartLimitIntervalSec=0\\n' > /etc/systemd/system/web.service.d/bench.conf && \
         systemctl daemon-reload"
    ));
    let mut missed = false;
    for (what, cmd) in [
        ("mydaemon restart", format!("{BIN} --name web restart")),
        (
            "systemctl restart",
            "systemctl restart web.service".to_owned(),
        ),
    ] {
        let out = bx.sh_ok(&format!("/usr/local/bin/restart-load 8080 {n} '{cmd}'"));
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("restart-load JSON");
        let ok = v["failed"] == 0;
        missed |= !ok;
        println!(
            "restarts under load ({what}): {} restarts in {} s, {} connections, {} failed {} [{}: 0 failed]",
            v["restarts"],
            v["seconds"],
            v["connections"],
            v["failed"],
            v["failures"],
            if ok { "PASS" } else { "MISS" }
        );
    }
    if missed {
        std::process::exit(1);
    }
}
