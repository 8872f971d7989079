//! The `settings` key/value table.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The value of setting `key`, if set.
pub fn get_setting(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    let value = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()?;
    Ok(value)
}

/// Sets (or replaces) setting `key`.
pub fn set_setting(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
