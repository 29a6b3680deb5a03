//! Helpers for the integration tests: running the binary, generating format-valid secrets.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs a python3 script with the given arguments in `dir`.
pub fn python(dir: &Path, script: &str, args: &[&str]) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn scan(dir: &Path, extra: &[&str]) -> (std::process::Output, Vec<serde_json::Value>) {
    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "jsonl", "-j", "2"]).args(extra).arg(dir);
    let out = run(cmd);
    let findings = jsonl(&out);
    (out, findings)
}

pub fn find<'a>(findings: &'a [serde_json::Value], secret: &str) -> &'a serde_json::Value {
    findings
        .iter()
        .find(|f| f["secret"] == secret)
        .unwrap_or_else(|| panic!("{secret} not found in {findings:#?}"))
}

/// A `keysweep` command sharing one database cache across tests.
pub fn keysweep() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keysweep"));
    cmd.env(
        "KEYSWEEP_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("keysweep-cache"),
    );
    cmd.env_remove("NO_COLOR");
    cmd
}

/// Runs a command with a deadline: a hang (say, on a FIFO) fails the test instead of the suite.
pub fn run_with_deadline(mut cmd: Command, stdin: Option<&[u8]>, deadline: Duration) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn keysweep");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    let (stdout, stderr) = drain_pipes(&mut child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            panic!("keysweep did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Reads a child's stdout and stderr on threads while it runs: a child with a lot to say
/// would otherwise block on a full pipe.
fn drain_pipes(
    child: &mut std::process::Child,
) -> (std::thread::JoinHandle<Vec<u8>>, std::thread::JoinHandle<Vec<u8>>) {
    fn drain(pipe: Option<Box<dyn std::io::Read + Send>>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = child
        .stdout
        .take()
        .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>);
    (drain(stdout), drain(stderr))
}

/// Runs a command to completion (60 s deadline).
pub fn run(cmd: Command) -> Output {
    run_with_deadline(cmd, None, Duration::from_secs(60))
}

/// Parses JSON Lines output.
pub fn jsonl(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// Rule ids of JSON findings.
pub fn rule_ids(findings: &[serde_json::Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| f["rule"]["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Random format-valid secrets (fresh every run: the rules see new values each time).
#[derive(Default)]
pub struct Secrets {
    rng: fastrand::Rng,
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl Secrets {
    pub fn new() -> Self {
        Secrets::default()
    }

    pub fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.rng.usize(..alphabet.len())] as char)
            .collect()
    }

    /// GitHub classic token: prefix, 30 base62, CRC32 of those in 6 base62 digits.
    pub fn github_classic(&mut self, prefix: &str) -> String {
        let random = self.pick(BASE62, 30);
        let sum = keysweep::checks::base62(u64::from(crc32fast::hash(random.as_bytes())), 6);
        format!("{prefix}{random}{sum}")
    }

    /// The same token with its checksum broken.
    pub fn github_wrong_checksum(&mut self) -> String {
        let mut token = self.github_classic("ghp_").into_bytes();
        let last = token.len() - 1;
        token[last] = if token[last] == b'Q' { b'R' } else { b'Q' };
        String::from_utf8(token).expect("ascii")
    }

    pub fn aws_key_id(&mut self) -> String {
        format!("AKIA{}", self.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
    }

    pub fn aws_secret(&mut self) -> String {
        self.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)
    }

    pub fn hex(&mut self, n: usize) -> String {
        self.pick(b"0123456789abcdef", n)
    }
}

/// Runs a command to completion and returns its output with its peak resident memory in
/// KiB, read from the kernel's accounting of the child (`wait4`), not sampled.
// The child is reaped by `wait4` below, which std's `Child::wait` cannot do with rusage.
#[allow(clippy::zombie_processes)]
pub fn run_measuring_rss(mut cmd: Command) -> (Output, u64) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn keysweep");
    let (stdout, stderr) = drain_pipes(&mut child);
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet reaped; the pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    use std::os::unix::process::ExitStatusExt;
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    (output, usage.ru_maxrss as u64)
}

/// A binary macaroon as an index writes it, behind the main index's own location bytes
/// (taken from the rule's documented prefix, so no host name is written here).
pub fn upload_token(identifier: &str, caveats: &[&str]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // "AgEIcHlwaS5vcmcC": version 2, the location packet, and the identifier's field type.
    let mut bin = b64.decode("AgEIcHlwaS5vcmcC").expect("prefix");
    bin.push(identifier.len() as u8);
    bin.extend_from_slice(identifier.as_bytes());
    bin.push(0);
    for caveat in caveats {
        bin.extend_from_slice(&[2, caveat.len() as u8]);
        bin.extend_from_slice(caveat.as_bytes());
        bin.push(0);
    }
    bin.extend_from_slice(&[0, 6, 32]);
    bin.extend((0..32).map(|_| fastrand::u8(..)));
    format!("pypi-{}", b64.encode(bin))
}
