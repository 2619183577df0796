//! Post and timer workloads written for Tokio, the counterparts of
//! perf/runtimes/asio/bench.cpp (same scenarios, options and JSON fields).
//!
//!   perf_bench_tokio SCENARIO [--threads T] [scenario options]
//!
//! "Posting a handler" is spawning a task. One thread is the current_thread
//! runtime, more threads the multi_thread runtime with that many workers.
//! The round-based shapes (spawn_many, yield_many, ping_pong, chained_spawn)
//! follow Tokio's own benches/rt_multi_threaded.rs and run inside a spawned
//! task, so their spawns are local to the runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};
use tokio::sync::{oneshot, Notify};

struct Options {
    scenario: String,
    values: HashMap<String, String>,
}

impl Options {
    fn parse() -> Options {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut values = HashMap::new();
        let mut scenario = String::new();
        let mut i = 0;
        while i < args.len() {
            if let Some(k) = args[i].strip_prefix("--") {
                let v = args.get(i + 1).cloned().unwrap_or_default();
                values.insert(k.to_string(), v);
                i += 2;
            } else {
                scenario = args[i].clone();
                i += 1;
            }
        }
        Options { scenario, values }
    }
    fn num(&self, k: &str, default: u64) -> u64 {
        self.values.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
    fn str(&self, k: &str, default: &str) -> String {
        self.values.get(k).cloned().unwrap_or_else(|| default.to_string())
    }
}

fn runtime(threads: u64) -> Runtime {
    if threads <= 1 {
        Builder::new_current_thread().enable_all().build().unwrap()
    } else {
        Builder::new_multi_thread()
            .worker_threads(threads as usize)
            .enable_all()
            .build()
            .unwrap()
    }
}

fn flavor(threads: u64) -> &'static str {
    if threads <= 1 {
        "current_thread"
    } else {
        "multi_thread"
    }
}

/// Prints the result line: fixed fields, then the scenario's metrics in order.
fn print(scenario: &str, threads: u64, metrics: &[(&str, f64)]) {
    let mut s = format!(
        "{{\"runtime\":\"tokio\",\"flavor\":\"{}\",\"scenario\":\"{}\",\"threads\":{}",
        flavor(threads),
        scenario,
        threads
    );
    for (k, v) in metrics {
        if v.is_finite() {
            s.push_str(&format!(",\"{}\":{}", k, v));
        } else {
            s.push_str(&format!(",\"{}\":null", k));
        }
    }
    s.push_str(",\"stats\":{}}");
    println!("{}", s);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn cpu_ns() -> f64 {
    // CLOCK_PROCESS_CPUTIME_ID through std is not available; /proc is enough here.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks * 1e9 / 100.0 // USER_HZ is 100 on Linux
}

// --- chained_post --------------------------------------------------------------------

fn chain(left: u64, done: oneshot::Sender<()>) {
    if left == 0 {
        let _ = done.send(());
    } else {
        tokio::spawn(async move { chain(left - 1, done) });
    }
}

fn chained_post(o: &Options) {
    let n = o.num("handlers", 10_000_000);
    let rt = runtime(1);
    let c0 = cpu_ns();
    let t0 = Instant::now();
    rt.block_on(async move {
        let (tx, rx) = oneshot::channel();
        chain(n, tx);
        rx.await.unwrap();
    });
    let d = t0.elapsed();
    let c1 = cpu_ns();
    print(
        "chained_post",
        1,
        &[
            ("handlers", n as f64),
            ("total_ms", ms(d)),
            ("ns_per_handler", d.as_nanos() as f64 / n as f64),
            ("cpu_ns_per_handler", (c1 - c0) / n as f64),
        ],
    );
}

// --- burst_post ----------------------------------------------------------------------

/// Pins the calling thread to the n-th CPU the process may use (see bench.cpp:
/// the runtime's thread and the spinning poster must not share a core).
fn pin_to_nth_cpu(n: usize) -> bool {
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return false;
        }
        let mut seen = 0;
        for cpu in 0..libc::CPU_SETSIZE as usize {
            if !libc::CPU_ISSET(cpu, &allowed) {
                continue;
            }
            if seen == n {
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut one);
                return libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0;
            }
            seen += 1;
        }
        false
    }
}

