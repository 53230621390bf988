"""ipmi_sim's chassis_control program: the BMC's chassis power comes from
the rack (chassis on AND a healthy PSU fed), so a server whose feeds are
cut reports off, as a real one would.

Run as `python -S -m infrapower.lab.bmc_chassis ...` (bmc_config writes
the wrapper) on every status request: stdlib and the rack only.
"""

from infrapower.lab.rack import Rack, powered_servers


def chassis(lab_dir, server, operation, params):
    """ipmi_sim's chassis_control protocol: `get power [boot]` prints
    `power:0|1`; `set power 0|1`, `set reset 1`, `set boot X`, `set
    identify I F` print nothing on success.  Errors go to stdout with a
    non-zero exit, where ipmi_sim logs them."""
    rack = Rack(lab_dir)
    if operation == "get":
        for param in params:
            if param == "power":
                powered = powered_servers(rack.topology(), rack.read())[server]
                print(f"power:{int(powered)}")
            elif param == "boot":
                print("boot:default")
            else:
                print(f"Invalid parameter: {param}")
                return 1
        return 0
    if operation == "set":
        args = list(params)
        while args:
            param = args.pop(0)
            if not args:
                print(f"No value present for parameter {param}")
                return 1
            value = args.pop(0)
            if param == "power":
                rack.set_chassis(server, value == "1")
            elif param == "reset":
                # A hard reset: the server goes down and comes straight
                # back, which the power log shows as off then on.
                if value == "1" and rack.read()["chassis"][server]:
                    rack.set_chassis(server, False)
                    rack.set_chassis(server, True)
            elif param == "boot":
                pass
            elif param == "identify":
                if args:
                    args.pop(0)  # the force flag
            else:
                print(f"Invalid parameter: {param}")
                return 1
        return 0
    print(f"Unsupported operation: {operation}")
    return 1


def main(argv):
    """`python -S -m infrapower.lab.bmc_chassis --lab DIR --server NAME
    OPERATION [PARAMS]`, as bmc_config's wrapper runs it on every chassis
    request: read by hand, since argparse and the rest of the lab's BMC
    module cost ipmi_sim ~25 ms a request."""
    if len(argv) < 5 or argv[0] != "--lab" or argv[2] != "--server":
        print("usage: --lab DIR --server NAME OPERATION [PARAMS]")
        return 2
    return chassis(argv[1], argv[3], argv[4], argv[5:])


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
