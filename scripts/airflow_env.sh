# Sourced by the Makefile's scripts: an Airflow home inside the project.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# make test uses its own home (.airflow/test), so runs the tests trigger never reach `make ui`.
export AIRFLOW_HOME="${PP_AIRFLOW_HOME:-$_root/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$_root/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$_root/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-10}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin,ops:op,viewer:viewer}
mkdir -p "$AIRFLOW_HOME"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}
