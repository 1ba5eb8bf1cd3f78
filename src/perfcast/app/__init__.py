"""HTTP API, web dashboard and MCP server over one service layer (:mod:`perfcast.app.service`).

FastAPI is imported only by :mod:`perfcast.app.api`, so the service functions work without
it.
"""
