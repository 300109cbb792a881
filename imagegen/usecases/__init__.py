"""The use cases, one file each, each taking only the ports it uses.

start.py (validate, resolve the cart, answer from the cache or join), queue.py (admit, expire, drop, shut
down), run.py (pictures -> generator -> store, progress, failure), backgrounds.py (store an upload),
status.py (read a status), pending.py (what this process still owes its shoppers).
"""
