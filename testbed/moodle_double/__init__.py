"""A Moodle test double: what `php admin/cli/scheduled_task.php --execute=...` does to
the Moodle database, for the two tasks the provisioning cycle runs.

It reads `config.php` from the Moodle code root it is pointed at, the auth_db settings
from `config_plugins`, and the external auth table through auth_db's own credentials,
exactly as Moodle would; it prints Moodle's lines and exits with Moodle's codes
(including exit 0 after a failed task). See docs/MOODLE_FACTS.md in this project.

Failures Moodle really has are switched on through `moodledata/moodle_double_faults.json`
(see testbed.moodle_site.set_fault); lock failures come from real locks.
"""
