//! Serving the requests of several connections in one call to the app.
//!
//! A WSGI worker pays a round trip to its Python child per call: a write, a context
//! switch to the child, its answer, a switch back. When epoll reports several readable
//! connections at once (8 busy keep-alive connections per worker is the usual shape under
//! load), the first request of each connection that holds a complete head and no body
//! goes to the app in one [`App::call_many`](crate::app::App::call_many): one round trip
//! for the batch. Everything else (bodies, `Expect`, the uwsgi protocol, pipelined
//! requests after the first, a single readable connection) takes the usual path, as does
//! every app that does not batch.

use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;

use log::error;

use super::{Arrived, Conn, Done, Runtime};
use crate::app::{Request, Response};
use crate::config::Protocol;
use crate::scoreboard::mono_ns;
use crate::worker::body::BodyReader;
use crate::worker::http::{self, Framing, HeadInfo, MAX_HEADERS};
use crate::worker::runtime::IO_TIMEOUT;

/// A connection whose first buffered request can join the batch.
struct Candidate<'b> {
    method: &'b str,
    target: &'b str,
    headers: &'b [httparse::Header<'b>],
    info: HeadInfo,
    keep_alive: bool,
}

/// How one batched request ended.
struct Outcome {
    written: Option<(u16, u64)>,
    keep_alive: bool,
    /// From the end of the previous response in the batch (or the batch's start).
    micros: u64,
}