fn burst_post(o: &Options) {
    let n = o.num("handlers", 1_000_000);
    let burst = o.num("burst", 1000);
    let rt = runtime(1);
    let handle = rt.handle().clone();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let runner = std::thread::spawn(move || {
        pin_to_nth_cpu(0);
        rt.block_on(async move {
            let _ = stop_rx.await;
        });
    });
    pin_to_nth_cpu(1);
    std::thread::sleep(Duration::from_millis(20));
    let done = Arc::new(AtomicU64::new(0));
    let t_end = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut posted = 0;
    while posted < n {
        let b = burst.min(n - posted);
        for _ in 0..b {
            let done = done.clone();
            let t_end = t_end.clone();
            handle.spawn(async move {
                let d = done.load(Ordering::Relaxed) + 1;
                if d == n {
                    t_end.store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
                done.store(d, Ordering::Release);
            });
        }
        posted += b;
        while done.load(Ordering::Acquire) < posted {
            std::hint::spin_loop();
        }
    }
    let total = t_end.load(Ordering::Relaxed) as f64;
    let _ = stop_tx.send(());
    runner.join().unwrap();
    print(
        "burst_post",
        1,
        &[
            ("handlers", n as f64),
            ("burst", burst as f64),
            ("total_ms", total / 1e6),
            ("ns_per_handler", total / n as f64),
        ],
    );
}

// --- timer_storm ---------------------------------------------------------------------

fn timer_storm(o: &Options) {
    let n = o.num("timers", 1_000_000);
    let delay = Duration::from_millis(o.num("delay-ms", 300));
    let window_ns = o.num("window-ms", 100) * 1_000_000;
    let rt = runtime(1);
    let c0 = cpu_ns();
    let t0 = Instant::now();
    let (t_armed, t_last) = rt.block_on(async move {
        let base = tokio::time::Instant::now() + delay;
        let armed = Arc::new(AtomicU64::new(0));
        let fired = Arc::new(AtomicU64::new(0));
        let all_armed = Arc::new(Notify::new());
        let all_fired = Arc::new(Notify::new());
        for i in 0..n {
            let slot = (i * 7919) % n; // shuffled, evenly spread
            let at = base + Duration::from_nanos(slot * window_ns / n);
            let (armed, fired) = (armed.clone(), fired.clone());
            let (all_armed, all_fired) = (all_armed.clone(), all_fired.clone());
            tokio::spawn(async move {
                let sleep = tokio::time::sleep_until(at);
                tokio::pin!(sleep);
                // The first poll registers the timer (or finds it expired
                // already, when arming took longer than the delay).
                let expired = futures_poll_once(sleep.as_mut()).await;
                if armed.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    all_armed.notify_one();
                }
                if !expired {
                    sleep.await;
                }
                if fired.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    all_fired.notify_one();
                }
            });
        }
        all_armed.notified().await;
        let t_armed = t0.elapsed();
        all_fired.notified().await;
        (t_armed, t0.elapsed())
    });
    let c1 = cpu_ns();
    let last_expiry = delay + Duration::from_nanos(window_ns);
    print(
        "timer_storm",
        1,
        &[
            ("timers", n as f64),
            ("arm_ms", ms(t_armed)),
            ("arm_ns_per_timer", t_armed.as_nanos() as f64 / n as f64),
            ("total_ms", ms(t_last)),
            ("last_fired_late_ms", ms(t_last) - ms(last_expiry)),
            ("cpu_ns_per_timer", (c1 - c0) / n as f64),
        ],
    );
}

/// Polls a future once; true if it completed.
async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> bool {
    struct Once<F>(Option<F>);
    impl<F: std::future::Future + Unpin> std::future::Future for Once<F> {
        type Output = bool;
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<bool> {
            let mut f = self.0.take().unwrap();
            std::task::Poll::Ready(std::pin::Pin::new(&mut f).poll(cx).is_ready())
        }
    }
    Once(Some(f)).await
}

// --- sleep_precision -----------------------------------------------------------------

