"""botify's world, listener simulator, baseline policies, logs and A/B analysis.

Public (the model may read these): ``columns``, ``configio``, ``catalog``, ``logs``,
``recfile``. Hidden truth (embeddings, users) lives in ``world`` and is read only by
the simulator and the oracle policy.
"""
