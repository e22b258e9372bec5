"""Support code for the tests and the benchmarks, as ``litestar.testing`` is for Litestar's.

initData signed the way Telegram signs it, a local server that answers like the Bot API,
scratch PostgreSQL databases, a lean WebSocket client, wrk's report read back, percentiles.
It is installed with the package so that ``bench/`` imports it as it is, without touching
``sys.path``; nothing in ``backend`` or ``bot`` imports it (tests/test_structure.py holds that).
"""
