"""The local test bed: real MariaDB, a private OpenSSH server and a Moodle test double.

Used by the tests, `make demo` and the benchmark. Nothing here is imported by the
DAGs or the plugin: production talks to a real Moodle.
"""
