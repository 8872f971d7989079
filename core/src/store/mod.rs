//! Per-profile persistence: one SQLite database per profile ([`Store`]) and the
//! [`Profile`] that ties the database, the keystore and the identity together.
//!
//! [`Store`]'s methods block on SQLite. From async code use [`Store::call`], which runs a
//! closure on tokio's blocking pool; inside it, the functions in [`identity`], [`settings`]
//! and [`tokens`] do the same work as the like-named `Store` methods.

pub mod identity;
pub mod lock;
mod migrations;
mod profile;
pub mod settings;
pub mod tokens;

pub use migrations::SCHEMA_VERSION;
pub use profile::{Profile, ProfileError};

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::identity::SealedIdentity;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer build; it is left untouched.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); \
         refusing to open it"
    )]
    TooNew {
        /// Schema version found in the database.
        found: i64,
        /// Highest schema version this build knows.
        supported: i64,
    },
    /// The database holds a schema version no build ever writes.
    #[error("database schema version {0} is invalid")]
    BadVersion(i64),
    /// [`Store::save_identity`] found an identity already stored.
    #[error("this profile already has an identity; refusing to overwrite it")]
    IdentityExists,
    /// The operation needs an identity but none is stored.
    #[error("this profile has no identity")]
    NoIdentity,
    /// The blocking database task panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Handle to a profile's SQLite database; clones share one connection.
#[derive(Clone, Debug)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, applies pending migrations, and
    /// refuses a database written by a newer build ([`StoreError::TooNew`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Chat's hot paths keep about twenty statements prepared.
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Check before switching to WAL, which would rewrite a too-new database's header.
        migrations::check_version(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on the current thread (blocking; not for async code).
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&mut lock(&self.conn))
    }

    /// Runs `f` on the connection without stalling other tasks (see [`blocking`]).
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        blocking(move || f(&mut lock(&conn))).await?
    }

    /// Runs `f`, a read of a row or two by key (microseconds: the pages are cached), on this
    /// thread when the connection is free, else as [`Store::call`]. In place it costs no
    /// thread hand-off, which [`blocking`]'s `block_in_place` does; the links of an idle node
    /// read a contact's trust for every batch of frames. Never for writes or scans.
    pub async fn read_now<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        match self.in_place(f) {
            Ok(done) => done,
            Err(f) => self.call(f).await,
        }
    }

    /// `f`'s result if the connection was free, else `f` back.
    fn in_place<T, F: FnOnce(&mut Connection) -> Result<T, StoreError>>(
        &self,
        f: F,
    ) -> Result<Result<T, StoreError>, F> {
        match self.conn.try_lock() {
            Ok(mut c) => Ok(f(&mut c)),
            Err(TryLockError::Poisoned(p)) => Ok(f(&mut p.into_inner())),
            Err(TryLockError::WouldBlock) => Err(f),
        }
    }

    /// The stored identity, if any.
    pub fn load_identity(&self) -> Result<Option<SealedIdentity>, StoreError> {
        self.with_conn(|c| identity::load_identity(c))
    }

    /// Stores `sealed` as this profile's identity and records its peer ID in the history.
    /// Fails with [`StoreError::IdentityExists`] rather than overwrite an existing identity.
    pub fn save_identity(&self, sealed: &SealedIdentity) -> Result<(), StoreError> {
        self.with_conn(|c| identity::save_identity(c, sealed))
    }

    /// Switches the identity to `new_id`, marking the previous ID retired in the history.
    pub fn set_peer_id(&self, new_id: &str) -> Result<(), StoreError> {
        self.with_conn(|c| identity::set_peer_id(c, new_id))
    }

    /// Every peer ID this profile has used, oldest first, including the current one.
    pub fn peer_id_history(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|c| identity::peer_id_history(c))
    }

    /// The value of setting `key`, if set.
    pub fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with_conn(|c| settings::get_setting(c, key))
    }

    /// Sets (or replaces) setting `key`.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with_conn(|c| settings::set_setting(c, key, value))
    }

    /// The PeerJS token stored for `peer_id` on `server`, if any.
    pub fn peerjs_token(&self, server: &str, peer_id: &str) -> Result<Option<String>, StoreError> {
        self.with_conn(|c| tokens::peerjs_token(c, server, peer_id))
    }

    /// The stored PeerJS token for `peer_id` on `server`, creating and storing a random
    /// 16-hex-character one first if there is none.
    pub fn peerjs_token_or_create(
        &self,
        server: &str,
        peer_id: &str,
    ) -> Result<String, StoreError> {
        self.with_conn(|c| tokens::peerjs_token_or_create(c, server, peer_id))
    }

    /// Stores (or replaces) the PeerJS token for `peer_id` on `server`.
    pub fn set_peerjs_token(
        &self,
        server: &str,
        peer_id: &str,
        token: &str,
    ) -> Result<(), StoreError> {
        self.with_conn(|c| tokens::set_peerjs_token(c, server, peer_id, token))
    }
}

