//! Tests of the pool memory rules: the pure check, the leases, and the pool acting on
//! them one action at a time (no processes; time and memory are plain numbers).

use std::time::Duration;

use super::rules::{check, leases, room_for_one_more, Census, Decision, Streaks};
use super::*;

const S: Nanos = 1_000_000_000;
const MB: u64 = 1024 * 1024;

fn rule(limit_mb: u64, cycles: u32) -> Option<PoolRule> {
    Some(PoolRule {
        limit: limit_mb * MB,
        cycles,
    })
}

fn pool_limits(soft: Option<PoolRule>, hard: Option<PoolRule>) -> PoolLimits {
    PoolLimits {
        metric: Metric::Rss,
        soft,
        hard,
        soft_exec: Some("notify-ops".into()),
        check_every: Duration::from_secs(1),
    }
}

fn census(total_mb: u64, largest_mb: u64, fresh_mb: u64) -> Census {
    Census {
        total: total_mb * MB,
        largest: Some((7, largest_mb * MB)),
        fresh: fresh_mb * MB,
    }
}

fn name(d: &Option<Decision>) -> String {
    match d {
        None => "none".into(),
        Some(Decision::Recycle { pid, reason, exec }) => {
            format!("recycle {pid} {} exec={exec}", reason.name())
        }
        Some(Decision::RestartAll(r)) => format!("restart-all {}", r.name()),
    }
}

#[test]
fn check_decides_one_action_from_the_streaks() {
    let limits = pool_limits(rule(700, 1), rule(850, 2));
    // (total, largest, fresh, streaks before) -> decision
    let cases = [
        (600, 300, 10, (0, 0), "none"),
        (710, 300, 10, (0, 0), "recycle 7 pool-soft-limit exec=true"),
        // Over the hard limit once: not yet (2 cycles); the soft rule acts meanwhile.
        (900, 300, 10, (0, 0), "recycle 7 pool-soft-limit exec=true"),
        // Second check over the hard limit; recycling the largest (900-300+10) suffices.
        (900, 300, 10, (0, 1), "recycle 7 pool-hard-limit exec=false"),
        // Second check, no single worker big enough: every worker restarts.
        (900, 40, 10, (0, 1), "restart-all pool-hard-limit"),
    ];
    for (total, largest, fresh, (soft, hard), want) in cases {
        let mut streaks = Streaks { soft, hard };
        let got = check(&limits, &census(total, largest, fresh), &mut streaks);
        assert_eq!(name(&got), want, "total {total} MB");
    }
}

#[test]
fn streaks_reset_when_the_pool_is_back_under() {
    let limits = pool_limits(None, rule(850, 3));
    let mut streaks = Streaks::default();
    for _ in 0..2 {
        assert_eq!(check(&limits, &census(900, 40, 10), &mut streaks), None);
    }
    assert_eq!(streaks.hard, 2);
    assert_eq!(check(&limits, &census(800, 40, 10), &mut streaks), None);
    assert_eq!(streaks.hard, 0);
}

#[test]
fn leases_split_the_soft_headroom_minus_one_fresh_worker() {
    let limits = pool_limits(rule(100, 1), None);
    let serving = [(1, 20 * MB), (2, 30 * MB)];
    // 100 - (50 total + 10 fresh) = 40 MB headroom, 20 MB each.
    let got = leases(&limits, &census(50, 30, 10), &serving);
    assert_eq!(got, vec![(1, 40 * MB), (2, 50 * MB)]);
    // Over the limit: no headroom, the next growth retires a worker.
    let got = leases(&limits, &census(120, 30, 10), &serving);
    assert_eq!(got, vec![(1, 20 * MB), (2, 30 * MB)]);
    // No soft limit, no leases.
    assert!(leases(
        &pool_limits(None, rule(100, 1)),
        &census(50, 30, 10),
        &serving
    )
    .is_empty());
}

#[test]
fn room_for_one_more_uses_the_lowest_limit() {
    let limits = pool_limits(rule(100, 1), rule(150, 1));
    assert!(room_for_one_more(&limits, &census(80, 30, 20)));
    assert!(!room_for_one_more(&limits, &census(81, 30, 20)));
    assert!(room_for_one_more(
        &pool_limits(None, None),
        &census(900, 30, 20)
    ));
}

#[test]
fn pss_between_smaps_reads_follows_the_rss_change() {
    let o = Observation {
        rss: Some(130 * MB),
        pss: Some(40 * MB),
        uss: Some(10 * MB),
        smaps_rss: Some(100 * MB),
        ..Observation::default()
    };
    assert_eq!(o.memory(Metric::Rss), Some(130 * MB));
    assert_eq!(o.memory(Metric::Pss), Some(70 * MB));
    assert_eq!(o.memory(Metric::Uss), Some(40 * MB));
    let shrunk = Observation {
        rss: Some(10 * MB),
        ..o
    };
    assert_eq!(shrunk.memory(Metric::Uss), Some(0));
    assert_eq!(Observation::default().memory(Metric::Pss), None);
}

/// Drives a pool like the master: plan, fork every Spawn, report memory.
struct Driver {
    pool: Pool,
    now: Nanos,
    next_pid: i32,
}

impl Driver {
    fn boot(n: usize, limits: Limits) -> Self {
        let mut d = Driver {
            pool: Pool::new(n, limits, 1),
            now: S,
            next_pid: 100,
        };
        d.step();
        for pid in d.pids() {
            d.report(pid, 10, true);
        }
        d.sampled();
        d
    }

    fn pids(&self) -> Vec<i32> {
        self.pool.workers.iter().map(|w| w.pid).collect()
    }

