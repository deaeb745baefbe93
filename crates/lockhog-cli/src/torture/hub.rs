//! The harness's side of the worker socket: stamps and journals what workers report, answers
//! their fenced writes, and carries out the faults that must strike a holder (`kill` and
//! `pause` act on the next worker that reports a grant, before it is answered, so the victim
//! is known to hold its lock and to be inside its section).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use super::alive::Seen;
use super::fence::Fence;
use super::journal::{Event, FaultKind, Journal, Release, Stamp};

/// A fault waiting for the next grant; the sender gets the victim's pid.
pub enum Pending {
    Kill(oneshot::Sender<u32>),
    Pause(oneshot::Sender<u32>),
    /// SIGKILL the `lockhog run` supervising the next command that reports a grant.
    KillRun(oneshot::Sender<u32>),
}

/// The first id of commands run by `lockhog run` (`hello-run`), above every worker's.
const FIRST_RUN_ID: u32 = 1 << 30;

struct Worker {
    pid: u32,
    tx: mpsc::UnboundedSender<String>,
    in_section: bool,
    killed: bool,
    /// The lock of the section it is in, or was last in.
    lock: u32,
    /// A command under `lockhog run`: its supervisor's pid, and the process as first seen.
    run: Option<(u32, Option<Seen>)>,
    /// Its supervisor was killed by `kill-run`: its section ends with it.
    orphaned: bool,
}

/// Everything the harness knows about the run.
pub struct State {
    pub journal: Journal,
    fence: Fence,
    workers: HashMap<u32, Worker>,
    pending: Option<Pending>,
    stopping: bool,
    next_run_id: u32,
    /// Faults carried out: kind, when, what.
    pub faults: Vec<(FaultKind, Stamp, String)>,
    /// Backend errors workers reported, and the first few of them.
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// Problems of the harness itself (a restart that failed): the run proves nothing then.
    pub harness_errors: Vec<String>,
}

/// The shared state behind a mutex that is never held across an await.
#[derive(Clone)]
pub struct Hub(Arc<Mutex<State>>);

