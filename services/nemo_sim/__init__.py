"""A faithful, controllable stand-in for NemoVideo's agent API (see ``/work/shared/UPSTREAM.md``).

Every reelmill test and benchmark talks to this simulator over real HTTP, never to the real backend.
``create_app`` in ``app.py`` builds it; ``/_sim/`` (``admin.py``) lets tests steer it.
"""