fn sleep_precision(o: &Options) {
    let n = o.num("count", 1000);
    let sleep = Duration::from_micros(o.num("sleep-us", 1000));
    let rt = runtime(1);
    let mut over: Vec<f64> = rt.block_on(async move {
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let t = Instant::now();
            tokio::time::sleep(sleep).await;
            v.push(t.elapsed().as_nanos() as f64 / 1e3 - sleep.as_micros() as f64);
        }
        v
    });
    let mean = over.iter().sum::<f64>() / over.len() as f64;
    over.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| {
        let idx = p / 100.0 * (over.len() - 1) as f64;
        let lo = idx.floor() as usize;
        let hi = (lo + 1).min(over.len() - 1);
        over[lo] + (over[hi] - over[lo]) * (idx - lo as f64)
    };
    print(
        "sleep_precision",
        1,
        &[
            ("count", n as f64),
            ("sleep_us", sleep.as_micros() as f64),
            ("mean_over_us", mean),
            ("p50_over_us", pct(50.0)),
            ("p99_over_us", pct(99.0)),
            ("max_over_us", pct(100.0)),
        ],
    );
}

// --- Tokio's runtime benchmark shapes ----------------------------------------------------

async fn spawn_many(tasks: u64, iters: u64) {
    for _ in 0..iters {
        let rem = Arc::new(AtomicU64::new(tasks));
        let done = Arc::new(Notify::new());
        for _ in 0..tasks {
            let (rem, done) = (rem.clone(), done.clone());
            tokio::spawn(async move {
                if rem.fetch_sub(1, Ordering::AcqRel) == 1 {
                    done.notify_one();
                }
            });
        }
        done.notified().await;
    }
}

async fn yield_many(tasks: u64, yields: u64) {
    let rem = Arc::new(AtomicU64::new(tasks));
    let done = Arc::new(Notify::new());
    for _ in 0..tasks {
        let (rem, done) = (rem.clone(), done.clone());
        tokio::spawn(async move {
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            if rem.fetch_sub(1, Ordering::AcqRel) == 1 {
                done.notify_one();
            }
        });
    }
    done.notified().await;
}

async fn ping_pong(pings: u64, iters: u64) {
    for _ in 0..iters {
        let rem = Arc::new(AtomicU64::new(pings));
        let done = Arc::new(Notify::new());
        for _ in 0..pings {
            let (rem, done) = (rem.clone(), done.clone());
            tokio::spawn(async move {
                let (tx1, rx1) = oneshot::channel::<()>();
                let (tx2, rx2) = oneshot::channel::<()>();
                tokio::spawn(async move {
                    rx1.await.unwrap();
                    tx2.send(()).unwrap();
                });
                tx1.send(()).unwrap();
                rx2.await.unwrap();
                if rem.fetch_sub(1, Ordering::AcqRel) == 1 {
                    done.notify_one();
                }
            });
        }
        done.notified().await;
    }
}

async fn chained_spawn(depth: u64, iters: u64) {
    for _ in 0..iters {
        let (tx, rx) = oneshot::channel();
        chain(depth, tx);
        rx.await.unwrap();
    }
}

// Tasks spawned from a thread outside the runtime (Runtime::spawn); with
// busy, every worker also runs a task that keeps yielding until the end.
fn spawn_outside(o: &Options) {
    let threads = o.num("threads", 1);
    let tasks = o.num("tasks", 1_000_000);
    let busy = o.num("busy", 0) != 0;
    let rt = runtime(threads);
    let rem = Arc::new(AtomicU64::new(tasks));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t0 = Instant::now();
    if busy {
        for _ in 0..threads {
            let stop = stop.clone();
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::task::yield_now().await;
                }
            });
        }
    }
    for _ in 0..tasks {
        let (rem, stop, tx) = (rem.clone(), stop.clone(), tx.clone());
        rt.spawn(async move {
            if rem.fetch_sub(1, Ordering::AcqRel) == 1 {
                stop.store(true, Ordering::Relaxed);
                let _ = tx.send(());
            }
        });
    }
    rx.recv().unwrap();
    let d = t0.elapsed();
    let name = if busy { "spawn_outside_busy" } else { "spawn_outside" };
    print(
        name,
        threads,
        &[
            ("ops", tasks as f64),
            ("total_ms", ms(d)),
            ("ns_per_op", d.as_nanos() as f64 / tasks as f64),
        ],
    );
}

