"""The real-cloud tier: reclaim against real Keystone, Glance, Placement, Nova, Neutron and
Cinder on this machine (``harness.py``), real notifications on the run's own real RabbitMQ.

The README's "Sweeping safely", claim by claim, and the test here that checks it on the
real services:

- reads only what is due; claims with a conditional write and a lease, two sweepers never
  fire the same timer -> test_safety::test_caps_breaker_concurrent_sweepers_and_a_dead_bus
  (two sweeps at once, one shelve request reaches Nova)
- a crashed sweeper's claim expires -> test_safety::test_a_crashed_sweepers_claim_expires...
- re-checks the live state, acts, completes with an audit record (request ids)
  -> test_servers::test_stopped_server_is_shelved_then_deleted... (the request ids sent
  to Nova are in the audit)
- fails closed on a failed read -> test_safety::test_a_read_that_fails_means_no_action
- shelve only a server still SHUTOFF/SUSPENDED since the timer started, not exempt, not
  locked (held, reported once); 404 closes as gone
  -> test_servers (stopped and suspended shelved, exempt and restarted left alone),
  test_safety::test_the_live_server_decides_holds_and_exemptions (locked, lost restart,
  lost deletion)
- delete only a server shelved the whole period -> test_servers (the delete timer)
- the sweeper follows the shelve to SHELVED_OFFLOADED; one Nova never finishes is not
  recorded done -> test_servers, test_safety::test_a_shelve_nova_never_finishes...
- project cleanup as a user with no admin role, granted member and revoked; another
  project never touched, routers included; leftovers re-listed and reported; exempt
  servers kept with what they use; the summary, audit and notice say what was deleted and
  kept; a dry run says what it would keep -> test_cleanup (both tests)
- ``--dry-run`` makes no mutating request (access logs); it counts the caps (exit 3)
  -> test_servers::test_dry_run_sends_no_mutating_request, test_cleanup (the cleanup's
  dry run), test_safety::test_caps... (a dry run past a cap)
- caps per sweep and per project, the alert, the breaker open until ``reclaim breaker
  reset`` -> test_safety::test_caps...
- exemptions: metadata, ``policy.exempt_servers``, ``policy.exempt_projects``
  -> test_servers (metadata), test_safety::test_the_live_server_decides... (the lists)
- a notice the bus does not take fails, leaves the timer due, exit 1
  -> test_safety::test_caps... (a dead transport URL)
- an event is a hint: a forged or stale event mails nobody; a cleanup Keystone does not
  confirm is held with one ``cleanup_unconfirmed`` alert; an owner's images go only once
  Keystone no longer has the owner -> test_safety::test_the_live_server_decides... (forged
  stop), test_safety::test_unconfirmed_allocation_end_and_forged_project_deletion...,
  test_owners (project and user deleted)
- the whole warning period from the first delivered notice; undelivered notices hold the
  action with one ``notices_undelivered`` alert -> every action test (notices recorded
  delivered, the action one full lead later), test_safety::test_the_live_server_decides...
- a persistent reason holds the action: one ``action_held`` alert, in the audit and in
  ``reclaim plan`` -> test_safety::test_the_live_server_decides...
- failures retry; after ``sweep.max_attempts`` failed with an ``action_failed`` alert
  -> test_safety::test_a_shelve_nova_never_finishes...
"""
