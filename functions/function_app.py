"""Azure Functions entry point: the FastAPI app behind AsgiFunctionApp (host.json routePrefix "")."""

import azure.functions as func

from functions.api import create_app

app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.ANONYMOUS)