fn tokio_shape(o: &Options) {
    let threads = o.num("threads", 1);
    let rt = runtime(threads);
    let name = o.scenario.clone();
    let ops;
    let t0 = Instant::now();
    match name.as_str() {
        "spawn_many" => {
            let (tasks, iters) = (o.num("tasks", 10_000), o.num("iters", 100));
            ops = tasks * iters;
            rt.block_on(async move { tokio::spawn(spawn_many(tasks, iters)).await.unwrap() });
        }
        "yield_many" => {
            let (tasks, yields) = (o.num("tasks", 200), o.num("yields", 1000));
            ops = tasks * yields;
            rt.block_on(async move { tokio::spawn(yield_many(tasks, yields)).await.unwrap() });
        }
        "ping_pong" => {
            let (pings, iters) = (o.num("pings", 1000), o.num("iters", 300));
            ops = pings * iters;
            rt.block_on(async move { tokio::spawn(ping_pong(pings, iters)).await.unwrap() });
        }
        _ => {
            let (depth, iters) = (o.num("depth", 1000), o.num("iters", 1000));
            ops = depth * iters;
            rt.block_on(async move { tokio::spawn(chained_spawn(depth, iters)).await.unwrap() });
        }
    }
    let d = t0.elapsed();
    print(
        &name,
        threads,
        &[
            ("ops", ops as f64),
            ("total_ms", ms(d)),
            ("ns_per_op", d.as_nanos() as f64 / ops as f64),
        ],
    );
}

// --- file_io: tokio::fs ----------------------------------------------------------------
// The counterpart of bench.cpp's file_io: depth tasks, each with its own
// tokio::fs::File (its own position), seek then read_exact / write_all per
// operation (tokio::fs runs each call on its blocking pool). Offsets from the
// same xorshift sequence as the C++ programs.

fn file_offset(mode: &str, block: u64, blocks: u64, i: u64) -> u64 {
    if mode != "rand4k" {
        return (i % blocks) * block;
    }
    let mut x: u64 = 88172645463325252u64 ^ i.wrapping_mul(0x9E3779B97F4A7C15);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % blocks) * block
}

fn file_io(o: &Options) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let path = o.str("file", "");
    let mode = o.str("mode", "rand4k");
    let block: u64 = if mode == "rand4k" { 4096 } else { 1 << 20 };
    let total = o.num("ops", 100_000);
    let depth = o.num("depth", 1).max(1);
    let writes = mode == "seqwrite";
    let size = std::fs::metadata(&path).expect("file_io --file").len();
    let blocks = size / block;
    assert!(blocks > 0, "file smaller than one block");
    let rt = runtime(1);
    let issued = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_ns();
    let t0 = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..depth {
            let issued = issued.clone();
            let path = path.clone();
            let mode = mode.clone();
            tasks.push(tokio::spawn(async move {
                let mut f = tokio::fs::OpenOptions::new()
                    .read(true)
                    .write(writes)
                    .open(&path)
                    .await
                    .expect("open");
                let mut buf = vec![b'w'; block as usize];
                loop {
                    let i = issued.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    f.seek(std::io::SeekFrom::Start(file_offset(&mode, block, blocks, i)))
                        .await
                        .expect("seek");
                    if writes {
                        f.write_all(&buf).await.expect("write");
                    } else {
                        f.read_exact(&mut buf).await.expect("read");
                    }
                }
                if writes {
                    f.flush().await.expect("flush");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let wall = t0.elapsed().as_nanos() as f64;
    let cpu = cpu_ns() - cpu0;
    print(
        "file_io",
        1,
        &[
            ("depth", depth as f64),
            ("ops", total as f64),
            ("ops_per_sec", total as f64 * 1e9 / wall),
            ("mib_per_sec", total as f64 * block as f64 / (1u64 << 20) as f64 * 1e9 / wall),
            ("cpu_ns_per_op", cpu / total as f64),
        ],
    );
}

fn main() {
    let o = Options::parse();
    match o.scenario.as_str() {
        "chained_post" => chained_post(&o),
        "burst_post" => burst_post(&o),
        "timer_storm" => timer_storm(&o),
        "sleep_precision" => sleep_precision(&o),
        "spawn_many" | "yield_many" | "ping_pong" | "chained_spawn" => tokio_shape(&o),
        "spawn_outside" => spawn_outside(&o),
        "file_io" => file_io(&o),
        s => {
            eprintln!("unknown scenario '{}'", s);
            std::process::exit(2);
        }
    }
}
