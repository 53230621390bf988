"""What bench/cases_cluster.py times, one step per process:

  up DIR                 the cluster beside the lab in DIR, until joined with a DC
  down DIR               the cluster gone (untimed cleanup)
  fence DIR NODE KIND    fault a node; return once the survivors fenced it
  lost DIR NODE KIND     fault a node; return once the survivors' membership lost it
  rejoin DIR             until every node is a member again (untimed cleanup)
"""

import sys
import time

from infrapower.lab import Lab, cluster
from infrapower.lab.core import wait_until


def survivor(node):
    return next(n for n in cluster.NODES if n != node)


def main(argv):
    step, lab = argv[0], Lab(argv[1])
    if step == "up":
        cluster.up(lab)
    elif step == "down":
        cluster.down(lab)
    elif step == "rejoin":
        for node in cluster.NODES:
            cluster.fault(lab, node, "clear")
        cluster.wait_ready(lab, time.monotonic() + 120)
    elif step in ("fence", "lost"):
        if not cluster.is_up(lab):  # the first (warm-up) run brings it up
            from infrapower.lab.cluster import fencing

            cluster.up(lab)
            fencing.apply(lab)
        node, kind = argv[2], argv[3]
        via = survivor(node)
        before = cluster.run(lab, via, ["stonith_admin", "--history", node, "--verbose"]).stdout.count("successful")
        cluster.fault(lab, node, kind)
        if step == "fence":
            done = lambda: cluster.run(lab, via, ["stonith_admin", "--history", node, "--verbose"]).stdout.count(
                "successful") > before
        else:
            done = lambda: node not in cluster.run(lab, via, ["crm_node", "-p"]).stdout.split()
        wait_until(done, time.monotonic() + 120, f"{node} {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
