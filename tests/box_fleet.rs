//! The fleet of test boxes (tests/testbox/fleet.rs) that the `-H` tests and the fleet
//! bench stand on: from the client box, ssh with the fleet's key reaches every server,
//! `systemctl -H` talks to each server's own systemd (two at once; HOST:PORT on the
//! servers' second port too), a host with its sshd
//! down is refused at once, a host that does not answer times out; a box that is not a
//! fleet server runs no sshd.
//! They need root: without it `make test` shows them as skipped.

mod testbox;

use std::time::{Duration, Instant};

use testbox::fleet::{blackhole_host, refused_host, Fleet, BLACKHOLE_ADDR, REFUSED_ADDR};
use testbox::TestBox;

use testbox::{show, text};

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn ssh_and_systemctl_reach_each_server_from_the_client() {
    let fleet = Fleet::boot(2);
    eprintln!(
        "fleet of 1 + 2 boxes up in {:?}: {:?}",
        fleet.boot_time(),
        fleet.boot_phases()
    );
    let c = fleet.client();

    // The client's config makes ssh batch-mode (no prompt can hang a test).
    let cfg = c.sh_ok(&format!("ssh -G {}", fleet.host(0)));
    assert!(cfg.lines().any(|l| l == "batchmode yes"), "{cfg}");

    // Each server has a host key of its own, not the host's.
    let known = c.sh_ok("cat /root/.ssh/known_hosts");
    let keys: Vec<&str> = known
        .lines()
        .map(|l| l.split(' ').nth(2).expect("ADDR TYPE KEY"))
        .collect();
    assert_eq!(keys.len(), 2, "{known}");
    assert_ne!(keys[0], keys[1], "{known}");
    if let Ok(host_key) = std::fs::read_to_string("/etc/ssh/ssh_host_ed25519_key.pub") {
        assert!(!keys.iter().any(|k| host_key.contains(k)), "{known}");
    }

    for (i, server) in fleet.servers().iter().enumerate() {
        let host = fleet.host(i);
        // A mark only this server's systemd has.
        server.sh_ok(&format!("systemctl set-environment FLEET_SERVER={i}"));
        let out = c.sh(&format!("ssh {host} 'echo $(hostname) $(id -u)'"));
        assert!(out.status.success(), "ssh {host}: {}", show(&out));
        let hostname = server.sh_ok("hostname");
        assert_eq!(text(&out.stdout), format!("{} 0\n", hostname.trim()));

        // HOST:PORT reaches the same server's sshd on its other port.
        let out = c.sh(&format!(
            "systemctl -H {} show-environment",
            fleet.host_port(i)
        ));
        assert!(
            out.status.success() && text(&out.stdout).contains(&format!("FLEET_SERVER={i}\n")),
            "systemctl -H {}: {}",
            fleet.host_port(i),
            show(&out)
        );

        // Key-only: a password login is not even offered.
        let out = c.sh(&format!(
            "ssh -o PreferredAuthentications=password,keyboard-interactive {host} true"
        ));
        assert_eq!(out.status.code(), Some(255), "{}", show(&out));
        assert!(
            text(&out.stderr).contains("Permission denied (publickey)"),
            "{}",
            show(&out)
        );
    }

    // systemctl -H (ssh -xT HOST systemd-stdio-bridge) to both servers at once.
    let mut script = String::new();
    for (i, host) in fleet.hosts().iter().enumerate() {
        script.push_str(&format!(
            "(systemctl -H {host} is-system-running; \
              systemctl -H {host} show -p Version --value; \
              systemctl -H {host} show-environment | grep ^FLEET_SERVER=) > /tmp/out{i} 2>&1 &\n"
        ));
    }
    script.push_str("wait\ncat /tmp/out0; echo --; cat /tmp/out1\n");
    let out = c.sh_ok(&script);
    let version = fleet.server(0).sh_ok("systemctl show -p Version --value");
    let (first, second) = out.split_once("--\n").expect("two outputs");
    for (i, answer) in [first, second].into_iter().enumerate() {
        let lines: Vec<&str> = answer.lines().collect();
        assert_eq!(lines.len(), 3, "server {i}: {answer}");
        assert!(
            matches!(lines[0], "running" | "degraded"),
            "server {i}: {answer}"
        );
        assert_eq!(lines[1], version.trim(), "server {i}: {answer}");
        assert_eq!(
            lines[2],
            format!("FLEET_SERVER={i}"),
            "server {i}: {answer}"
        );
    }
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn a_refused_host_fails_at_once_and_a_silent_one_times_out() {
    let fleet = Fleet::boot(1);
    let c = fleet.client();
    let good = fleet.host(0);

    // Refused: the address is up, nothing listens. ssh says so without waiting for
    // its ConnectTimeout; the good host, asked at the same time, answers.
    let t = Instant::now();
    let out = c.sh(&format!(
        "ssh -o ConnectTimeout=20 {good} true & g=$!\n\
         ssh -o ConnectTimeout=20 {} true; rc=$?\n\
         wait $g || exit 99\nexit $rc",
        refused_host()
    ));
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(255), "{}", show(&out));
    assert!(
        text(&out.stderr).contains(&format!(
            "connect to host {REFUSED_ADDR} port 22: Connection refused"
        )),
        "{}",
        show(&out)
    );
    assert!(took < Duration::from_secs(10), "refused after {took:?}");

    // systemctl -H reports it too, non-zero.
    let out = c.sh(&format!(
        "systemctl -H {} is-system-running",
        refused_host()
    ));
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("Connection refused"),
        "{}",
        show(&out)
    );

    // Silent: the packets vanish; ssh gives up after its ConnectTimeout, not before
    // (the error is the timeout, not an unreachable network) and not much later.
    let t = Instant::now();
    let out = c.sh(&format!(
        "ssh -o ConnectTimeout=2 {} true",
        blackhole_host()
    ));
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(255), "{}", show(&out));
    assert!(
        text(&out.stderr).contains(&format!(
            "connect to host {BLACKHOLE_ADDR} port 22: Connection timed out"
        )),
        "{}",
        show(&out)
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "timed out after {took:?}"
    );
}

#[test]
#[ignore = "boots a real systemd as PID 1: needs root (`make test` runs it as root)"]
fn a_box_that_is_no_fleet_server_runs_no_sshd() {
    let bx = TestBox::boot();
    let out = bx.sh("systemctl is-enabled ssh.service ssh.socket");
    assert_eq!(text(&out.stdout), "masked\nmasked\n", "{}", show(&out));
    let listening = bx.sh_ok("ss -Hltn");
    assert!(listening.trim().is_empty(), "{listening}");
}
