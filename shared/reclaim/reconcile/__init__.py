"""Reconcile: rebuild the timers the events would have made from the cloud's own state.

Events get lost (queues without consumers, broker restarts, the first install on a cloud
that already has stopped and shelved servers). A reconcile lists the cloud page by page,
turns each server into an observation (a synthetic notification stamped with the server's
``updated_at``), runs the same pure policy handler on it and folds the difference into the
store: missing timers created, stale ones cancelled, correct ones left alone. Images are
observed as Glance's ``image.update``, and projects carrying the allocation-end property
(``reconcile.allocation_end_property``) as reclaim's own allocation events.

``observe`` is the pure part, ``cloud`` reads listings, ``engine`` runs a reconcile.
"""
