//! A fleet of test boxes on a private network: one client box and N server boxes, each
//! server running sshd with key-only root login, for the tests and the bench of
//! `mydaemon -H` (and `systemctl -H`, which runs `ssh -xT HOST systemd-stdio-bridge`).
//!
//! ```ignore
//! mod testbox;
//! use testbox::fleet::Fleet;
//! let fleet = Fleet::boot(2); // panics naming the reason when it cannot boot
//! let out = fleet.client().sh_ok(&format!("systemctl -H {} is-system-running", fleet.host(0)));
//! ```
//!
//! How it is built (every box is a normal [`TestBox`], booted in parallel threads):
//! - **Network.** One veth pair per server, created from the test process straight into
//!   the two namespaces (`ip link add sK netns CLIENT type veth peer name eth0 netns
//!   SERVER`), so no interface ever exists on the host: the client holds `s1`..`sN`
//!   with `10.77.K.1/24`, server K holds `eth0` with `10.77.K.2/24` ([`server_addr`]);
//!   its sshd listens on port 22 and on [`ALT_PORT`].
//!   Point-to-point links rather than a bridge: the client is the only one talking to
//!   the servers, and nothing needs forwarding. The links vanish with the namespaces.
//! - **Unreachable hosts.** [`REFUSED_ADDR`] (`10.77.0.2`) is an address of the client
//!   itself on which nothing listens: a connection to it is refused at once (a host up
//!   with its sshd down). [`BLACKHOLE_ADDR`] (`10.77.255.2`) is routed into a veth pair
//!   inside the client whose far end drops everything (a static neighbour entry with a
//!   MAC nobody has, so there is not even an ARP failure): a connection to it gets no
//!   answer and times out (a host down or firewalled).
//! - **sshd.** Each server boots with `fleet-sshd.service` (wanted by multi-user.target,
//!   so it starts during the boot; the box's `ssh.service` stays masked):
//!   `/usr/sbin/sshd -D -e -f /etc/ssh/fleet/sshd_config`, a config of its own (nothing
//!   read from the host's `/etc/ssh/sshd_config*`), with one ed25519 host key generated
//!   at its first start (never the host's keys), key-only root login, `UseDNS no`, and
//!   `UsePAM` as [`FleetOptions::use_pam`] says (no unless asked; Debian's config says
//!   yes). [`Fleet::configure_sshd`] changes it on a booted fleet.
//! - **Keys.** Every fleet box mounts a fresh tmpfs on `/root` (the host's `/root`, the
//!   overlay's lower layer, is none of the fleet's business). The client gets a fresh
//!   ed25519 key in `/root/.ssh/id_ed25519`, authorized on every server, a `known_hosts`
//!   with each server's host key, and a `~/.ssh/config` with `BatchMode yes` and
//!   `StrictHostKeyChecking yes` (no `ConnectTimeout`: whoever connects chooses it).
//!
//! Nothing is written on the host (all in the boxes' overlays and tmpfs); dropping the
//! fleet drops its boxes. [`Fleet::boot`] returns once server 0 has answered `ssh HOST
//! true` from the client and every other server's sshd its banner.
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::support::wait_within;
use super::TestBox;

/// Server `i` (0-based) has this address: `10.77.{i+1}.2`.
pub fn server_addr(i: usize) -> String {
    format!("10.77.{}.2", i + 1)
}

/// Every server's sshd also listens on this port (for `HOST:PORT`; see [`Fleet::host_port`]).
pub const ALT_PORT: u16 = 2222;

/// An address of the client box on which nothing listens: connecting is refused at once.
pub const REFUSED_ADDR: &str = "10.77.0.2";

/// An address whose packets vanish: connecting to it times out.
pub const BLACKHOLE_ADDR: &str = "10.77.255.2";

/// `root@` [`REFUSED_ADDR`], a host whose sshd is down.
pub fn refused_host() -> String {
    format!("root@{REFUSED_ADDR}")
}

/// `root@` [`BLACKHOLE_ADDR`], a host that does not answer.
pub fn blackhole_host() -> String {
    format!("root@{BLACKHOLE_ADDR}")
}

/// How a fleet is built.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Number of server boxes (1..=250).
    pub servers: usize,
    /// sshd's `UsePAM`. Debian's config says yes: each login then opens a PAM session,
    /// which pam_systemd registers with logind, and the first starts root's user
    /// manager (0.5 s more to boot the fleet, a session more to every connection).
    pub use_pam: bool,
}

impl FleetOptions {
    /// `servers` servers, with `UsePAM no` (the lighter; the bench measures both).
    pub fn new(servers: usize) -> FleetOptions {
        FleetOptions {
            servers,
            use_pam: false,
        }
    }
}

