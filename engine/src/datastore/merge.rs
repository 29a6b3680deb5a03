//! Merging datastores: shards scanned on different machines become one. Profiles are matched
//! by hash (their row ids differ between files); a blob both hold was scanned from the same
//! bytes under the same profile, so its findings are the same and are kept once.

use rusqlite::params;

use super::{Datastore, DatastoreError};

pub(super) fn absorb(store: &Datastore, other: &std::path::Path) -> Result<(), DatastoreError> {
    let mut conn = store.connect(false)?;
    let err = |e| store.error(e);
    conn.execute("ATTACH DATABASE ?1 AS src", params![other.to_string_lossy()])
        .map_err(err)?;
    let tx = conn.transaction().map_err(err)?;
    tx.execute_batch(
        "
        INSERT OR IGNORE INTO profile(hash, base, rules, created) SELECT hash, base, rules, created FROM src.profile;
        CREATE TEMP TABLE profile_map AS
            SELECT s.id AS old, m.id AS new FROM src.profile s JOIN main.profile m ON m.hash = s.hash;
        CREATE TEMP TABLE new_blob AS
            SELECT b.key AS key, pm.new AS profile FROM src.blob b JOIN profile_map pm ON pm.old = b.profile
            WHERE NOT EXISTS (SELECT 1 FROM main.blob m WHERE m.key = b.key AND m.profile = pm.new AND m.reusable >= b.reusable);
        DELETE FROM main.finding WHERE (blob, profile) IN (SELECT key, profile FROM new_blob);
        INSERT OR REPLACE INTO main.blob(key, profile, size, reusable, findings, levels)
            SELECT b.key, pm.new, b.size, b.reusable, b.findings, b.levels FROM src.blob b
            JOIN profile_map pm ON pm.old = b.profile
            WHERE (b.key, pm.new) IN (SELECT key, profile FROM new_blob);
        INSERT INTO main.finding(blob, profile, seq, rule, secret_sha256, body)
            SELECT f.blob, pm.new, f.seq, f.rule, f.secret_sha256, f.body FROM src.finding f
            JOIN profile_map pm ON pm.old = f.profile
            WHERE (f.blob, pm.new) IN (SELECT key, profile FROM new_blob);
        -- A run both hold (the same datastore merged twice) is kept once.
        CREATE TEMP TABLE run_map(old INTEGER PRIMARY KEY, new INTEGER);
        INSERT INTO run_map
            SELECT r.id, (SELECT m.id FROM main.run m WHERE m.started = r.started AND m.profile = pm.new)
            FROM src.run r JOIN profile_map pm ON pm.old = r.profile;
        UPDATE run_map SET new = old + (SELECT coalesce(max(id), 0) FROM main.run) WHERE new IS NULL;
        INSERT INTO main.run(id, profile, started, finished, interrupted, counters)
            SELECT rm.new, pm.new, r.started, r.finished, r.interrupted, r.counters FROM src.run r
            JOIN run_map rm ON rm.old = r.id JOIN profile_map pm ON pm.old = r.profile
            WHERE rm.new NOT IN (SELECT id FROM main.run);
        -- A path both hold keeps the row of the run that started last.
        INSERT OR REPLACE INTO main.input(path, size, mtime_ns, blob, profile, package, run)
            SELECT i.path, i.size, i.mtime_ns, i.blob, pm.new, i.package, rm.new FROM src.input i
            JOIN profile_map pm ON pm.old = i.profile
            LEFT JOIN run_map rm ON rm.old = i.run
            LEFT JOIN src.run sr ON sr.id = i.run
            WHERE NOT EXISTS (
                SELECT 1 FROM main.input m JOIN main.run mr ON mr.id = m.run
                WHERE m.path = i.path AND mr.started > coalesce(sr.started, 0)
            );
        DROP TABLE profile_map; DROP TABLE new_blob; DROP TABLE run_map;
        ",
    )
    .map_err(err)?;
    tx.commit().map_err(err)?;
    conn.execute("DETACH DATABASE src", []).map_err(err)?;
    Ok(())
}