/// Locks the connection. A panic while it was held cannot leave it inconsistent (an open
/// transaction rolls back when dropped during unwinding), so poisoning is ignored.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs short blocking work (a SQLite statement, a file chunk) without stalling other tasks: in
/// place on a multi-thread runtime (`block_in_place` hands the worker's other tasks to another
/// thread; cheaper than a hop to the blocking pool for work of tens of microseconds), else on
/// the blocking pool.
///
/// Work in place cannot be interrupted: a task aborted (or whose runtime shut down) meanwhile
/// yields once after it, so that it ends there instead of running on (a timer polled once the
/// runtime has shut down panics).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        let done = tokio::task::block_in_place(f);
        tokio::task::yield_now().await;
        return Ok(done);
    }
    tokio::task::spawn_blocking(f).await
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_temp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("peerns.db")).unwrap();
        (dir, store)
    }

    fn user_version(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn read_now_reads_at_once_when_free_and_lets_other_tasks_run_while_it_waits() {
        let (_dir, store) = open_temp();
        store.set_setting("k", "v").unwrap();
        let value = store
            .read_now(|c| settings::get_setting(c, "k"))
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some("v"));

        // Busy: another thread holds the connection until a task of this runtime has run. The
        // runtime has one worker, so that task runs only if the waiting read does not stall it.
        let conn = Arc::clone(&store.conn);
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (ran_tx, ran_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let c = lock(&conn);
            held_tx.send(()).unwrap();
            let ran = ran_rx.recv_timeout(Duration::from_secs(5)).is_ok();
            settings::set_setting(&c, "k", "w").unwrap();
            ran
        });
        held_rx.recv().unwrap();
        // On the worker (a test's own body runs beside the runtime's workers).
        let value = tokio::spawn(async move {
            tokio::spawn(async move { ran_tx.send(()).unwrap() });
            store.read_now(|c| settings::get_setting(c, "k")).await
        })
        .await
        .unwrap()
        .unwrap();
        assert!(holder.join().unwrap(), "the other task was stalled");
        assert_eq!(value.as_deref(), Some("w"));
    }

    /// An abort (or the runtime's shutdown) cannot interrupt work in place; the task must not
    /// run on past it: a timer polled after the runtime shut down panics.
    #[test]
    fn a_task_cancelled_during_blocking_work_stops_when_it_ends() {
        use std::sync::atomic::{AtomicBool, Ordering};
        for shutdown in [false, true] {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let (inside_tx, inside_rx) = std::sync::mpsc::channel();
            let ran_on = Arc::new(AtomicBool::new(false));
            let task = rt.spawn({
                let ran_on = Arc::clone(&ran_on);
                async move {
                    blocking(move || {
                        inside_tx.send(()).unwrap();
                        std::thread::sleep(Duration::from_millis(500));
                    })
                    .await
                    .unwrap();
                    ran_on.store(true, Ordering::SeqCst);
                }
            });
            inside_rx.recv().unwrap();
            if shutdown {
                rt.shutdown_background();
            } else {
                task.abort();
            }
            std::thread::sleep(Duration::from_millis(800));
            assert!(
                !ran_on.load(Ordering::SeqCst),
                "ran on (shutdown: {shutdown})"
            );
        }
    }

    #[test]
    fn pragmas_are_set() {
        let (_dir, store) = open_temp();
        store
            .with_conn(|c| {
                let mode: String = c.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
                let fk: i64 = c.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
                let temp: i64 = c.pragma_query_value(None, "temp_store", |r| r.get(0))?;
                let sync: i64 = c.pragma_query_value(None, "synchronous", |r| r.get(0))?;
                assert_eq!(mode, "wal");
                assert_eq!((fk, temp, sync), (1, 2, 1));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn migrations_apply_and_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peerns.db");
        Store::open(&path).unwrap().set_setting("k", "v").unwrap();
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        let store = Store::open(&path).unwrap();
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        assert_eq!(store.get_setting("k").unwrap().as_deref(), Some("v"));
        let tables: Vec<String> = store
            .with_conn(|c| {
                let mut stmt =
                    c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
                let names = stmt.query_map([], |r| r.get(0))?;
                Ok(names.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(
            tables,
            [
                "calls",
                "contact_links",
                "contact_peer_ids",
                "contact_requests",
                "contacts",
                "conversations",
                "files",
                "group_files",
                "group_log",
                "group_messages",
                "group_proposals",
                "groups",
                "identity",
                "messages",
                "peer_id_history",
                "peerjs_tokens",
                "rpc_audit",
                "rpc_grants",
                "settings"
            ]
        );
    }

    #[test]
    fn too_new_database_is_refused_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peerns.db");
        let future = SCHEMA_VERSION + 5;
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", future).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        match Store::open(&path) {
            Err(StoreError::TooNew { found, supported }) => {
                assert_eq!((found, supported), (future, SCHEMA_VERSION));
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
        assert_eq!(user_version(&path), future);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn negative_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peerns.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", -1)
            .unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::BadVersion(-1))
        ));
    }

    #[test]
    fn settings_round_trip_and_overwrite() {
        let (_dir, store) = open_temp();
        assert_eq!(store.get_setting("theme").unwrap(), None);
        store.set_setting("theme", "dark").unwrap();
        store.set_setting("theme", "light").unwrap();
        assert_eq!(
            store.get_setting("theme").unwrap().as_deref(),
            Some("light")
        );
    }

    #[tokio::test]
    async fn call_runs_off_the_runtime() {
        let (_dir, store) = open_temp();
        store
            .call(|c| settings::set_setting(c, "a", "1"))
            .await
            .unwrap();
        let value = store.call(|c| settings::get_setting(c, "a")).await.unwrap();
        assert_eq!(value.as_deref(), Some("1"));
        assert_eq!(store.get_setting("a").unwrap().as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn call_reports_a_panicking_task() {
        let (_dir, store) = open_temp();
        let result = store
            .call(|_| -> Result<(), StoreError> { panic!("boom") })
            .await;
        assert!(matches!(result, Err(StoreError::Task(_))));
        // The connection stays usable after the panic.
        store.set_setting("after", "panic").unwrap();
    }
}
