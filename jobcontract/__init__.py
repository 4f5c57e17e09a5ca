"""The job contract: what the API and the workers agree on, owned by neither.

A job's plan (its steps), its record in Redis and the Lua scripts that move it between
states, the key layout, the typed input the API hands the workers, the capability
declarations both sides read, the stores (synchronous for workers, asyncio for the API) and
the settings. Imports neither ``api`` nor ``workers``; both import it.
"""
