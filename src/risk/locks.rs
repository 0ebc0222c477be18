//! Lock vocabularies of the two engines.

use crate::model::Blocks;

/// PostgreSQL table lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PgLock {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl PgLock {
    /// The name `pg_locks.mode` shows.
    pub fn name(self) -> &'static str {
        match self {
            PgLock::AccessShare => "AccessShareLock",
            PgLock::RowShare => "RowShareLock",
            PgLock::RowExclusive => "RowExclusiveLock",
            PgLock::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            PgLock::Share => "ShareLock",
            PgLock::ShareRowExclusive => "ShareRowExclusiveLock",
            PgLock::Exclusive => "ExclusiveLock",
            PgLock::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// What ordinary traffic is blocked from doing (engines.md §1.1).
    pub fn blocks(self) -> Blocks {
        match self {
            PgLock::AccessExclusive => Blocks::ReadsAndWrites,
            PgLock::Share | PgLock::ShareRowExclusive | PgLock::Exclusive => Blocks::Writes,
            _ => Blocks::Nothing,
        }
    }
}

/// MySQL/MariaDB ALTER algorithms, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algo {
    Instant,
    /// MariaDB only; on MySQL it reads as INPLACE without a rebuild.
    Nocopy,
    Inplace,
    Copy,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Instant => "INSTANT",
            Algo::Nocopy => "NOCOPY",
            Algo::Inplace => "INPLACE",
            Algo::Copy => "COPY",
        }
    }
}

/// MySQL/MariaDB `LOCK=` levels, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MyLock {
    None,
    Shared,
    Exclusive,
}

impl MyLock {
    pub fn name(self) -> &'static str {
        match self {
            MyLock::None => "NONE",
            MyLock::Shared => "SHARED",
            MyLock::Exclusive => "EXCLUSIVE",
        }
    }
    pub fn blocks(self) -> Blocks {
        match self {
            MyLock::None => Blocks::Nothing,
            MyLock::Shared => Blocks::Writes,
            MyLock::Exclusive => Blocks::ReadsAndWrites,
        }
    }
}

/// What one ALTER sub-command needs on MySQL/MariaDB: the cheapest algorithm the
/// server accepts, the weakest lock, and whether the table is rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MyCost {
    pub algo: Algo,
    pub lock: MyLock,
    pub rebuild: bool,
}

impl MyCost {
    pub const INSTANT: MyCost = MyCost {
        algo: Algo::Instant,
        lock: MyLock::None,
        rebuild: false,
    };
    pub const NOCOPY: MyCost = MyCost {
        algo: Algo::Nocopy,
        lock: MyLock::None,
        rebuild: false,
    };
    pub const REBUILD: MyCost = MyCost {
        algo: Algo::Inplace,
        lock: MyLock::None,
        rebuild: true,
    };
    pub const COPY: MyCost = MyCost {
        algo: Algo::Copy,
        lock: MyLock::Shared,
        rebuild: true,
    };

    /// Several sub-commands in one ALTER need the most expensive of each.
    pub fn combine(self, o: MyCost) -> MyCost {
        MyCost {
            algo: self.algo.max(o.algo),
            lock: self.lock.max(o.lock),
            rebuild: self.rebuild || o.rebuild,
        }
    }

    /// The engine's own way of saying it: `INSTANT`, `INPLACE, LOCK=NONE`, `COPY, LOCK=SHARED`.
    pub fn mode(self) -> String {
        match self.algo {
            Algo::Instant => "INSTANT".into(),
            a => format!("{}, LOCK={}", a.name(), self.lock.name()),
        }
    }
}
