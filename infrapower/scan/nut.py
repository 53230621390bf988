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
    {"error": one line} for a peer that does not speak NUT.  Every
    device's variables come in one pipelined round trip (a LIST VAR per
    device would cost a round trip each, ~40 ms apiece where upsd's
    replies meet delayed ACKs); the TLS check runs meanwhile."""
    import threading

    from infrapower.nut.client import NutClient, NutSettings

    client = NutClient(NutSettings(host, port, timeout))
    try:
        client.connect()
    except NutError as error:
        return None if _silent(error) else {"error": str(error)}
    tls = {}
    checking = threading.Thread(target=lambda: tls.update(answer=tls_offered(host, port, timeout)), daemon=True)
    checking.start()
    try:
        names = client.list_ups()
        asked = [(name, variable) for name in names for variable in DEVICE_VARIABLES]
        values = dict(zip(asked, client.get_vars(asked))) if asked else {}
    except NutError as error:
        return {"error": str(error)}
    finally:
        client.close()
        checking.join()
    devices = []
    for name, desc in names.items():
        device = {"name": name, "desc": desc}
        answers = {variable: values[(name, variable)] for variable in DEVICE_VARIABLES}
        found = {variable: value for variable, value in answers.items() if not isinstance(value, NutError)}
        failures = [value for value in answers.values() if isinstance(value, NutError) and value.code != "VAR-NOT-SUPPORTED"]
        if not found and failures:
            device["error"] = failures[0].code or str(failures[0])  # e.g. DATA-STALE: the device is still there
        else:
            device.update({DEVICE_VARIABLES[variable]: value for variable, value in found.items() if value})
            device["outlets"] = int(device["outlets"]) if str(device.get("outlets", "")).isdigit() else 0
        devices.append(device)
    return {"devices": devices, "tls": tls.get("answer", "unknown")}


def tls_offered(host, port, timeout):
    """"verified" (STARTTLS, and the certificate verifies with the
    system's CAs), "offered" (STARTTLS answered, the certificate does not
    verify here: give fence_nut its CA with ssl_ca), "no" (upsd refuses
    STARTTLS), or "unknown"."""
    from infrapower.nut.client import NutClient, NutSettings

    client = NutClient(NutSettings(host, port, timeout, tls=True, ca=_system_ca_dir()))
    try:
        client.connect()
    except NutError as error:
        if error.code or "does not offer TLS" in str(error):
            return "no"
        return "offered" if str(error).startswith("TLS with upsd") else "unknown"
    finally:
        client.close()
    return "verified"


def _system_ca_dir():
    """The system's CA directory (hashed names): OpenSSL then reads only
    the issuer's certificate, where the default context parses the whole
    bundle (~25 ms of CPU per scan).  None (the default context) where
    there is no such directory."""
    import os
    import ssl

    capath = ssl.get_default_verify_paths().capath
    if capath and os.path.isdir(capath) and any(name.endswith(".0") for name in os.listdir(capath)):
        return capath
    return None
