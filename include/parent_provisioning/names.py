"""The names Airflow and the school know this project by, each defined once: the DAGs, the
connections, the Variables and the run parameters. The DAG files, the UI, the test bed and the tests
import them from here."""

from __future__ import annotations

DAG_ID = "moodle_parent_provisioning"
ADOPT_DAG_ID = "moodle_parent_provisioning_adopt_links"

WORDPRESS_CONN_ID = "wordpress_db"  # mysql: the WordPress database (requests, auth rows, the project's tables)
MOODLE_CONN_ID = "moodle_db"  # mysql: Moodle's database
MOODLE_SSH_CONN_ID = "moodle_ssh"  # ssh: the Moodle server, to run its scheduled tasks
SMTP_CONN_ID = "smtp_default"  # smtp: ops' summaries and alerts, and the emails to parents

SETTINGS_VARIABLE = "moodle_parent_provisioning"
EMAIL_TEMPLATES_VARIABLE = "moodle_parent_provisioning_email_templates"
DEPLOYMENT_VARIABLE = "moodle_parent_provisioning_deployment"

# The cycle's run parameters ("Trigger DAG w/ config").
REQUEST_IDS = "request_ids"
DRY_RUN = "dry_run"
ALLOW_MASS_SUSPENSION = "allow_mass_suspension"  # an override: the user sync may suspend past the limits
ALLOW_MASS_UNLINK = "allow_mass_unlink"  # an override: unlink_children may remove past the limit
OVERRIDES = (ALLOW_MASS_SUSPENSION, ALLOW_MASS_UNLINK)

CONNECTION_TYPES = {
    WORDPRESS_CONN_ID: "mysql",
    MOODLE_CONN_ID: "mysql",
    MOODLE_SSH_CONN_ID: "ssh",
    SMTP_CONN_ID: "smtp",
}
