"""upsd probes with fence_nut's own client: LIST UPS and each device's
variables (type, outlet count, driver), without logging in; whether
upsd offers TLS (STARTTLS), and whether its certificate verifies."""

from infrapower.errors import NutError

DEVICE_VARIABLES = {"device.type": "type", "driver.name": "driver", "device.mfr": "mfr", "device.model": "model",
                    "outlet.count": "outlets", "ups.status": "status"}


def _silent(error):
    """Nothing listens there: no line for it."""
    text = str(error)
    return text.startswith(("cannot connect to upsd", "no answer from upsd"))


def probe(host, port, timeout):
    """None when nothing listens, else {"devices": [...], "tls": ...} or
    {"error": one line} for a peer that does not speak NUT."""
    from infrapower.nut.client import NutClient, NutSettings

    client = NutClient(NutSettings(host, port, timeout))
    try:
        client.connect()
    except NutError as error:
        return None if _silent(error) else {"error": str(error)}
    try:
        devices = []
        for name, desc in client.list_ups().items():
            device = {"name": name, "desc": desc}
            try:
                variables = client.list_var(name)
            except NutError as error:
                device["error"] = str(error)  # e.g. DATA-STALE: the device is still there
            else:
                device.update({key: variables[var] for var, key in DEVICE_VARIABLES.items() if variables.get(var)})
                device["outlets"] = int(device["outlets"]) if str(device.get("outlets", "")).isdigit() else 0
            devices.append(device)
    except NutError as error:
        return {"error": str(error)}
    finally:
        client.close()
    return {"devices": devices, "tls": tls_offered(host, port, timeout)}


def tls_offered(host, port, timeout):
    """"verified" (STARTTLS, and the certificate verifies with the
    system's CAs), "offered" (STARTTLS answered, the certificate does not
    verify here: give fence_nut its CA with ssl_ca), "no" (upsd refuses
    STARTTLS), or "unknown"."""
    from infrapower.nut.client import NutClient, NutSettings

    client = NutClient(NutSettings(host, port, timeout, tls=True))
    try:
        client.connect()
    except NutError as error:
        if error.code or "does not offer TLS" in str(error):
            return "no"
        return "offered" if str(error).startswith("TLS with upsd") else "unknown"
    finally:
        client.close()
    return "verified"
