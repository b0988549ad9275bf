# The project's Airflow image: the official apache/airflow image, this project's locked Python packages, and
# its dags/, include/ and plugins/. Build it with `docker compose build` (see docker-compose.yaml).
# AIRFLOW_VERSION must equal the apache-airflow pin in requirements.lock, and PYTHON_VERSION the Python the
# lock was resolved for (`make lock`); tests/test_compose.py checks both.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS project

# Debian packages (packages.txt): what mysqlclient, the MySQL provider's driver, compiles against.
USER root
COPY packages.txt /tmp/packages.txt
RUN apt-get update \
 && grep -v '^#' /tmp/packages.txt | xargs apt-get install -y --no-install-recommends \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/packages.txt
USER airflow

# Exactly the versions the tests ran with: the lock pins apache-airflow to the base image's version.
COPY --chown=airflow:0 requirements.lock /opt/airflow/requirements.lock
RUN pip install --no-cache-dir -r /opt/airflow/requirements.lock

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
# `include` is imported by the DAG, the plugin and the deadline callback (triggerer) alike.
ENV PYTHONPATH=/opt/airflow

# The `demo` profile's image: the project's test bed (MariaDB data, the Moodle double) and an sshd to serve it.
FROM project AS demo
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/sshd /opt/airflow/demo/ssh && chown -R airflow:0 /opt/airflow/demo
USER airflow
COPY --chown=airflow:0 testbed/ /opt/airflow/testbed/
# The test bed creates its MariaDB users from the very grants the runbook ships.
COPY --chown=airflow:0 docs/grants.sql /opt/airflow/docs/grants.sql
