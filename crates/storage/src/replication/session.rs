//! Session guarantees over asynchronous replicas: the decisions, with no database in sight.
//!
//! A client that wants to read its own writes, or never to see time go backwards, carries a
//! [`Session`]: the LSN of its last write (the *token* the write's answer carried) and the
//! highest LSN any of its reads reflected. Its [`floor`](Session::floor) is what a read must
//! reflect. [`ReadPolicy::choose`] picks the node for a read from what is known of each
//! replica; [`ReadPolicy::next`] says, once a replica has told how far it has replayed, whether
//! to serve the read there, wait a little longer, or give up on replicas and read the primary.
//!
//! Everything here is pure and cheap, so a service can run it over its own connections (the
//! thin loops over connections are `replicas::read` and [`crate::Db::read_fresh`]). The server keeps nothing: the
//! session travels with the client, as a cookie or a header would carry it.

use std::time::Duration;

use super::lsn::Lsn;

/// What a client asks of its reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Guarantees {
    /// A read reflects every write this client was answered for.
    pub read_your_writes: bool,
    /// A read reflects at least what every earlier read of this client reflected, whichever
    /// replica served either.
    pub monotonic_reads: bool,
}

impl Guarantees {
    /// No guarantee: any replica, however far behind.
    pub const NONE: Guarantees = Guarantees {
        read_your_writes: false,
        monotonic_reads: false,
    };
    /// Both guarantees.
    pub const BOTH: Guarantees = Guarantees {
        read_your_writes: true,
        monotonic_reads: true,
    };
}

/// One client's session: the guarantees it asked for and the LSNs that make them checkable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Session {
    guarantees: Guarantees,
    /// The token of the latest write this client was answered for.
    wrote: Option<Lsn>,
    /// The highest LSN a read of this client is known to have reflected (an upper bound: see
    /// [`Session::saw`]).
    read: Option<Lsn>,
}

impl Session {
    /// A new session, having neither written nor read.
    pub fn new(guarantees: Guarantees) -> Self {
        Self {
            guarantees,
            ..Self::default()
        }
    }

    /// The guarantees this session asked for.
    pub fn guarantees(&self) -> Guarantees {
        self.guarantees
    }

    /// Records a write's token. Tokens only move the session forward.
    pub fn wrote(&mut self, token: Lsn) {
        self.wrote = self.wrote.max(Some(token));
    }

    /// Records that a read reflected the log up to at most `lsn`. The caller must pass an LSN
    /// taken *after* the read's snapshot (an upper bound of what it saw): a lower one would let a
    /// later read on another replica go backwards.
    pub fn saw(&mut self, lsn: Lsn) {
        self.read = self.read.max(Some(lsn));
    }

    /// The token of the latest write, if any.
    pub fn last_write(&self) -> Option<Lsn> {
        self.wrote
    }

    /// The highest LSN a read reflected, if any.
    pub fn last_read(&self) -> Option<Lsn> {
        self.read
    }

    /// What the next read must reflect under this session's guarantees; `None`: anything goes.
    pub fn floor(&self) -> Option<Lsn> {
        let wrote = self.wrote.filter(|_| self.guarantees.read_your_writes);
        let read = self.read.filter(|_| self.guarantees.monotonic_reads);
        wrote.max(read)
    }
}

/// Where reads may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// Always the primary: never stale, and every read loads the writer.
    Primary,
    /// The replicas, in turn; the primary only when a guarantee cannot be met on them in time.
    #[default]
    Replicas,
    /// The replicas and the primary, in turn.
    Any,
}

/// A node a read can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Primary,
    /// The replica at this index of the caller's list.
    Replica(usize),
}

/// What a router knows of one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaView {
    /// Whether it answered last time (a replica that did not is skipped until it does).
    pub down: bool,
    /// The highest replay LSN it reported; `None` before it was asked.
    pub replayed: Option<Lsn>,
}

/// What to do once a replica has told how far it has replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It has replayed the floor: read there.
    Serve,
    /// Not yet: ask again after this long.
    Wait(Duration),
    /// It did not get there within the bound: read the primary instead.
    Primary,
}

/// How reads are routed and how long a read may wait for a replica to catch up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPolicy {
    pub from: ReadFrom,
    /// The longest a read waits for a replica to replay its floor before it goes to the
    /// primary. Zero: never wait.
    pub wait_max: Duration,
    /// How often a waiting read asks the replica again.
    pub poll_interval: Duration,
}

