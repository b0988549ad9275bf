"""`python -m testbed up|down|env [--name demo] [--size N]`: the test bed from the shell."""

from __future__ import annotations

import argparse
import json
import sys

from testbed.config import TestBedConfig
from testbed.stack import TestBed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed")
    parser.add_argument("action", choices=["up", "down", "env"])
    parser.add_argument("--name", default="demo", help="keeps the demo's, tests' and benchmark's data apart")
    parser.add_argument("--size", type=int, default=60, help="approximate number of requests to seed")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    bed = TestBed(TestBedConfig.from_env(args.name))
    if args.action == "down":
        bed.down()
        print(f"test bed '{args.name}': sshd stopped (databases kept)")
        return 0
    if args.action == "env":
        bed.ssh.start()
        for key, value in bed.airflow_env().items():
            print(f"export {key}={json.dumps(value)}")
        return 0
    from testbed import demo_data

    bed.up()
    school = demo_data.generate(size=args.size, seed=args.seed)
    demo_data.load(bed.cfg, school)
    summary = demo_data.describe(school)
    c = bed.cfg
    print(f"Test bed '{args.name}' is up:")
    print(f"  MariaDB   {c.db_host}:{c.db_port}  WordPress db `{c.wp_db}`, Moodle db `{c.moodle_db}`")
    print(f"  sshd      127.0.0.1:{c.ssh_port} (user {c.ssh_user}, host key {bed.ssh.host_key_line[:40]}...)")
    print(f"  Moodle    code root {c.moodle_dir}, php = {c.php_path} (the Moodle double)")
    print("Seeded demo data:")
    for key, value in summary.items():
        if isinstance(value, dict):
            print(f"  {key}:")
            for k, v in value.items():
                print(f"    {v:>6}  {k}")
        else:
            print(f"  {value:>8}  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
