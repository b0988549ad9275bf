"""Registers the request-management screens in Airflow: a FastAPI app under
/parent-provisioning, shown in the navigation as "Parent provisioning"."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.parent_provisioning.ui.app import URL_PREFIX, app


class ParentProvisioningPlugin(AirflowPlugin):
    name = "parent_provisioning"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Parent provisioning"}]
    external_views = [
        {
            "name": "Parent provisioning",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "parent-provisioning",
        }
    ]
