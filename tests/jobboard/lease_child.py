"""Child process for test_lease: connects, creates an ephemeral marker, then prints one JSON
line per check of `lease.alive` (t_before, alive, connected, session, t_after)."""

from __future__ import annotations

import json
import sys
import time

from jobboard.zk import lease
from jobboard.zk.connect import connect


def main() -> None:
    hosts, marker, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = connect(hosts, session_timeout=timeout)
    client.create(marker, b"", ephemeral=True, makepath=True)
    while True:
        before = time.monotonic()
        alive = lease.alive(client)
        connected = client.connected
        session = client.client_id[0] if client.client_id else None
        after = time.monotonic()
        sys.stdout.write(json.dumps({"before": before, "alive": alive, "connected": connected,
                                     "session": session, "after": after}) + "\n")
        sys.stdout.flush()
        time.sleep(0.005)


if __name__ == "__main__":
    main()