/// One client box and its servers, connected. See the module documentation.
pub struct Fleet {
    client: TestBox,
    servers: Vec<TestBox>,
    boot_time: Duration,
    phases: Vec<(&'static str, Duration)>,
}

/// Where a server's sshd config is.
pub const SSHD_CONFIG: &str = "/etc/ssh/fleet/sshd_config";

/// A server's sshd config: `extra` lines first (in sshd_config the first value of an
/// option wins), then the fleet's own settings.
fn sshd_config(use_pam: bool, extra: &str) -> String {
    let pam = if use_pam { "yes" } else { "no" };
    format!(
        "# sshd of a fleet server box (tests/testbox/fleet.rs)\n\
         {extra}\
         Port 22\n\
         Port {ALT_PORT}\n\
         AddressFamily inet\n\
         HostKey /etc/ssh/fleet/ssh_host_ed25519_key\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM {pam}\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n"
    )
}

/// The files every server box boots with (see the module documentation).
fn server_files(use_pam: bool, notify: bool) -> Vec<(&'static str, Vec<u8>)> {
    // Debian's sshd tells systemd when it listens (as its ssh.service, Type=notify, relies
    // on); one that does not is waited for by polling its port (see `Fleet::try_boot`).
    let kind = if notify { "notify" } else { "exec" };
    const KEY: &str = "/etc/ssh/fleet/ssh_host_ed25519_key";
    let unit = format!(
        "[Unit]\n\
         Description=sshd of a fleet server box (tests/testbox/fleet.rs)\n\
         After=network.target root.mount\n\
         [Service]\n\
         Type={kind}\n\
         ExecStartPre=/bin/sh -c 'test -e {KEY} || ssh-keygen -q -t ed25519 -N \"\" -C fleet-host -f {KEY}'\n\
         ExecStart=/usr/sbin/sshd -D -e -f /etc/ssh/fleet/sshd_config\n\
         RuntimeDirectory=sshd\n\
         RuntimeDirectoryMode=0755\n\
         KillMode=process\n\
         TimeoutStartSec=30\n"
    );
    let mut files = fleet_box_files();
    files.push((SSHD_CONFIG, sshd_config(use_pam, "").into_bytes()));
    files.push(("/etc/systemd/system/fleet-sshd.service", unit.into_bytes()));
    files.push((
        "/etc/systemd/system/multi-user.target.d/fleet-sshd.conf",
        b"[Unit]\nWants=fleet-sshd.service\n".to_vec(),
    ));
    files
}

/// The files every fleet box boots with: a fresh tmpfs on /root.
fn fleet_box_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "/etc/systemd/system/root.mount",
            b"[Unit]\nDescription=Empty /root of a fleet box\n\
              [Mount]\nWhat=tmpfs\nWhere=/root\nType=tmpfs\nOptions=mode=0700,size=16m\n"
                .to_vec(),
        ),
        (
            "/etc/systemd/system/local-fs.target.d/fleet-root.conf",
            b"[Unit]\nWants=root.mount\n".to_vec(),
        ),
    ]
}

/// Whether `/usr/sbin/sshd` tells systemd when it is ready (Debian's links libsystemd
/// and calls `sd_notify`; OpenSSH 9.8 and later speak the protocol themselves).
fn sshd_notifies() -> bool {
    let Ok(bin) = std::fs::read("/usr/sbin/sshd") else {
        return false;
    };
    [&b"sd_notify"[..], b"NOTIFY_SOCKET"]
        .iter()
        .any(|needle| bin.windows(needle.len()).any(|w| w == *needle))
}

/// Boots one box with `files` in its /etc.
fn boot_box(binary: &Path, files: &[(&'static str, Vec<u8>)]) -> Result<TestBox, String> {
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, &c[..])).collect();
    TestBox::try_boot_with_files(binary, &refs)
}

