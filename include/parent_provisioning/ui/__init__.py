"""The request-management screens and JSON API, served inside Airflow's api-server by the
plugin in `plugins/`. Server-rendered pages; the rules live in `management.py`."""
