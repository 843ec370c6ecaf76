"""The job board in ZooKeeper: post, claim, release, park, complete, trash, watch; presence.

Knows nothing of SQL; never imports `conductor` or `persistence`. Producers need only this package.
"""
