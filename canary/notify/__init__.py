"""Notifications: sinks behind the small :class:`~canary.notify.base.Sink` protocol, one
module each (Slack and Mattermost, Microsoft Teams, CloudEvents), named in
:mod:`canary.notify.registry`; the configuration (:mod:`canary.notify.config`); the outbox in
the Canary's status (:mod:`canary.notify.outbox`) and the dispatcher that sends it
(:mod:`canary.notify.dispatcher`).
"""
