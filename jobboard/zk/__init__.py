"""Extensions of kazoo the board relies on: connecting (auth, TLS, redacted logs), a polling
handler, persistent recursive watches (ZooKeeper 3.6 addWatch), the session lease (is the
session provably alive?) and the session tracker (anchor node, connection events)."""
