//! Table-driven tests of the pure planner: every trigger, spread, guard, mercy, cap and
//! back-off, without processes. Time is plain nanoseconds; pids are made up.

use std::time::Duration;

use super::*;

const S: Nanos = 1_000_000_000;
const MS: Nanos = 1_000_000;
const MB: u64 = 1024 * 1024;

/// A pool driven like the master drives it: plan, then "fork" every Spawn.
struct Sim {
    pool: Pool,
    next_pid: i32,
    now: Nanos,
}

impl Sim {
    fn new(n: usize, limits: Limits) -> Self {
        Sim {
            pool: Pool::new(n, limits, 42),
            next_pid: 100,
            now: S,
        }
    }

    /// Plans and applies spawns (as the master does); returns the other actions.
    fn step(&mut self) -> Vec<Action> {
        let actions = self.pool.plan(self.now);
        let mut rest = Vec::new();
        for a in actions {
            match a {
                Action::Spawn { id, replaces } => {
                    let pid = self.next_pid;
                    self.next_pid += 1;
                    let t = self.pool.thresholds(id);
                    let slot = pid as usize;
                    self.pool.spawned(id, pid, slot, replaces, t, self.now);
                }
                other => rest.push(other),
            }
        }
        rest
    }

    fn booting(&self) -> Vec<i32> {
        self.pool
            .workers
            .iter()
            .filter(|w| w.phase == Phase::Booting)
            .map(|w| w.pid)
            .collect()
    }

    /// Every booting worker exits with `how`; returns how many.
    fn fail_booting(&mut self, how: ExitKind) -> usize {
        let booting = self.booting();
        for &pid in &booting {
            self.exit(pid, how);
        }
        booting.len()
    }

    fn ready_all(&mut self) {
        for pid in self.booting() {
            let obs = Observation {
                ready: true,
                ..self.obs(pid)
            };
            self.pool.observe(pid, obs, self.now);
        }
    }

    fn obs(&self, pid: i32) -> Observation {
        self.pool.worker(pid).map(|w| w.obs).unwrap_or_default()
    }

    fn set(&mut self, pid: i32, f: impl FnOnce(&mut Observation)) {
        let mut o = self.obs(pid);
        f(&mut o);
        self.pool.observe(pid, o, self.now);
    }

    /// Starts the pool and makes every worker ready.
    fn boot(n: usize, limits: Limits) -> Self {
        let mut sim = Sim::new(n, limits);
        assert!(sim.step().is_empty());
        sim.ready_all();
        assert!(sim.step().is_empty());
        sim
    }

    fn pids(&self) -> Vec<i32> {
        self.pool.workers.iter().map(|w| w.pid).collect()
    }

    fn phase(&self, pid: i32) -> Phase {
        self.pool
            .worker(pid)
            .map(|w| w.phase.clone())
            .expect("worker")
    }

    fn exit(&mut self, pid: i32, how: ExitKind) -> plan::ExitReport {
        self.pool.exited(pid, how, self.now).expect("known pid")
    }
}

fn limits() -> Limits {
    Limits {
        mercy: Duration::from_secs(10),
        ..Limits::default()
    }
}

fn stops(actions: &[Action]) -> Vec<(i32, &'static str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { pid, reason, .. } => Some((*pid, reason.name())),
            _ => None,
        })
        .collect()
}

fn kills(actions: &[Action]) -> Vec<(i32, &'static str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Kill { pid, reason, .. } => Some((*pid, reason.name())),
            _ => None,
        })
        .collect()
}

