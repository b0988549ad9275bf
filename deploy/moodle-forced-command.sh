#!/bin/bash
# The one thing the parent provisioning project may do on the Moodle server: run one of the two Moodle
# scheduled tasks it needs. Install it (root-owned, mode 755) and force it on the project's key in the SSH
# user's ~/.ssh/authorized_keys, with the same three values as the settings moodle_dir, php_path, sudo_user:
#
#   restrict,command="/usr/local/bin/moodle-forced-command.sh /var/www/moodle /usr/bin/php www-data" ssh-ed25519 AAAA... parent-provisioning
#
# The task runs for at most 7200 seconds (the DAG's own limit), then it is stopped (SIGTERM, and SIGKILL
# 30 s later), even if the SSH session is gone: a hung or abandoned task never holds Moodle's lock for
# long. Give another bound as the first argument: --max-seconds=N (the moodle_task_timeout_s setting).
#
# sshd then runs this script whatever the client asks for, with the request in $SSH_ORIGINAL_COMMAND. The
# request must be exactly one of the commands the project sends for these values (see
# include/parent_provisioning/moodle_cli.py); it is compared, never run. This script runs the task itself.
# Anything else is refused with exit status 126 and a line in syslog.
set -euo pipefail

refuse() {
  logger -t moodle-forced-command -- "refused: $1" 2>/dev/null || true
  echo "moodle-forced-command: refused: $1" >&2
  exit 126
}

max=7200
if [[ ${1:-} == --max-seconds=* ]]; then
  max=${1#--max-seconds=}
  shift
fi
[[ $max =~ ^[1-9][0-9]{0,5}$ ]] || refuse "--max-seconds must be a whole number of seconds"
[ $# -ge 2 ] && [ $# -le 3 ] || refuse "usage: moodle-forced-command.sh [--max-seconds=N] MOODLE_DIR PHP [SUDO_USER]"
path='^/[A-Za-z0-9._/-]*$'
[[ $1 =~ $path && $2 =~ $path ]] || refuse "MOODLE_DIR and PHP must be absolute paths"
dir=${1%/} php=$2 user=${3:-}
[[ -z $user || $user =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || refuse "SUDO_USER must be a user name"

public=$dir/public/admin/cli/scheduled_task.php  # Moodle 5.1 keeps its code under public/
classic=$dir/admin/cli/scheduled_task.php
runner=$php
[ -z "$user" ] || runner="sudo -n -u $user $php"
asked=${SSH_ORIGINAL_COMMAND:-}
for task in '\auth_db\task\sync_users' '\core\task\send_new_user_passwords_task'; do
  expected="if [ -f $public ]; then s=$public; else s=$classic; fi; exec $runner \"\$s\" --execute='$task'"
  if [ "$asked" = "$expected" ]; then
    if [ -f "$public" ]; then script=$public; else script=$classic; fi
    if [ -n "$user" ]; then
      exec timeout --kill-after=30 "$max" sudo -n -u "$user" "$php" "$script" --execute="$task"
    fi
    exec timeout --kill-after=30 "$max" "$php" "$script" --execute="$task"
  fi
done
refuse "${asked:0:200}"
