//! Where the CPU time of a run goes: this process, the servers named on the
//! command line (with their child processes, such as PostgreSQL's
//! backends), and the rest of the machine, read from Linux's `/proc`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Instant;

use tokio_util::task::AbortOnDropHandle;
use tracing::warn;

use crate::report::{Cpu, round3};

/// A process whose CPU time a report shows apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The name it has in the report, such as `nats`.
    pub name: String,
    /// Its process id; its descendants count towards it.
    pub pid: u32,
}

/// Samples CPU time at the edges of measurement windows.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    /// This process first, named `fleet`, then the watched ones.
    processes: Vec<Process>,
    ticks_per_second: f64,
}

/// CPU ticks at one instant.
#[derive(Debug)]
struct Sample {
    machine_busy: u64,
    machine_total: u64,
    per_process: Vec<u64>,
}

/// CPU time spent during a window.
#[derive(Debug)]
pub(crate) struct Spent {
    busy_fraction: f64,
    machine_busy_ms: f64,
    per_process_ms: Vec<(String, f64)>,
}

impl CpuMeter {
    /// A meter of this process and of `watched`.
    pub(crate) fn new(watched: &[Process]) -> Self {
        let this = Process {
            name: "fleet".to_owned(),
            pid: std::process::id(),
        };
        Self {
            processes: std::iter::once(this)
                .chain(watched.iter().cloned())
                .collect(),
            ticks_per_second: rustix::param::clock_ticks_per_second() as f64,
        }
    }

    /// Samples at both ends of `window`; the handle yields the time spent
    /// in between, or `None` where `/proc` cannot be read.
    pub(crate) fn during(&self, window: Range<Instant>) -> AbortOnDropHandle<Option<Spent>> {
        let pids: Vec<u32> = self.processes.iter().map(|p| p.pid).collect();
        let names: Vec<String> = self.processes.iter().map(|p| p.name.clone()).collect();
        let ms_per_tick = 1000.0 / self.ticks_per_second;
        AbortOnDropHandle::new(tokio::spawn(async move {
            tokio::time::sleep_until(window.start.into()).await;
            let before = sample_now(pids.clone()).await?;
            tokio::time::sleep_until(window.end.into()).await;
            let after = sample_now(pids).await?;
            Some(Spent::between(&before, &after, &names, ms_per_tick))
        }))
    }
}

async fn sample_now(pids: Vec<u32>) -> Option<Sample> {
    let sampled = tokio::task::spawn_blocking(move || Sample::read(&pids))
        .await
        .ok()?;
    sampled
        .inspect_err(|e| warn!(error.message = %e, "Cannot read CPU times from /proc; the report leaves them out."))
        .ok()
}

impl Sample {
    fn read(roots: &[u32]) -> std::io::Result<Self> {
        let (machine_busy, machine_total) = machine_ticks(&std::fs::read_to_string("/proc/stat")?)?;
        let processes = all_processes()?;
        let per_process = roots
            .iter()
            .map(|&root| {
                processes
                    .keys()
                    .filter(|&&pid| descends_from(pid, root, &processes))
                    .map(|pid| processes[pid].1)
                    .sum()
            })
            .collect();
        Ok(Self {
            machine_busy,
            machine_total,
            per_process,
        })
    }
}

impl Spent {
    fn between(before: &Sample, after: &Sample, names: &[String], ms_per_tick: f64) -> Self {
        let ms = |b: u64, a: u64| a.saturating_sub(b) as f64 * ms_per_tick;
        let total = after
            .machine_total
            .saturating_sub(before.machine_total)
            .max(1);
        let busy = after.machine_busy.saturating_sub(before.machine_busy);
        Self {
            busy_fraction: busy as f64 / total as f64,
            machine_busy_ms: ms(before.machine_busy, after.machine_busy),
            per_process_ms: names
                .iter()
                .zip(before.per_process.iter().zip(&after.per_process))
                .map(|(name, (&b, &a))| (name.clone(), ms(b, a)))
                .collect(),
        }
    }

