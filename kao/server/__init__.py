"""kao's HTTP API (`kao serve`): a FastAPI app over the library's public API.

Example::

    from kao.server.app import create_app
    from kao.server.settings import Settings

    app = create_app(Settings(db="faces.db"))     # run with uvicorn, or `kao serve`

This package imports nothing itself, so `kao`'s other commands start without FastAPI.
"""
