"""Parent provisioning: the decisions behind the Airflow DAG and the request screens.

Plain Python, importable and testable without a scheduler. The DAG in `dags/` only wires
these modules to Airflow's hooks.
"""
