"""The recovery policy as pure functions: (notification, settings) -> timer commands.

One module per subject, each holding its rules (what, when, why) and the handlers that
apply them: ``servers`` (shelve stopped servers, delete shelved ones), ``projects``
(allocation ends, owners removed), ``images`` (image removed). Nothing here does I/O or
reads the clock: time comes from the event.
"""