#[test]
fn boots_n_workers_with_ids_1_to_n() {
    let sim = Sim::boot(3, limits());
    let ids: Vec<u32> = sim.pool.workers.iter().map(|w| w.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert!(sim.pool.workers.iter().all(|w| w.phase == Phase::Serving));
}

#[test]
fn max_requests_replaces_first_then_stops_old_with_numbers() {
    let mut sim = Sim::boot(
        1,
        Limits {
            max_requests: Some(10),
            ..limits()
        },
    );
    let old = sim.pids()[0];
    sim.set(old, |o| o.requests = 10);
    assert!(
        sim.step().is_empty(),
        "the old worker keeps serving while the successor boots"
    );
    assert_eq!(sim.pool.workers.len(), 2);
    assert!(matches!(
        sim.phase(old),
        Phase::Retiring {
            successor: Some(_),
            ..
        }
    ));
    sim.ready_all();
    let actions = sim.step();
    assert_eq!(stops(&actions), vec![(old, "max-requests")]);
    let Action::Stop { reason, .. } = &actions[0] else {
        panic!()
    };
    assert_eq!(reason.to_string(), "max-requests (10 >= 10)");
}

#[test]
fn thresholds_table() {
    // (limits, id, expected max-requests, expected lifetime)
    let rows = [
        (
            Limits {
                max_requests: Some(100),
                max_requests_delta: 10,
                ..limits()
            },
            1,
            Some(100),
            None,
        ),
        (
            Limits {
                max_requests: Some(100),
                max_requests_delta: 10,
                ..limits()
            },
            3,
            Some(120),
            None,
        ),
        (
            Limits {
                max_lifetime: Some(Duration::from_secs(60)),
                max_lifetime_delta: Duration::from_secs(5),
                ..limits()
            },
            3,
            None,
            Some(Duration::from_secs(70)),
        ),
        (Limits::default(), 2, None, None),
    ];
    for (l, id, mr, lt) in rows {
        let mut pool = Pool::new(4, l, 7);
        let t = pool.thresholds(id);
        assert_eq!((t.max_requests, t.max_lifetime), (mr, lt), "id {id}");
    }
}

#[test]
fn jitter_spreads_thresholds_within_bounds_and_is_seeded() {
    let l = Limits {
        max_requests: Some(1000),
        max_requests_jitter: 50,
        ..limits()
    };
    let draw = |seed| {
        let mut pool = Pool::new(8, l.clone(), seed);
        (0..8)
            .map(|_| pool.thresholds(1).max_requests.unwrap_or(0))
            .collect::<Vec<_>>()
    };
    let a = draw(1);
    assert!(a.iter().all(|&v| (1000..=1050).contains(&v)), "{a:?}");
    assert!(a.iter().any(|&v| v != a[0]), "jitter must spread: {a:?}");
    assert_eq!(a, draw(1), "same seed, same thresholds");
}

#[test]
fn min_lifetime_guards_planned_triggers_only() {
    let l = Limits {
        max_requests: Some(5),
        reload_on_rss: Some(100 * MB),
        min_lifetime: Duration::from_secs(10),
        ..limits()
    };
    let mut sim = Sim::boot(2, l);
    let (a, b) = (sim.pids()[0], sim.pids()[1]);
    sim.set(a, |o| o.requests = 50);
    sim.set(b, |o| o.rss = Some(200 * MB));
    let actions = sim.step();
    assert_eq!(
        sim.phase(a),
        Phase::Serving,
        "young worker is not recycled for max-requests"
    );
    assert_eq!(
        stops(&actions),
        vec![(b, "reload-on-rss")],
        "memory is never held back"
    );
    sim.now += 11 * S;
    sim.step();
    assert!(matches!(sim.phase(a), Phase::Retiring { .. }));
}

#[test]
fn lifetime_triggers_after_limit() {
    let mut sim = Sim::boot(
        1,
        Limits {
            max_lifetime: Some(Duration::from_secs(30)),
            ..limits()
        },
    );
    let pid = sim.pids()[0];
    sim.now += 29 * S;
    sim.step();
    assert_eq!(sim.phase(pid), Phase::Serving);
    sim.now += 2 * S;
    sim.step();
    assert!(matches!(
        sim.phase(pid),
        Phase::Retiring {
            reason: Reason::Lifetime { .. },
            ..
        }
    ));
}

#[test]
fn hard_limits_kill_at_once() {
    let l = Limits {
        evil_reload_on_rss: Some(500 * MB),
        harakiri: Some(Duration::from_secs(2)),
        ..limits()
    };
    let mut sim = Sim::boot(2, l);
    let (a, b) = (sim.pids()[0], sim.pids()[1]);
    sim.set(a, |o| o.rss = Some(600 * MB));
    let t0 = sim.now;
    sim.set(b, |o| o.busy_since = Some(t0));
    sim.now += 3 * S;
    let actions = sim.step();
    assert_eq!(
        kills(&actions),
        vec![(a, "evil-reload-on-rss"), (b, "harakiri")]
    );
    // Both ids are vacant: replacements are spawned at once.
    assert_eq!(
        sim.pool
            .workers
            .iter()
            .filter(|w| w.phase == Phase::Booting)
            .count(),
        2
    );
}

#[test]
fn harakiri_spares_a_request_within_the_limit() {
    let mut sim = Sim::boot(
        1,
        Limits {
            harakiri: Some(Duration::from_secs(2)),
            ..limits()
        },
    );
    let pid = sim.pids()[0];
    let t0 = sim.now;
    sim.set(pid, |o| o.busy_since = Some(t0));
    sim.now += S + 900 * MS;
    assert!(kills(&sim.step()).is_empty());
}

#[test]
fn impossible_request_start_is_invalid_telemetry() {
    let mut sim = Sim::boot(1, limits());
    let pid = sim.pids()[0];
    let future = sim.now + 100 * S;
    sim.set(pid, |o| o.busy_since = Some(future));
    assert_eq!(kills(&sim.step()), vec![(pid, "invalid-telemetry")]);
}

#[test]
fn counter_going_backwards_recycles_that_worker_only() {
    let mut sim = Sim::boot(2, limits());
    let (a, b) = (sim.pids()[0], sim.pids()[1]);
    sim.set(a, |o| o.requests = 100);
    sim.set(a, |o| o.requests = 3);
    sim.step();
    assert!(matches!(
        sim.phase(a),
        Phase::Retiring {
            reason: Reason::InvalidTelemetry(_),
            ..
        }
    ));
    assert_eq!(sim.phase(b), Phase::Serving);
}

#[test]
fn mercy_deadline_escalates_to_sigkill_once() {
    let mut sim = Sim::boot(
        1,
        Limits {
            max_requests: Some(1),
            ..limits()
        },
    );
    let old = sim.pids()[0];
    sim.set(old, |o| o.requests = 1);
    sim.step();
    sim.ready_all();
    assert_eq!(stops(&sim.step()), vec![(old, "max-requests")]);
    sim.now += 9 * S;
    assert!(kills(&sim.step()).is_empty());
    sim.now += 2 * S;
    assert_eq!(kills(&sim.step()), vec![(old, "mercy-expired")]);
    sim.now += S;
    assert!(kills(&sim.step()).is_empty(), "SIGKILL is sent once");
}

#[test]
fn reaped_worker_is_never_signalled_again() {
    let mut sim = Sim::boot(
        1,
        Limits {
            max_requests: Some(1),
            ..limits()
        },
    );
    let old = sim.pids()[0];
    sim.set(old, |o| o.requests = 1);
    sim.step();
    sim.ready_all();
    sim.step();
    let report = sim.exit(old, ExitKind::Exited(0));
    assert!(report.expected);
    sim.now += 60 * S;
    let actions = sim.step();
    assert!(kills(&actions)
        .iter()
        .chain(stops(&actions).iter())
        .all(|(p, _)| *p != old));
}

#[test]
fn cap_limits_concurrent_recycles() {
    let l = Limits {
        max_requests: Some(10),
        max_recycles: 1,
        ..limits()
    };
    let mut sim = Sim::boot(4, l);
    for pid in sim.pids() {
        sim.set(pid, |o| o.requests = 10);
    }
    sim.step();
    let booting = |sim: &Sim| {
        sim.pool
            .workers
            .iter()
            .filter(|w| w.phase == Phase::Booting)
            .count()
    };
    assert_eq!(booting(&sim), 1, "one replacement at a time");
    for _ in 0..12 {
        sim.ready_all();
        let actions = sim.step();
        for (pid, _) in stops(&actions) {
            sim.exit(pid, ExitKind::Exited(0));
        }
        let in_flight = booting(&sim)
            + sim
                .pool
                .workers
                .iter()
                .filter(|w| matches!(w.phase, Phase::Draining { .. }))
                .count();
        assert!(in_flight <= 1, "cap exceeded: {:?}", sim.pool.workers);
        let serving = sim
            .pool
            .workers
            .iter()
            .filter(|w| matches!(w.phase, Phase::Serving | Phase::Retiring { .. }))
            .count();
        assert!(serving >= 4, "capacity dropped to {serving}");
    }
    assert!(
        sim.pool.workers.iter().all(|w| w.generation > 4),
        "every worker was replaced"
    );
}

#[test]
fn cap_of_two_allows_two() {
    let l = Limits {
        max_requests: Some(10),
        max_recycles: 2,
        ..limits()
    };
    let mut sim = Sim::boot(4, l);
    for pid in sim.pids() {
        sim.set(pid, |o| o.requests = 10);
    }
    sim.step();
    assert_eq!(
        sim.pool
            .workers
            .iter()
            .filter(|w| w.phase == Phase::Booting)
            .count(),
        2
    );
}

#[test]
fn retire_first_stops_before_spawning() {
    let l = Limits {
        max_requests: Some(10),
        order: Order::RetireFirst,
        ..limits()
    };
    let mut sim = Sim::boot(2, l);
    let a = sim.pids()[0];
    sim.set(a, |o| o.requests = 10);
    let actions = sim.step();
    assert_eq!(stops(&actions), vec![(a, "max-requests")]);
    assert_eq!(
        sim.pool
            .workers
            .iter()
            .filter(|w| w.phase == Phase::Booting)
            .count(),
        1,
        "id refilled at once"
    );
}

#[test]
fn respawn_all_replaces_every_worker_one_at_a_time() {
    let mut sim = Sim::boot(3, limits());
    let originals = sim.pids();
    sim.pool.respawn_all(Reason::Respawn);
    for _ in 0..10 {
        sim.step();
        sim.ready_all();
        let actions = sim.step();
        for (pid, reason) in stops(&actions) {
            assert_eq!(reason, "respawn");
            sim.exit(pid, ExitKind::Exited(0));
        }
    }
    assert!(sim.pids().iter().all(|p| !originals.contains(p)));
    assert_eq!(sim.pool.workers.len(), 3);
}

#[test]
fn crash_respawns_with_exponential_capped_backoff() {
    let mut sim = Sim::boot(1, limits());
    let mut delays = Vec::new();
    for _ in 0..12 {
        let pid = sim.pids()[0];
        let report = sim.exit(pid, ExitKind::Signaled(6));
        assert!(!report.expected);
        delays.push(report.backoff);
        assert!(
            sim.step().is_empty() && sim.pool.workers.is_empty(),
            "no spawn before the back-off"
        );
        sim.now += report.backoff.as_nanos() as Nanos;
        sim.step();
        assert_eq!(sim.pool.workers.len(), 1);
        sim.ready_all();
    }
    assert_eq!(delays[0], Duration::from_millis(100));
    assert_eq!(delays[1], Duration::from_millis(200));
    assert!(delays.windows(2).all(|w| w[1] >= w[0]));
    assert_eq!(
        *delays.last().unwrap_or(&Duration::ZERO),
        Duration::from_secs(10),
        "capped"
    );
}

#[test]
fn backoff_is_per_worker_id() {
    let mut sim = Sim::boot(8, limits());
    for pid in sim.pids() {
        let r = sim.exit(pid, ExitKind::Signaled(9));
        assert_eq!(
            r.backoff,
            Duration::from_millis(100),
            "a mass kill is not a crash loop"
        );
    }
    sim.now += 100 * MS;
    sim.step();
    assert_eq!(sim.pool.workers.len(), 8);
}

#[test]
fn stable_worker_resets_backoff() {
    let mut sim = Sim::boot(2, limits());
    let a = sim.pids()[0];
    assert_eq!(
        sim.exit(a, ExitKind::Signaled(6)).backoff,
        Duration::from_millis(100)
    );
    sim.now += 100 * MS;
    sim.step();
    sim.ready_all();
    let young = *sim.pids().last().expect("replacement");
    let r = sim.exit(young, ExitKind::Signaled(6));
    assert_eq!(
        r.backoff,
        Duration::from_millis(200),
        "second quick failure of the same id"
    );
    sim.now += 200 * MS;
    sim.step();
    sim.ready_all();
    sim.now += 6 * S;
    sim.step();
    let stable = *sim.pids().last().expect("replacement");
    let r = sim.exit(stable, ExitKind::Signaled(6));
    assert_eq!(
        r.backoff,
        Duration::ZERO,
        "a long-lived worker's crash is not a quick failure"
    );
    sim.step();
    sim.ready_all();
    let again = *sim.pids().last().expect("replacement");
    let r = sim.exit(again, ExitKind::Signaled(6));
    assert_eq!(
        r.backoff,
        Duration::from_millis(100),
        "back-off starts over after a stable period"
    );
}

#[test]
fn app_that_cannot_load_stops_molt_on_first_failure() {
    let mut sim = Sim::new(2, limits());
    sim.step();
    let pids = sim.pids();
    sim.exit(pids[0], ExitKind::Exited(EXIT_APP_LOAD));
    let actions = sim.step();
    assert_eq!(kills(&actions), vec![(pids[1], "fatal")]);
    sim.exit(pids[1], ExitKind::Signaled(9));
    let actions = sim.step();
    assert!(
        matches!(actions.as_slice(), [Action::Exit(Outcome::BootFailure(msg))] if msg.contains("cannot be loaded"))
    );
}

#[test]
fn repeated_boot_failures_stop_molt_after_the_limit() {
    let mut sim = Sim::new(
        1,
        Limits {
            max_boot_failures: 3,
            ..limits()
        },
    );
    let mut exits = 0;
    for _ in 0..20 {
        let actions = sim.step();
        if actions.iter().any(|a| matches!(a, Action::Exit(_))) {
            break;
        }
        if let Some(pid) = sim.pids().first().copied() {
            sim.exit(pid, ExitKind::Exited(1));
            exits += 1;
        }
        sim.now += 20 * S;
    }
    assert_eq!(exits, 3);
}

#[test]
fn boot_failure_after_a_good_generation_keeps_the_old_workers() {
    let mut sim = Sim::boot(1, limits());
    let old = sim.pids()[0];
    sim.pool.respawn_all(Reason::Reload);
    for _ in 0..6 {
        sim.step();
        sim.fail_booting(ExitKind::Exited(EXIT_APP_LOAD));
        sim.now += 20 * S;
    }
    assert!(
        matches!(sim.phase(old), Phase::Retiring { .. }),
        "the old worker keeps serving"
    );
}

#[test]
fn successors_failing_to_boot_back_off_while_the_old_worker_serves() {
    let mut sim = Sim::boot(1, limits());
    sim.now += 10 * S; // the old worker is long stable
    sim.step();
    sim.pool.respawn_all(Reason::Reload);
    let mut spawned_at = Vec::new();
    for _ in 0..2000 {
        sim.step();
        let failed = sim.fail_booting(ExitKind::Exited(EXIT_APP_LOAD));
        spawned_at.extend(std::iter::repeat_n(sim.now, failed));
        sim.now += MS;
    }
    // 2 s of turns: 100 + 200 + 400 + 800 ms between attempts, not one per turn.
    let first: Vec<_> = spawned_at.iter().take(8).collect();
    assert!(
        spawned_at.len() <= 6,
        "{} spawns, from {first:?}",
        spawned_at.len()
    );
    let gaps: Vec<Nanos> = spawned_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0]),
        "growing gaps: {gaps:?}"
    );
}