/// Runs `sh -c script` in `bx`; its stdout, or the error naming `what`.
fn run(bx: &TestBox, what: &str, script: &str) -> Result<String, String> {
    let out = bx.sh(script);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what}: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Fleet {
    /// Boots one client and `servers` servers with the `mydaemon` binary of this build.
    /// Panics with the reason when it cannot, as [`TestBox::boot`] does.
    #[track_caller]
    pub fn boot(servers: usize) -> Fleet {
        match option_env!("CARGO_BIN_EXE_mydaemon") {
            Some(bin) => Self::boot_with(Path::new(bin), &FleetOptions::new(servers)),
            None => panic!("CARGO_BIN_EXE_mydaemon is not set for this build target"),
        }
    }

    /// Boots a fleet with `binary` in every box. Panics with the reason when it cannot.
    #[track_caller]
    pub fn boot_with(binary: &Path, options: &FleetOptions) -> Fleet {
        Self::try_boot(binary, options).unwrap_or_else(|why| panic!("{why}"))
    }

    /// Boots a fleet, or says why it cannot.
    pub fn try_boot(binary: &Path, options: &FleetOptions) -> Result<Fleet, String> {
        let started = Instant::now();
        let n = options.servers;
        if !(1..=250).contains(&n) {
            return Err(format!("a fleet has 1 to 250 servers, not {n}"));
        }
        for tool in [
            "/usr/sbin/sshd",
            "/usr/bin/ssh",
            "/usr/bin/ssh-keygen",
            "/usr/bin/systemd-stdio-bridge",
        ] {
            if !Path::new(tool).exists() {
                return Err(format!(
                    "the fleet cannot boot: {tool} is not installed (.ci/run installs \
                     openssh-server; systemd has systemd-stdio-bridge)"
                ));
            }
        }
        let notify = sshd_notifies();

        // Boot every box in parallel; the client makes its key meanwhile.
        let files = server_files(options.use_pam, notify);
        let (client, servers) = std::thread::scope(|s| {
            let client = s.spawn(|| {
                let bx = boot_box(binary, &fleet_box_files())?;
                let key = run(
                    &bx,
                    "the client's key",
                    "set -e\n\
                     mkdir -p -m 0700 /root/.ssh\n\
                     ssh-keygen -q -t ed25519 -N '' -C fleet-client -f /root/.ssh/id_ed25519\n\
                     cat /root/.ssh/id_ed25519.pub",
                )?;
                Ok::<_, String>((bx, key))
            });
            let servers: Vec<_> = (0..n)
                .map(|_| s.spawn(|| boot_box(binary, &files)))
                .collect();
            let client = client
                .join()
                .map_err(|_| "the client box panicked".to_string())
                .and_then(|r| r);
            let servers: Result<Vec<TestBox>, String> = servers
                .into_iter()
                .enumerate()
                .map(|(i, h)| {
                    h.join()
                        .map_err(|_| format!("server {i}'s boot panicked"))
                        .and_then(|r| r.map_err(|e| format!("server {i}: {e}")))
                })
                .collect();
            (client, servers)
        });
        let (client, client_key) = client?;
        let servers = servers?;
        let mut phases = vec![("boxes booted (in parallel)", started.elapsed())];
        let mark = Instant::now();

        // The links, straight into the namespaces (nothing on the host), in one `ip`.
        let mut batch = String::new();
        for (i, server) in servers.iter().enumerate() {
            batch.push_str(&format!(
                "link add s{} netns {} type veth peer name eth0 netns {}\n",
                i + 1,
                client.pid(),
                server.pid()
            ));
        }
        batch.push_str(&format!(
            "link add bh0 netns {0} type veth peer name bh1 netns {0}\n",
            client.pid()
        ));
        ip_batch(&batch)?;

        // Addresses, keys and host keys, every box in parallel.
        let results: Vec<Result<String, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = servers
                .iter()
                .enumerate()
                .map(|(i, bx)| {
                    let key = client_key.trim();
                    let addr = server_addr(i);
                    s.spawn(move || {
                        if !notify {
                            bx.wait_for("sshd to listen", Duration::from_secs(30), |bx| {
                                bx.sh("ss -Hltn 'sport = :22' | grep -q .").status.success()
                            });
                        }
                        run(
                            bx,
                            &format!("server {i} ({addr})"),
                            &format!(
                                "set -e\n\
                                 systemctl is-active -q fleet-sshd.service || \
                                 {{ systemctl status --no-pager -l fleet-sshd.service; exit 1; }}\n\
                                 ip addr add {addr}/24 dev eth0\n\
                                 ip link set eth0 up\n\
                                 mkdir -p -m 0700 /root/.ssh\n\
                                 echo '{key}' > /root/.ssh/authorized_keys\n\
                                 cut -d' ' -f1,2 /etc/ssh/fleet/ssh_host_ed25519_key.pub"
                            ),
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
                .collect()
        });
        let mut known_hosts = String::new();
        for (i, r) in results.into_iter().enumerate() {
            let addr = server_addr(i);
            let key = r?;
            known_hosts.push_str(&format!("{addr},[{addr}]:{ALT_PORT} {}\n", key.trim()));
        }
        let mut script = String::from("set -e\n");
        for i in 0..n {
            script.push_str(&format!(
                "ip addr add 10.77.{k}.1/24 dev s{k}\nip link set s{k} up\n",
                k = i + 1
            ));
        }
        script.push_str(&format!(
            "ip addr add {REFUSED_ADDR}/32 dev lo\n\
             ip addr add 10.77.255.1/24 dev bh0\n\
             ip link set bh1 up\n\
             ip link set bh0 up\n\
             ip neigh replace {BLACKHOLE_ADDR} lladdr 02:00:00:00:00:fe dev bh0 nud permanent\n\
             cat > /root/.ssh/known_hosts <<'EOF'\n{known_hosts}EOF\n\
             cat > /root/.ssh/config <<'EOF'\n\
             Host *\n\
             \x20   BatchMode yes\n\
             \x20   IdentityFile ~/.ssh/id_ed25519\n\
             \x20   IdentitiesOnly yes\n\
             \x20   UserKnownHostsFile ~/.ssh/known_hosts\n\
             \x20   GlobalKnownHostsFile /dev/null\n\
             \x20   StrictHostKeyChecking yes\n\
             \x20   HashKnownHosts no\n\
             \x20   GSSAPIAuthentication no\n\
             EOF\n"
        ));
        run(&client, "the client's links and ssh config", &script)?;
        phases.push(("links, keys, known_hosts", mark.elapsed()));
        let mark = Instant::now();

        let mut fleet = Fleet {
            client,
            servers,
            boot_time: Duration::ZERO,
            phases,
        };
        // Ready when server 0 takes an ssh login (the keys and configs work: every server
        // has the same) and every other one sends its sshd's banner over its link (an
        // ssh login costs 0.1-0.2 s of CPU, 8 of them a second on 2 cores), all at once.
        let mut check = String::from("pids=\n");
        for (i, host) in fleet.hosts().iter().enumerate() {
            if i == 0 {
                check.push_str(&format!("ssh -o ConnectTimeout=20 {host} true"));
            } else {
                check.push_str(&format!(
                    "timeout 20 bash -c 'exec 3<>/dev/tcp/{}/22 && read -r b <&3 && \
                     case $b in SSH-2.0-*) ;; *) echo \"{host}: $b\" >&2; exit 1;; esac'",
                    server_addr(i)
                ));
            }
            check.push_str(" & pids=\"$pids $!\"\n");
        }
        check.push_str("rc=0\nfor p in $pids; do wait $p || rc=1; done\nexit $rc\n");
        run(&fleet.client, "the servers' sshd, from the client", &check)?;
        fleet
            .phases
            .push(("every server's sshd answered", mark.elapsed()));
        fleet.boot_time = started.elapsed();
        Ok(fleet)
    }

    /// The client box (its root has the key, known_hosts and ssh config).
    pub fn client(&self) -> &TestBox {
        &self.client
    }

    /// The server boxes; server `i` is at [`server_addr`]`(i)`.
    pub fn servers(&self) -> &[TestBox] {
        &self.servers
    }

    /// Server `i` (0-based).
    pub fn server(&self, i: usize) -> &TestBox {
        &self.servers[i]
    }

    /// `root@ADDR` of server `i`, as `ssh`, `systemctl -H` and `mydaemon -H` take it.
    pub fn host(&self, i: usize) -> String {
        assert!(i < self.servers.len(), "no server {i}");
        format!("root@{}", server_addr(i))
    }

    /// `root@ADDR:PORT` of server `i`, on its sshd's other port [`ALT_PORT`] (as
    /// `systemctl -H` takes it; `ssh` itself wants `-p PORT`).
    pub fn host_port(&self, i: usize) -> String {
        format!("{}:{ALT_PORT}", self.host(i))
    }

    /// `root@ADDR` of every server, in order.
    pub fn hosts(&self) -> Vec<String> {
        (0..self.servers.len()).map(|i| self.host(i)).collect()
    }

    /// How long the boot took, until every server's sshd answered.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// Rewrites every server's sshd config (`use_pam`, and `extra` lines that take
    /// precedence over the fleet's settings) and restarts the sshd, all servers at once.
    /// Connections open meanwhile live on (`KillMode=process`).
    #[track_caller]
    pub fn configure_sshd(&self, use_pam: bool, extra: &str) {
        let config = sshd_config(use_pam, extra);
        std::thread::scope(|s| {
            for bx in &self.servers {
                let config = &config;
                s.spawn(move || {
                    bx.write_file(SSHD_CONFIG, config.as_bytes());
                    // (an sshd without readiness notification may not listen yet)
                    bx.sh_ok(
                        "systemctl restart fleet-sshd.service\n\
                         for i in $(seq 500); do\n\
                         \x20   ss -Hltn 'sport = :22' | grep -q . && exit 0; sleep 0.01\n\
                         done\nexit 1",
                    );
                });
            }
        });
    }

    /// The boot's phases and how long each took, in order.
    pub fn boot_phases(&self) -> &[(&'static str, Duration)] {
        &self.phases
    }
}

/// Runs `ip -batch -` on the host with `batch` on its stdin.
fn ip_batch(batch: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    let written = child.stdin.take().unwrap().write_all(batch.as_bytes());
    let status = wait_within(&mut child, Duration::from_secs(30), "ip -batch");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    if !status.success() || written.is_err() {
        return Err(format!(
            "creating the fleet's veth pairs failed ({status}): {err}\n{batch}"
        ));
    }
    Ok(())
}
