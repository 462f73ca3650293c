"""``hourglass serve``: an HTTP API, a WebSocket stream and a web page over one Predictor, with dynamic batching.

- :mod:`~hourglass.serve.service`: settings and the pipeline of one picture, without the web framework;
- :mod:`~hourglass.serve.app`: the Starlette application (endpoints, caps, the API key, CORS, the page) and
  :func:`~hourglass.serve.app.serve`, which runs it under uvicorn (one process, or several behind one port);
- :mod:`~hourglass.serve.batching`: the crops of concurrent requests through the network together;
- :mod:`~hourglass.serve.metrics`: the counters, in Prometheus' text format;
- :mod:`~hourglass.serve.tracking`: track ids for the stream, one tracker per connection;
- ``static/``: the page's HTML, CSS and JavaScript (package data; nothing is fetched from elsewhere).

Serving needs the ``[serve]`` extra (Starlette, uvicorn, websockets, python-multipart), imported where
used: without it, :func:`~hourglass.serve.app.create_app` and :func:`~hourglass.serve.app.serve` stop with
one :class:`~hourglass.errors.MissingExtraError` naming it.
"""
