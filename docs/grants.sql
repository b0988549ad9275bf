-- The database users of Moodle parent provisioning, with only what the project uses.
-- Replace the ${...} names with yours (the table prefixes are the `wp_table_prefix` and
-- `moodle_table_prefix` settings), then run as a MariaDB/MySQL administrator, e.g.
--   sed -e 's/${WP_DB}/wordpress/g' ... docs/grants.sql | mariadb -u root
-- The test bed creates its users from this very file, so the tests prove these grants suffice.

-- 1. The project's WordPress user (Airflow connection `wordpress_db`).
CREATE USER IF NOT EXISTS ${WP_USER} IDENTIFIED BY '${WP_PASSWORD}';
-- Requests: read the queue, mark them, correct them, add uploaded ones. Never deleted.
GRANT SELECT, INSERT, UPDATE ON `${WP_DB}`.`${WP_PREFIX}tvs_parent_moodle_provisioning` TO ${WP_USER};
-- Moodle's external auth table: approval writes a row, de-provisioning deletes it. Never updated.
GRANT SELECT, INSERT, DELETE ON `${WP_DB}`.`${WP_PREFIX}tvs_parent_moodle_provisioning_auth` TO ${WP_USER};
-- The project's own tables, created by its first run (CREATE on a table that does not exist yet is allowed);
-- ALTER on the outcomes table adds the columns a later version needs to a table an earlier one made.
GRANT SELECT, INSERT, UPDATE, CREATE ON `${WP_DB}`.`${WP_PREFIX}parent_provisioning_cycles` TO ${WP_USER};
GRANT SELECT, INSERT, UPDATE, CREATE, ALTER ON `${WP_DB}`.`${WP_PREFIX}parent_provisioning_outcomes` TO ${WP_USER};
GRANT SELECT, INSERT, UPDATE, CREATE ON `${WP_DB}`.`${WP_PREFIX}parent_provisioning_lock` TO ${WP_USER};

-- 2. The project's Moodle user (Airflow connection `moodle_db`).
CREATE USER IF NOT EXISTS ${MOODLE_USER} IDENTIFIED BY '${MOODLE_PASSWORD}';
-- Read: six settings, the Parent role, accounts, pupils (cohorts).
-- Moodle's config tables hold secrets (the SMTP and auth_db passwords, keys): the project reads only the six
-- rows it needs, through a view of its own (outside Moodle's prefix, so Moodle never sees it), never the tables.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW `${MOODLE_DB}`.`parent_provisioning_${MOODLE_PREFIX}settings` AS
  SELECT 'core' AS plugin, name, value FROM `${MOODLE_DB}`.`${MOODLE_PREFIX}config`
   WHERE name IN ('mnet_localhost_id', 'sessiontimeout', 'extendedusernamechars')
  UNION ALL
  SELECT plugin, name, value FROM `${MOODLE_DB}`.`${MOODLE_PREFIX}config_plugins`
   WHERE plugin = 'auth_db' AND name IN ('removeuser', 'fielduser', 'table');
GRANT SELECT ON `${MOODLE_DB}`.`parent_provisioning_${MOODLE_PREFIX}settings` TO ${MOODLE_USER};
GRANT SELECT ON `${MOODLE_DB}`.`${MOODLE_PREFIX}role` TO ${MOODLE_USER};
GRANT SELECT ON `${MOODLE_DB}`.`${MOODLE_PREFIX}role_context_levels` TO ${MOODLE_USER};
-- Accounts: only the columns the cycle matches and checks on; never password, secrets, addresses, phones.
-- (email: for the pupil_filter by email_domain.)
GRANT SELECT (`id`, `auth`, `username`, `mnethostid`, `deleted`, `suspended`, `firstname`, `lastname`,
  `department`, `email`) ON `${MOODLE_DB}`.`${MOODLE_PREFIX}user` TO ${MOODLE_USER};
GRANT SELECT ON `${MOODLE_DB}`.`${MOODLE_PREFIX}cohort` TO ${MOODLE_USER};
GRANT SELECT ON `${MOODLE_DB}`.`${MOODLE_PREFIX}cohort_members` TO ${MOODLE_USER};
-- Write: a child's missing user context (and mend its path), the parent's role assignments,
-- and the access-cache flag role_assign() and role_unassign() set. DELETE on role_assignments only:
-- the cycle deletes the links its ledger holds as made (or adopted) by it once no request justifies
-- them; nothing else in Moodle is ever deleted.
GRANT SELECT, INSERT, UPDATE ON `${MOODLE_DB}`.`${MOODLE_PREFIX}context` TO ${MOODLE_USER};
GRANT SELECT, INSERT, DELETE ON `${MOODLE_DB}`.`${MOODLE_PREFIX}role_assignments` TO ${MOODLE_USER};
GRANT SELECT, INSERT, UPDATE ON `${MOODLE_DB}`.`${MOODLE_PREFIX}cache_flags` TO ${MOODLE_USER};
-- The project's ledger of the links it makes or finds (a table of its own in Moodle's database, outside
-- Moodle's prefix, created by its first run): written in the links' own transaction. Its rows are
-- closed (removed_at), never deleted.
GRANT SELECT, INSERT, UPDATE, CREATE ON `${MOODLE_DB}`.`parent_provisioning_${MOODLE_PREFIX}links` TO ${MOODLE_USER};

-- 3. The user Moodle's External database authentication (auth_db) reads the auth table with
--    (Moodle's setting auth_db | user). Not used by the project itself.
CREATE USER IF NOT EXISTS ${AUTHDB_USER} IDENTIFIED BY '${AUTHDB_PASSWORD}';
GRANT SELECT ON `${WP_DB}`.`${WP_PREFIX}tvs_parent_moodle_provisioning_auth` TO ${AUTHDB_USER};