#[test]
fn a_reload_starts_without_the_back_off_of_the_broken_generation() {
    let mut sim = Sim::boot(1, limits());
    sim.now += 10 * S;
    sim.step();
    sim.pool.respawn_all(Reason::Reload);
    for _ in 0..5 {
        sim.step();
        sim.fail_booting(ExitKind::Exited(EXIT_APP_LOAD));
        sim.now += 10 * MS;
    }
    sim.step();
    assert_eq!(sim.booting().len(), 0, "backing off");
    sim.pool.respawn_all(Reason::Reload); // the fixed app
    sim.step();
    assert_eq!(sim.booting().len(), 1, "the next generation starts at once");
}

#[test]
fn boot_timeout_kills_and_counts_as_boot_failure() {
    let mut sim = Sim::new(
        1,
        Limits {
            boot_timeout: Duration::from_secs(5),
            ..limits()
        },
    );
    sim.step();
    let pid = sim.pids()[0];
    sim.now += 6 * S;
    assert_eq!(kills(&sim.step()), vec![(pid, "boot-timeout")]);
    let r = sim.exit(pid, ExitKind::Signaled(9));
    assert!(r.during_boot && !r.foreign_kill);
}

#[test]
fn foreign_sigkill_is_reported() {
    let mut sim = Sim::boot(1, limits());
    let pid = sim.pids()[0];
    sim.set(pid, |o| o.rss = Some(300 * MB));
    let r = sim.exit(pid, ExitKind::Signaled(9));
    assert!(r.foreign_kill && !r.expected);
    assert_eq!(r.last_rss, Some(300 * MB));
}

