"""The assignment exchange: a hub service (service.py) over plain folders only the hub can read
(storage.py), its API as one route table (routes.py), and nbgrader's exchange classes that talk to
it (client.py)."""