impl Default for ReadPolicy {
    fn default() -> Self {
        Self {
            from: ReadFrom::Replicas,
            wait_max: WAIT_MAX_DEFAULT,
            poll_interval: POLL_INTERVAL_DEFAULT,
        }
    }
}

/// A read waits at most this long by default: about ten times an asynchronous standby's usual
/// replay lag on one machine (a few ms), short enough that a client barely notices falling back
/// to the primary when a replica is really behind.
pub const WAIT_MAX_DEFAULT: Duration = Duration::from_millis(50);

/// A waiting read asks again every millisecond by default: replay lag on one machine is a few
/// ms, so a coarser poll would add most of the wait itself; each poll is one tiny query.
pub const POLL_INTERVAL_DEFAULT: Duration = Duration::from_millis(1);

impl ReadPolicy {
    /// Where to send a read first. `turn` spreads reads over the nodes (a caller's counter);
    /// `floor` is the session's [`Session::floor`].
    ///
    /// Without a floor, the replica whose turn it is. With one: that replica if it is known to
    /// have replayed the floor, or not known at all; else another replica known to have; else
    /// that replica anyway (the read then waits on it, see [`ReadPolicy::next`]), unless
    /// waiting is off, and then the primary. Replicas marked down are skipped; with none left,
    /// the primary.
    pub fn choose(&self, floor: Option<Lsn>, replicas: &[ReplicaView], turn: usize) -> Target {
        let up: Vec<usize> = (0..replicas.len()).filter(|i| !replicas[*i].down).collect();
        if self.from == ReadFrom::Primary || up.is_empty() {
            return Target::Primary;
        }
        let slots = up.len() + usize::from(self.from == ReadFrom::Any);
        let first = turn % slots;
        if first == up.len() {
            return Target::Primary;
        }
        let Some(floor) = floor else {
            return Target::Replica(up[first]);
        };
        let has = |i: usize| replicas[i].replayed.is_none_or(|r| r >= floor);
        let known_there = |i: usize| replicas[i].replayed.is_some_and(|r| r >= floor);
        if has(up[first]) {
            return Target::Replica(up[first]);
        }
        let rotated = up.iter().cycle().skip(first).take(up.len());
        if let Some(&i) = rotated.clone().find(|&&i| known_there(i)) {
            return Target::Replica(i);
        }
        if self.wait_max.is_zero() {
            Target::Primary
        } else {
            Target::Replica(up[first])
        }
    }

