"""snmp-ups's SNMP settings, as ups.conf writes them, turned into
fence_snmp_pdu's options: one translation for a ups.conf device served by
snmp-ups and for an SNMP PDU of the servers file (which uses the same
keys, so a section moves between the two files unchanged).

    snmp_version = v3          # v1 (default), v2c, v3; 1, 2c, 3 also read
    community = private        # v1/v2c
    secName = fencer           # v3: the user            -> username
    secLevel = authPriv        # noAuthNoPriv, authNoPriv, authPriv -> snmp_sec_level
    authProtocol = SHA256      # MD5, SHA, SHA224..SHA512 -> snmp_auth_prot (SHA-256)
    authPassword = ...         # -> password
    privProtocol = AES256      # DES, AES, AES192, AES256 -> snmp_priv_prot (AES-256)
    privPassword = ...         # -> snmp_priv_passwd

The servers file may give `password_script` / `snmp_priv_passwd_script`
(fence agents' own options: a command printing the key) instead of the
keys; plans then carry the script, never the key.
"""

VERSIONS = {"1": "1", "v1": "1", "2c": "2c", "v2c": "2c", "3": "3", "v3": "3"}
V3_KEYS = {  # snmp-ups's name -> fence_snmp_pdu's
    "secName": "username",
    "secLevel": "snmp_sec_level",
    "authProtocol": "snmp_auth_prot",
    "authPassword": "password",
    "privProtocol": "snmp_priv_prot",
    "privPassword": "snmp_priv_passwd",
}
SCRIPT_KEYS = {"password_script": "password", "snmp_priv_passwd_script": "snmp_priv_passwd"}
KEYS = {"snmp_version", "community", *V3_KEYS, *SCRIPT_KEYS}


def _canonical(value, allowed):
    """`SHA256`, `sha-256` -> the client's `SHA-256`; None if unknown."""
    wanted = value.replace("-", "").upper()
    return next((name for name in allowed if name.replace("-", "").upper() == wanted), None)


def fence_options(section, default_community, scripts=False):
    """(fence_snmp_pdu options, [(key, problem)]) from a section's SNMP
    settings; `scripts` allows the `*_script` keys (the servers file)."""
    from infrapower.snmp.usm import AUTH_PROTOCOLS, PRIV_KEY_BYTES, SECURITY_LEVELS

    problems = []
    given = section.get("snmp_version") or "v1"
    version = VERSIONS.get(given.lower())
    if version is None:
        problems.append(("snmp_version", f"snmp_version {given!r}: use v1, v2c or v3"))
        version = "1"
    if version != "3":
        return {"community": section.get("community") or default_community, "snmp_version": version}, problems
    options = {"snmp_version": version}

    choices = {"secLevel": SECURITY_LEVELS, "authProtocol": list(AUTH_PROTOCOLS), "privProtocol": list(PRIV_KEY_BYTES)}
    for key, option in V3_KEYS.items():
        value = section.get(key)
        if not value:
            continue
        if key in choices:
            canonical = _canonical(value, choices[key])
            if canonical is None:
                problems.append((key, f"{key} {value!r}: use one of {', '.join(choices[key])}"))
                continue
            value = canonical
        options[option] = value
    for key, option in SCRIPT_KEYS.items():
        if section.get(key) and scripts:
            options.pop(option, None)  # the script, not the key, goes into plans
            options[key] = section.get(key)
    if "username" not in options:
        problems.append(("snmp_version", "SNMP v3 needs secName (the user)"))
    level = options.get("snmp_sec_level")
    has_auth = "password" in options or "password_script" in options
    has_priv = "snmp_priv_passwd" in options or "snmp_priv_passwd_script" in options
    if level in ("authNoPriv", "authPriv") and not has_auth:
        problems.append(("secLevel", f"secLevel {level} needs authPassword"
                                     + (" (or password_script)" if scripts else "")))
    if level == "authPriv" and not has_priv:
        problems.append(("secLevel", "secLevel authPriv needs privPassword"
                                     + (" (or snmp_priv_passwd_script)" if scripts else "")))
    return options, problems


def session_settings(options, host, port, timeout):
    """The SnmpSettings a device's fence_snmp_pdu options stand for, to
    read it live; a `*_script` runs for its key as fencing.py runs it
    (`sh -c`, output without trailing blanks)."""
    from infrapower.snmp.session import SnmpSettings
    from infrapower.snmp.usm import UsmUser

    options = {option: _key_from_script(option, value, timeout) if option in SCRIPT_KEYS else value
               for option, value in options.items()}
    options = {SCRIPT_KEYS.get(option, option): value for option, value in options.items()}
    version = options.get("snmp_version", "1")
    usm = None
    if version == "3":
        usm = UsmUser.checked(options.get("username"), options.get("snmp_sec_level"), options.get("snmp_auth_prot"),
                              options.get("password"), options.get("snmp_priv_prot"), options.get("snmp_priv_passwd"))
    return SnmpSettings(host, port, version, options.get("community", "private"), usm, timeout)


def _key_from_script(option, command, timeout):
    import subprocess

    from infrapower.errors import FenceError

    try:
        result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FenceError(f"{option} did not finish within {timeout:g} s") from None
    if result.returncode != 0:
        raise FenceError(f"{option} failed (exit {result.returncode})")
    return result.stdout.rstrip()