impl Hub {
    pub fn new() -> Hub {
        Hub(Arc::new(Mutex::new(State {
            journal: Journal::new(),
            fence: Fence::default(),
            workers: HashMap::new(),
            pending: None,
            stopping: false,
            next_run_id: FIRST_RUN_ID,
            faults: Vec::new(),
            errors: 0,
            error_samples: Vec::new(),
            harness_errors: Vec::new(),
        })))
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms a fault for the next grant.
    pub fn arm(&self, pending: Pending) {
        self.lock().pending = Some(pending);
    }

    /// Disarms a fault no grant came for.
    pub fn disarm(&self) {
        self.lock().pending = None;
    }

    /// Records a fault carried out.
    pub fn record_fault(&self, kind: FaultKind, what: String) {
        let mut st = self.lock();
        let at = st.journal.now();
        st.faults.push((kind, at, what));
    }

    /// Ends the run: no section starts any more, and every worker is told to stop.
    pub fn stop(&self) {
        let mut st = self.lock();
        st.stopping = true;
        st.pending = None;
        for w in st.workers.values() {
            let _ = w.tx.send("stop".into());
        }
    }

    /// Whether the run is ending.
    pub fn stopping(&self) -> bool {
        self.lock().stopping
    }

    /// SIGKILLs worker `id` (a straggler at the end); its open section ends now.
    pub fn kill(&self, id: u32, pid: u32) {
        let mut st = self.lock();
        signal(pid, libc::SIGKILL);
        let at = st.journal.now();
        if let Some(w) = st.workers.get_mut(&id) {
            w.killed = true;
            if w.in_section {
                w.in_section = false;
                st.journal.push(Event::Killed { worker: id, at });
            }
        }
    }

    /// Serves one worker's connection until it ends.
    pub async fn serve(self, stream: UnixStream) {
        let (rd, mut wr) = stream.into_split();
        let mut lines = BufReader::new(rd).lines();
        let Ok(Some(hello)) = lines.next_line().await else {
            return;
        };
        let (id, pid, run) = match hello.split(' ').collect::<Vec<_>>()[..] {
            ["hello", id, pid] => match (id.parse::<u32>(), pid.parse::<u32>()) {
                (Ok(id), Ok(pid)) => (id, pid, None),
                _ => return,
            },
            // A command of `lockhog run`: it gets an id here, and its supervisor is noted.
            ["hello-run", pid, supervisor] => match (pid.parse::<u32>(), supervisor.parse()) {
                (Ok(pid), Ok(supervisor)) => {
                    let mut st = self.lock();
                    let id = st.next_run_id;
                    st.next_run_id += 1;
                    (id, pid, Some((supervisor, Seen::now(pid))))
                }
                _ => return,
            },
            _ => return,
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(mut line) = rx.recv().await {
                line.push('\n');
                if wr.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        {
            let mut st = self.lock();
            if st.stopping {
                let _ = tx.send("stop".into());
            }
            st.workers.insert(
                id,
                Worker {
                    pid,
                    tx,
                    in_section: false,
                    killed: false,
                    lock: 0,
                    run,
                    orphaned: false,
                },
            );
        }
        while let Ok(Some(line)) = lines.next_line().await {
            self.handle(id, &line);
        }
        let mut st = self.lock();
        let at = st.journal.now();
        if let Some(w) = st.workers.remove(&id) {
            if w.in_section && w.orphaned {
                // Killed with its supervisor, as the fault meant.
                st.journal.push(Event::Killed { worker: id, at });
            } else if w.in_section && !w.killed {
                st.journal.push(Event::Gone { worker: id, at });
            }
        }
    }

    fn handle(&self, id: u32, line: &str) {
        let mut st = self.lock();
        let st = &mut *st;
        if line.starts_with("enter ") {
            end_dead_orphans(st);
        }
        let Some(w) = st.workers.get_mut(&id) else {
            return;
        };
        let mut words = line.splitn(4, ' ');
        let verb = words.next().unwrap_or("");
        let mut num = || words.next().and_then(|w| w.parse::<u64>().ok());
        let (lock, token) = (num().unwrap_or(0) as u32, num().unwrap_or(0));
        let reply = |w: &Worker, text: &str| {
            let _ = w.tx.send(text.to_string());
        };
        match verb {
            "enter" => {
                if st.stopping {
                    return reply(w, "end");
                }
                let at = st.journal.now();
                st.journal.push(Event::Enter {
                    worker: id,
                    pid: w.pid,
                    lock,
                    token,
                    at,
                });
                w.in_section = true;
                w.lock = lock;
                match st.pending.take() {
                    Some(Pending::KillRun(done)) => match w.run {
                        Some((supervisor, _)) => {
                            // The command hears `orphan` and lingers in its section, if it
                            // lives: it must either die with its supervisor or keep the lock
                            // until it exits.
                            signal(supervisor, libc::SIGKILL);
                            w.orphaned = true;
                            reply(w, "orphan");
                            let _ = done.send(supervisor);
                        }
                        None => {
                            st.pending = Some(Pending::KillRun(done));
                            reply(w, "ok");
                        }
                    },
                    Some(Pending::Kill(done)) => {
                        // No answer: the victim dies holding its lock, inside its section.
                        signal(w.pid, libc::SIGKILL);
                        w.killed = true;
                        w.in_section = false;
                        let at = st.journal.now();
                        st.journal.push(Event::Killed { worker: id, at });
                        let _ = done.send(w.pid);
                    }
                    Some(Pending::Pause(done)) => {
                        // Stopped before it hears `ok`: it resumes inside its section and
                        // writes with the token it had.
                        signal(w.pid, libc::SIGSTOP);
                        reply(w, "ok");
                        let _ = done.send(w.pid);
                    }
                    None => reply(w, "ok"),
                }
            }
            "write" => {
                let accepted = st.fence.write(lock, token);
                let at = st.journal.now();
                st.journal.push(Event::Write {
                    worker: id,
                    lock,
                    token,
                    at,
                    accepted,
                });
                reply(w, if accepted { "accept" } else { "reject" });
            }
            "exit" => {
                let at = st.journal.now();
                st.journal.push(Event::Exit { worker: id, at });
                w.in_section = false;
                reply(w, "ok");
            }
            "released" => {
                if let Some(outcome) = words.next().and_then(Release::from_word) {
                    st.journal.push(Event::Released {
                        worker: id,
                        outcome,
                    });
                }
            }
            "error" => {
                st.errors += 1;
                if st.error_samples.len() < 5 {
                    st.error_samples
                        .push(line["error ".len().min(line.len())..].to_string());
                }
            }
            _ => {}
        }
    }

    /// The pids of workers connected now, by id.
    pub fn workers(&self) -> Vec<(u32, u32)> {
        self.lock()
            .workers
            .iter()
            .map(|(id, w)| (*id, w.pid))
            .collect()
    }
}

/// Ends the sections of orphaned commands that can run no more, before a grant is stamped:
/// their death may not have reached us through their socket yet, but it came before the grant
/// we are about to stamp, so their section is over. One that may still run is still inside.
fn end_dead_orphans(st: &mut State) {
    let at = st.journal.now();
    for (&id, w) in st.workers.iter_mut() {
        if w.in_section
            && w.orphaned
            && !w
                .run
                .and_then(|(_, seen)| seen)
                .is_some_and(|s| s.may_run())
        {
            w.in_section = false;
            w.killed = true;
            st.journal.push(Event::Killed { worker: id, at });
        }
    }
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 0 {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}