    /// After a replica reported it has replayed up to `replayed`, this read having waited
    /// `waited` so far: serve it there, wait (never past [`ReadPolicy::wait_max`]), or go to the
    /// primary.
    pub fn next(&self, floor: Option<Lsn>, replayed: Lsn, waited: Duration) -> Step {
        match floor {
            None => Step::Serve,
            Some(floor) if replayed >= floor => Step::Serve,
            Some(_) if waited >= self.wait_max => Step::Primary,
            Some(_) => Step::Wait(self.poll_interval.min(self.wait_max - waited)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(n: u64) -> Lsn {
        Lsn::new(n)
    }

    fn view(replayed: Option<u64>) -> ReplicaView {
        ReplicaView {
            down: false,
            replayed: replayed.map(lsn),
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_floor_follows_the_guarantees() {
        let mut s = Session::new(Guarantees::NONE);
        s.wrote(lsn(10));
        s.saw(lsn(20));
        assert_eq!(s.floor(), None, "no guarantee, no floor");

        let mut s = Session::new(Guarantees {
            read_your_writes: true,
            monotonic_reads: false,
        });
        assert_eq!(s.floor(), None, "nothing written yet");
        s.wrote(lsn(10));
        s.saw(lsn(20));
        assert_eq!(
            s.floor(),
            Some(lsn(10)),
            "reads do not raise a read-your-writes floor"
        );

        let mut s = Session::new(Guarantees {
            read_your_writes: false,
            monotonic_reads: true,
        });
        s.wrote(lsn(30));
        s.saw(lsn(20));
        assert_eq!(
            s.floor(),
            Some(lsn(20)),
            "writes do not raise a monotonic floor"
        );

        let mut s = Session::new(Guarantees::BOTH);
        s.wrote(lsn(30));
        s.saw(lsn(20));
        assert_eq!(s.floor(), Some(lsn(30)));
        s.saw(lsn(40));
        assert_eq!(s.floor(), Some(lsn(40)));
    }

    #[test]
    fn a_session_never_moves_back() {
        let mut s = Session::new(Guarantees::BOTH);
        s.wrote(lsn(30));
        s.wrote(lsn(10));
        s.saw(lsn(50));
        s.saw(lsn(5));
        assert_eq!(
            (s.last_write(), s.last_read()),
            (Some(lsn(30)), Some(lsn(50)))
        );
    }

    #[test]
    fn without_a_floor_reads_take_turns() {
        let p = ReadPolicy::default();
        let r = [view(Some(1)), view(None), view(Some(100))];
        let order: Vec<Target> = (0..4).map(|t| p.choose(None, &r, t)).collect();
        use Target::Replica as R;
        assert_eq!(order, [R(0), R(1), R(2), R(0)]);
        let any = ReadPolicy {
            from: ReadFrom::Any,
            ..p
        };
        let order: Vec<Target> = (0..4).map(|t| any.choose(None, &r[..2], t)).collect();
        assert_eq!(order, [R(0), R(1), Target::Primary, R(0)]);
        let primary = ReadPolicy {
            from: ReadFrom::Primary,
            ..p
        };
        assert_eq!(primary.choose(None, &r, 0), Target::Primary);
    }

    #[test]
    fn a_floor_prefers_a_replica_known_to_have_it() {
        let p = ReadPolicy::default();
        let floor = Some(lsn(50));
        // Its turn, and known to be there (or never asked): that one.
        assert_eq!(
            p.choose(floor, &[view(Some(50)), view(Some(10))], 0),
            Target::Replica(0)
        );
        assert_eq!(
            p.choose(floor, &[view(None), view(Some(90))], 0),
            Target::Replica(0)
        );
        // Known behind: the next one known to be there, in turn order.
        let r = [
            view(Some(10)),
            view(Some(20)),
            view(Some(60)),
            view(Some(70)),
        ];
        assert_eq!(p.choose(floor, &r, 0), Target::Replica(2));
        assert_eq!(p.choose(floor, &r, 3), Target::Replica(3));
        // Nobody known to be there: wait on the one whose turn it is.
        let behind = [view(Some(10)), view(Some(20))];
        assert_eq!(p.choose(floor, &behind, 1), Target::Replica(1));
        // ... unless waiting is off.
        let no_wait = ReadPolicy {
            wait_max: Duration::ZERO,
            ..p
        };
        assert_eq!(no_wait.choose(floor, &behind, 1), Target::Primary);
    }

    #[test]
    fn replicas_that_are_down_are_skipped() {
        let p = ReadPolicy::default();
        let mut r = [view(Some(100)), view(Some(100))];
        r[0].down = true;
        assert_eq!(p.choose(None, &r, 0), Target::Replica(1));
        assert_eq!(p.choose(Some(lsn(1)), &r, 1), Target::Replica(1));
        r[1].down = true;
        assert_eq!(p.choose(None, &r, 0), Target::Primary);
        assert_eq!(p.choose(None, &[], 7), Target::Primary);
    }

    #[test]
    fn a_read_waits_within_its_bound_then_goes_to_the_primary() {
        let p = ReadPolicy {
            from: ReadFrom::Replicas,
            wait_max: 10 * MS,
            poll_interval: 3 * MS,
        };
        let floor = Some(lsn(50));
        assert_eq!(p.next(None, lsn(0), Duration::ZERO), Step::Serve);
        assert_eq!(
            p.next(floor, lsn(50), 100 * MS),
            Step::Serve,
            "there: serve, late or not"
        );
        assert_eq!(p.next(floor, lsn(49), Duration::ZERO), Step::Wait(3 * MS));
        assert_eq!(
            p.next(floor, lsn(49), 8 * MS),
            Step::Wait(2 * MS),
            "never past the bound"
        );
        assert_eq!(p.next(floor, lsn(49), 10 * MS), Step::Primary);
        let no_wait = ReadPolicy {
            wait_max: Duration::ZERO,
            ..p
        };
        assert_eq!(no_wait.next(floor, lsn(49), Duration::ZERO), Step::Primary);
    }
}