#[test]
fn scale_up_and_down() {
    let mut sim = Sim::boot(2, limits());
    sim.pool.set_target(3);
    sim.step();
    assert_eq!(sim.pool.workers.len(), 3);
    sim.ready_all();
    sim.pool.set_target(1);
    let actions = sim.step();
    let ids: Vec<u32> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop {
                id,
                reason: Reason::ScaleDown,
                ..
            } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![2, 3]);
    sim.pool.set_target(0);
    assert_eq!(sim.pool.target, 1, "never below one worker");
}

#[test]
fn graceful_shutdown_drains_then_exits_and_is_sticky() {
    let mut sim = Sim::boot(2, limits());
    sim.pool.shutdown(Shutdown::Graceful);
    let actions = sim.step();
    assert_eq!(stops(&actions).len(), 2);
    sim.pool.respawn_all(Reason::Reload);
    sim.pool.set_target(5);
    assert!(sim.step().is_empty(), "no respawn or scale during shutdown");
    for pid in sim.pids() {
        sim.exit(pid, ExitKind::Exited(0));
    }
    assert_eq!(sim.step(), vec![Action::Exit(Outcome::Clean)]);
}

#[test]
fn graceful_shutdown_kills_after_mercy_and_quick_overrides() {
    let mut sim = Sim::boot(1, limits());
    let pid = sim.pids()[0];
    sim.pool.shutdown(Shutdown::Graceful);
    sim.step();
    sim.now += 11 * S;
    assert_eq!(kills(&sim.step()), vec![(pid, "mercy-expired")]);

    let mut sim = Sim::boot(2, limits());
    sim.pool.shutdown(Shutdown::Graceful);
    sim.step();
    sim.pool.shutdown(Shutdown::Quick);
    assert_eq!(kills(&sim.step()).len(), 2);
    sim.pool.shutdown(Shutdown::Graceful);
    assert_eq!(
        sim.pool.shutting_down(),
        Some(Shutdown::Quick),
        "quick is never downgraded"
    );
}

