"""botify's world, listener simulator, baseline policies, logs and A/B analysis.

Public (the model side may import these): ``columns``, ``configio``, ``atomic``, ``jsonline``,
``catalog``, ``logs``, ``recfile``. Hidden truth (embeddings, users) lives in ``world`` and is
read only by the simulator and the oracle policy; ``tests/model`` guards that rule.
"""