    /// The share of one core each process used over `seconds`, in percent
    /// (a process's descendants count towards it), and `machine`, all
    /// cores together (200 is two cores busy).
    pub(crate) fn core_pct(&self, seconds: f64) -> BTreeMap<String, f64> {
        let pct = |ms: f64| round3(ms / (seconds.max(f64::EPSILON) * 10.0));
        self.per_process_ms
            .iter()
            .map(|(name, ms)| (name.clone(), pct(*ms)))
            .chain([("machine".to_owned(), pct(self.machine_busy_ms))])
            .collect()
    }

    /// The time spent, divided among `chains`.
    pub(crate) fn per_chain(&self, chains: u64) -> Cpu {
        let chains = chains.max(1) as f64;
        let mut ms_per_chain: BTreeMap<String, f64> = self
            .per_process_ms
            .iter()
            .map(|(name, ms)| (name.clone(), round3(ms / chains)))
            .collect();
        let named: f64 = self.per_process_ms.iter().map(|(_, ms)| ms).sum();
        ms_per_chain.insert(
            "other".to_owned(),
            round3((self.machine_busy_ms - named).max(0.0) / chains),
        );
        Cpu {
            machine_busy_pct: round3(self.busy_fraction * 100.0),
            ms_per_chain,
        }
    }
}

/// `(busy, total)` ticks of all CPUs, from the first line of `/proc/stat`:
/// `cpu user nice system idle iowait irq softirq steal guest guest_nice`.
/// Guest time is already counted in user time.
fn machine_ticks(stat: &str) -> std::io::Result<(u64, u64)> {
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .filter(|line| line.starts_with("cpu "))
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [user, nice, system, idle, iowait, irq, softirq, steal] = fields[..] else {
        return Err(std::io::Error::other("unexpected first line in /proc/stat"));
    };
    let busy = user + nice + system + irq + softirq + steal;
    Ok((busy, busy + idle + iowait))
}

/// Every process: pid -> (parent pid, user + system ticks of all its
/// threads). Processes that exit while being read are skipped.
fn all_processes() -> std::io::Result<HashMap<u32, (u32, u64)>> {
    let mut processes = HashMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(parsed) = parse_process_stat(&stat) {
            processes.insert(pid, parsed);
        }
    }
    Ok(processes)
}

/// `(ppid, utime + stime)` from `/proc/<pid>/stat`. The command name, in
/// parentheses, may hold spaces and parentheses, so fields are counted from
/// the last `)`: state, ppid, ..., utime (14th field), stime (15th).
fn parse_process_stat(stat: &str) -> Option<(u32, u64)> {
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

fn descends_from(mut pid: u32, root: u32, processes: &HashMap<u32, (u32, u64)>) -> bool {
    loop {
        if pid == root {
            return true;
        }
        match processes.get(&pid) {
            Some(&(parent, _)) if parent != 0 && parent != pid => pid = parent,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ticks_leave_idle_and_iowait_out_of_busy() {
        let stat = "cpu  100 5 50 800 20 3 2 1 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(machine_ticks(stat).unwrap(), (161, 981));
    }

    #[test]
    fn a_process_stat_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (postgres: wal (writer)) S 4200 4200 4200 0 -1 4194560 \
                    120 0 0 0 37 11 0 0 20 0 1 0 12345 0 0";
        assert_eq!(parse_process_stat(stat), Some((4200, 48)));
    }

    #[test]
    fn descendants_count_towards_their_ancestor() {
        let processes = HashMap::from([(1, (0, 0)), (10, (1, 5)), (11, (10, 7)), (20, (1, 9))]);
        assert!(descends_from(11, 10, &processes));
        assert!(descends_from(10, 10, &processes));
        assert!(!descends_from(20, 10, &processes));
    }
}