#[test]
fn worker_raised_rss_flag_drains_without_waiting_for_successor() {
    let mut sim = Sim::boot(
        1,
        Limits {
            reload_on_rss: Some(100 * MB),
            ..limits()
        },
    );
    let pid = sim.pids()[0];
    sim.set(pid, |o| {
        o.wants_rss = true;
        o.rss = Some(120 * MB)
    });
    let actions = sim.step();
    assert_eq!(stops(&actions), vec![(pid, "reload-on-rss")]);
    let Action::Stop { reason, .. } = &actions[0] else {
        panic!()
    };
    assert_eq!(reason.to_string(), "reload-on-rss (120.0 MB >= 100.0 MB)");
    assert_eq!(
        sim.pool
            .workers
            .iter()
            .filter(|w| w.phase == Phase::Booting)
            .count(),
        1
    );
}

#[test]
fn a_successor_over_its_own_limit_at_once_still_retires_its_predecessor() {
    let mut sim = Sim::boot(
        1,
        Limits {
            max_requests: Some(10),
            ..limits()
        },
    );
    let old = sim.pids()[0];
    sim.set(old, |o| o.requests = 10);
    sim.step();
    let new = *sim.pids().last().expect("successor");
    // The successor is ready and already past its own limit when the master first sees it.
    sim.set(new, |o| {
        o.ready = true;
        o.requests = 12
    });
    let actions = sim.step();
    assert_eq!(
        stops(&actions),
        vec![(old, "max-requests")],
        "the predecessor stops"
    );
    assert!(
        sim.pool.workers.len() <= 2,
        "never three processes for one id: {:?}",
        sim.pool.workers
    );
    assert!(
        matches!(
            sim.phase(new),
            Phase::Retiring {
                successor: None,
                ..
            }
        ),
        "its own successor waits for the cap"
    );
}