impl Runtime<'_> {
    /// Serves the connections epoll reported readable (see the module doc).
    pub(super) fn serve_ready(&mut self, tokens: &[u64]) {
        let shared = self.shared;
        if tokens.len() < 2 || shared.measure_requests || !shared.app.batches() {
            for &token in tokens {
                self.on_readable(token);
            }
            return;
        }
        let mut ready: Vec<(u64, Conn)> = Vec::with_capacity(tokens.len());
        for &token in tokens {
            let Some(mut conn) = self.conns.take(token) else {
                continue;
            };
            match self.read_more(&mut conn) {
                Arrived::Bytes => ready.push((token, conn)),
                Arrived::Nothing => self.conns.restore(token, conn),
                Arrived::Closed => {
                    self.conns.release(token);
                    self.close(conn);
                }
            }
        }
        self.serve_batch(&mut ready);
        for (token, mut conn) in ready {
            if self.serve_buffered(&mut conn) {
                self.conns.restore(token, conn);
            } else {
                self.conns.release(token);
                self.close(conn);
            }
        }
    }

    /// Answers the first request of every eligible connection in one app call; the
    /// responses land in each connection's write buffer (streams go out directly), and
    /// each connection's buffer then starts at its next request.
    fn serve_batch(&mut self, ready: &mut [(u64, Conn)]) {
        let served = self.answer_batch(ready);
        for (i, head_len, out, outcome) in served {
            let conn = &mut ready[i].1;
            conn.rbuf.drain(..head_len);
            conn.wbuf.extend_from_slice(&out);
            conn.served += 1;
            if outcome.written.is_none() || !outcome.keep_alive {
                conn.close_after = true;
            }
        }
    }

    /// Picks the candidates and serves them: (index in `ready`, head length, response
    /// bytes, outcome) for each, or nothing when fewer than two qualify.
    fn answer_batch(&mut self, ready: &[(u64, Conn)]) -> Vec<(usize, usize, Vec<u8>, Outcome)> {
        let mut storage = vec![[httparse::EMPTY_HEADER; MAX_HEADERS]; ready.len()];
        let draining = self.shared.draining.load(Relaxed);
        let mut picked: Vec<(usize, Candidate<'_>)> = Vec::new();
        for (i, ((_, conn), headers)) in ready.iter().zip(storage.iter_mut()).enumerate() {
            if let Some(c) = self.candidate(conn, headers, draining) {
                picked.push((i, c));
            }
        }
        if picked.len() < 2 {
            return Vec::new(); // nothing to gain: the usual path serves them
        }
        let fds: Vec<_> = picked
            .iter()
            .map(|(i, _)| ready[*i].1.fd.as_raw_fd())
            .collect();
        let remotes: Vec<_> = picked.iter().map(|(i, _)| ready[*i].1.remote).collect();
        let mut outs: Vec<Vec<u8>> = vec![Vec::new(); picked.len()];
        let outcomes = self.call_batch(&picked, &fds, &remotes, &mut outs);
        picked
            .iter()
            .zip(outs)
            .zip(outcomes)
            .map(|(((i, c), out), outcome)| (*i, c.info.head_len, out, outcome))
            .collect()
    }

    /// The connection's first request, if it is a complete HTTP head without a body.
    fn candidate<'b>(
        &self,
        conn: &'b Conn,
        headers: &'b mut [httparse::Header<'b>; MAX_HEADERS],
        draining: bool,
    ) -> Option<Candidate<'b>> {
        if conn.protocol != Protocol::Http || conn.close_after || conn.half_closed {
            return None;
        }
        let (req, info) = http::parse_head(&conn.rbuf, headers, self.limits).ok()??;
        let no_body = matches!(info.framing, Framing::None | Framing::Length(0));
        if !no_body || info.expect_continue {
            return None;
        }
        Some(Candidate {
            method: req.method.unwrap_or("GET"),
            target: req.path.unwrap_or("/"),
            headers: req.headers,
            keep_alive: info.keep_alive && !draining,
            info,
        })
    }

    /// One `call_many` for the candidates; writes each response as it comes, then
    /// accounts and logs every request in order.
    fn call_batch(
        &mut self,
        picked: &[(usize, Candidate<'_>)],
        fds: &[std::os::fd::RawFd],
        remotes: &[Option<std::net::SocketAddr>],
        outs: &mut [Vec<u8>],
    ) -> Vec<Outcome> {
        let shared = self.shared;
        let mut bodies: Vec<BodyReader<'_>> = fds
            .iter()
            .map(|fd| BodyReader::new(Framing::None, &[], *fd, IO_TIMEOUT, false))
            .collect();
        let mut reqs: Vec<Request<'_>> = picked
            .iter()
            .zip(bodies.iter_mut())
            .zip(remotes)
            .map(|(((_, c), body), remote)| {
                Request::new(c.method, c.target, c.info.version, c.headers, *remote, body)
            })
            .collect();
        // Harakiri and the durations see each request as the worker would serving them
        // one by one: the child answers them in order, so request i+1 starts when the
        // response to request i is written.
        let n = reqs.len();
        let core = &shared.slot().cores[self.thread];
        core.request_id.fetch_add(1, Relaxed);
        let mut clock = mono_ns();
        core.busy_since_ns.store(clock, Relaxed);
        let mut outcomes: Vec<Option<Outcome>> = (0..reqs.len()).map(|_| None).collect();
        let this = &*self;
        let mut respond = |i: usize, response: Response| {
            let (_, c) = &picked[i];
            // As one by one: a request after the one that reached max-requests (or any
            // drain) is answered with `Connection: close`.
            let keep_alive =
                c.keep_alive && !shared.draining.load(Relaxed) && !super::wants_close(&response);
            let is_head = c.method == "HEAD";
            let written =
                this.write_response(&mut outs[i], fds[i], &c.info, response, keep_alive, is_head);
            let now = mono_ns();
            outcomes[i] = Some(Outcome {
                written,
                keep_alive,
                micros: now.saturating_sub(clock) / 1000,
            });
            clock = now;
            if i + 1 < n {
                core.request_id.fetch_add(1, Relaxed);
                core.busy_since_ns.store(now, Relaxed);
            }
        };
        if catch_unwind(AssertUnwindSafe(|| {
            shared.app.call_many(&mut reqs, &mut respond)
        }))
        .is_err()
        {
            error!(
                "app panicked in a batch of {} requests; answering 500",
                reqs.len()
            );
        }
        drop(reqs);
        core.busy_since_ns.store(0, Relaxed);
        self.now = mono_ns();
        shared
            .slot()
            .batched
            .fetch_add(outcomes.len() as u64, Relaxed);
        let mut done = Vec::with_capacity(outcomes.len());
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let (_, c) = &picked[i];
            let outcome = outcome.unwrap_or_else(|| {
                let res = Response::text(500, &b"Internal Server Error\n"[..]);
                let written = self.write_response(&mut outs[i], fds[i], &c.info, res, false, false);
                Outcome {
                    written,
                    keep_alive: false,
                    micros: 0,
                }
            });
            let micros = outcome.micros;
            self.count_request(outcome.written, micros);
            self.observe(&Done {
                method: c.method,
                target: c.target,
                info: &c.info,
                headers: c.headers,
                remote: remotes[i],
                written: outcome.written,
                micros,
                before: None,
            });
            done.push(outcome);
        }
        done
    }
}