    fn report(&mut self, pid: i32, rss_mb: u64, ready: bool) {
        let obs = Observation {
            ready,
            rss: Some(rss_mb * MB),
            ..self.pool.worker(pid).map(|w| w.obs).unwrap_or_default()
        };
        self.pool.observe(pid, obs, self.now);
    }

    /// A memory round, a moment after the last plan (as in the master's next turn).
    fn sampled(&mut self) {
        self.now += 1;
        self.pool.memory_sampled(self.now);
    }

    fn step(&mut self) -> Vec<Action> {
        let mut rest = Vec::new();
        for a in self.pool.plan(self.now) {
            match a {
                Action::Spawn { id, replaces } => {
                    let pid = self.next_pid;
                    self.next_pid += 1;
                    let t = self.pool.thresholds(id);
                    self.pool
                        .spawned(id, pid, pid as usize, replaces, t, self.now);
                }
                other => rest.push(other),
            }
        }
        rest
    }

    fn tick(&mut self) -> Vec<Action> {
        self.now += S;
        self.step()
    }
}

fn stopped(actions: &[Action]) -> Vec<(i32, &'static str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { pid, reason, .. } => Some((*pid, reason.name())),
            _ => None,
        })
        .collect()
}

fn execs(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Exec { .. }))
        .count()
}

#[test]
fn soft_limit_recycles_the_largest_then_waits_for_a_fresh_sample() {
    let limits = Limits {
        pool: pool_limits(rule(100, 1), None),
        ..Limits::default()
    };
    let mut d = Driver::boot(3, limits);
    assert!(d.tick().is_empty(), "10 MB each: under the limit");
    let (a, b, c) = (d.pids()[0], d.pids()[1], d.pids()[2]);
    d.report(a, 30, true);
    d.report(b, 60, true);
    d.report(c, 20, true);
    d.sampled();
    // 110 > 100, and 110 + 10 (a fresh worker) leaves no room: retire first, now.
    let actions = d.tick();
    assert_eq!(stopped(&actions), vec![(b, "pool-soft-limit")]);
    assert_eq!(execs(&actions), 1, "pool-soft-exec runs once");
    // Still over while b drains: nothing more (one action in flight).
    d.sampled();
    assert!(stopped(&d.tick()).is_empty());
    // b exits; its replacement boots and becomes ready at 10 MB.
    d.pool.exited(b, ExitKind::Exited(0), d.now);
    let actions = d.tick();
    assert!(stopped(&actions).is_empty());
    let fresh = *d.pids().last().expect("replacement");
    d.report(fresh, 10, true);
    // Quiet again, but no sample since: no check yet.
    assert!(stopped(&d.tick()).is_empty());
    d.sampled();
    assert!(stopped(&d.tick()).is_empty(), "30 + 20 + 10 = 60 MB: fine");
}

#[test]
fn a_crossed_lease_drains_that_worker_and_runs_the_command() {
    let limits = Limits {
        pool: pool_limits(rule(100, 1), None),
        ..Limits::default()
    };
    let mut d = Driver::boot(2, limits);
    let leases = d.pool.leases();
    // 100 - (20 + 10 fresh) = 70 MB headroom, 35 each above 10 MB.
    assert!(leases.iter().all(|&(_, ceiling)| ceiling == 45 * MB));
    let a = d.pids()[0];
    let obs = Observation {
        wants_pool: true,
        rss: Some(46 * MB),
        ..d.pool.worker(a).map(|w| w.obs).unwrap_or_default()
    };
    d.pool.observe(a, obs, d.now);
    let actions = d.tick();
    assert_eq!(stopped(&actions), vec![(a, "pool-lease")]);
    assert_eq!(execs(&actions), 1);
}

#[test]
fn hard_limit_restarts_every_worker_when_one_is_not_enough() {
    let limits = Limits {
        pool: PoolLimits {
            soft_exec: None,
            ..pool_limits(None, rule(100, 2))
        },
        ..Limits::default()
    };
    let mut d = Driver::boot(4, limits);
    for pid in d.pids() {
        d.report(pid, 40, true);
    }
    d.sampled();
    assert!(d.tick().is_empty(), "first check over: not yet");
    d.sampled();
    d.tick();
    let marked = d
        .pool
        .workers
        .iter()
        .filter(|w| {
            w.respawn.as_ref().map(Reason::name) == Some("pool-hard-limit")
                || matches!(&w.phase, Phase::Retiring { reason, .. } | Phase::Draining { reason, .. } if reason.name() == "pool-hard-limit")
        })
        .count();
    assert_eq!(
        marked, 4,
        "160 - 40 + 10 (fresh) > 100: the whole pool restarts"
    );
}

#[test]
fn replace_first_when_there_is_room() {
    let limits = Limits {
        pool: pool_limits(rule(100, 1), None),
        ..Limits::default()
    };
    let mut d = Driver::boot(2, limits);
    assert_eq!(d.pool.order(), Order::ReplaceFirst);
    let a = d.pids()[0];
    d.report(a, 85, true);
    assert_eq!(d.pool.order(), Order::RetireFirst, "95 + 10 > 100");
}

#[test]
fn reload_on_pss_reads_pss_not_rss() {
    let limits = Limits {
        reload_on_pss: Some(150 * MB),
        ..Limits::default()
    };
    let mut d = Driver::boot(2, limits);
    let (a, b) = (d.pids()[0], d.pids()[1]);
    for (pid, pss) in [(a, 60), (b, 170)] {
        let obs = Observation {
            rss: Some(220 * MB),
            pss: Some(pss * MB),
            smaps_rss: Some(220 * MB),
            ..d.pool.worker(pid).map(|w| w.obs).unwrap_or_default()
        };
        d.pool.observe(pid, obs, d.now);
    }
    assert_eq!(stopped(&d.tick()), vec![(b, "reload-on-pss")]);
}
