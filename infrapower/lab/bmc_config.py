"""A lab BMC's files, written before its ipmi_sim starts: lan.conf (users,
port, console, the chassis_control program), the emulator start-up script
(bmc.emu), FRU images and the compiled SDR repository."""

import shutil
import subprocess
import zlib
from pathlib import Path

from infrapower.lab.bmc_data import (
    BMC_ADDRESS, PSU_INPUT_SENSORS, PSU_OFFSETS, PSU_SENSOR_BASE, USERS, bmc_directory, board_fru,
    input_sensor_number, numbered_psus, process_name, psu_fru, raw_reading, sdr_source,
)
from infrapower.lab.bmc_sync import bmc_is_down, desired_sensors, write_shown
from infrapower.lab.core import free_port, lab_python
from infrapower.lab.errors import LabError


def _emu_script(bmc_dir, psus, shown):
    """ipmi_sim's start-up commands: the BMC, its SEL, FRUs and PSU sensors,
    the sensors already showing the rack's current state."""
    mask = "".join("1" if bit in PSU_OFFSETS.values() else "0" for bit in reversed(range(15)))
    lines = [
        f"mc_setbmc {BMC_ADDRESS:#x}",
        # device id 0, rev 3, fw 9.08, IPMI 2.0-ish support bits incl. chassis (0x80)
        f"mc_add {BMC_ADDRESS:#x} 0 no-device-sdrs 0x03 9 8 0x9f 0x1291 0xf02 persist_sdr",
        f"sel_enable {BMC_ADDRESS:#x} 1000 0x0a",
        f'mc_add_fru_data {BMC_ADDRESS:#x} 0 {(bmc_dir / "board.fru").stat().st_size} file 0 "{bmc_dir / "board.fru"}"',
    ]
    for number, psu in psus:
        sensor = PSU_SENSOR_BASE + number - 1
        fru = bmc_dir / f"{psu}.fru"
        lines += [
            f"sensor_add {BMC_ADDRESS:#x} 0 {sensor:#x} 0x08 0x6f",
            # "scanning" is what makes the sensor readable over LAN.
            f"sensor_set_event_support {BMC_ADDRESS:#x} 0 {sensor:#x} enable scanning per-state"
            f" {mask} {mask} {mask} {mask}",
            *(
                f"sensor_set_bit {BMC_ADDRESS:#x} 0 {sensor:#x} {offset} {int(shown[psu][name])} 0"
                for name, offset in PSU_OFFSETS.items()
            ),
            f'mc_add_fru_data {BMC_ADDRESS:#x} {number} {fru.stat().st_size} file 0 "{fru}"',
        ]
        for name, (_base, sensor_type, *_rest) in PSU_INPUT_SENSORS.items():
            sensor = input_sensor_number(name, number)
            lines += [
                f"sensor_add {BMC_ADDRESS:#x} 0 {sensor:#x} {sensor_type:#04x} 0x01",
                f"sensor_set_event_support {BMC_ADDRESS:#x} 0 {sensor:#x} disable scanning none"
                f" {'0' * 15} {'0' * 15} {'0' * 15} {'0' * 15}",
                f"sensor_set_value {BMC_ADDRESS:#x} 0 {sensor:#x} {raw_reading(name, shown[psu][name])} 0",
            ]
    lines.append(f"mc_enable {BMC_ADDRESS:#x}")
    return "\n".join(lines) + "\n"


def _lan_conf(server, port, console_port, chassis_script):
    users = "\n".join(
        f'  user {number} true "{name}" "{password}" {priv} 10 md5'
        for number, (name, password, priv, _level) in USERS.items()
    )
    guid = f"{zlib.crc32(server.encode()):08x}" * 4
    return f"""# BMC of {server}: written by infrapower.lab.bmc, rewritten at every start
name "{process_name(server)}"
set_working_mc {BMC_ADDRESS:#x}
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid {guid}
  endlan
  chassis_control "{chassis_script}"
{users}
console 127.0.0.1 {console_port}
"""


def _chassis_wrapper(lab, server):
    """ipmi_sim runs chassis_control with its own environment and appends
    `get power` / `set power 1`: pin everything the entry point needs.
    -S skips site-packages: the entry point needs only the stdlib and this
    package, and `get power` runs on every status request."""
    root = Path(__file__).resolve().parents[2]
    return f"""#!/bin/sh
PYTHONPATH='{root}'
INFRAPOWER_LAB_DIR='{lab.dir}'
export PYTHONPATH INFRAPOWER_LAB_DIR
exec '{lab_python()}' -S -m infrapower.lab.bmc_chassis --lab '{lab.dir}' --server '{server}' "$@"
"""


def write_config(lab, server, topology, state):
    bmc_dir = bmc_directory(lab, server)
    if bmc_dir.exists():
        shutil.rmtree(bmc_dir)  # a fresh BMC: no users, SEL or SDRs left from before
    persist_dir = bmc_dir / "state" / "ipmi_sim" / process_name(server)
    persist_dir.mkdir(parents=True)
    psus = numbered_psus(topology, server)

    (bmc_dir / "board.fru").write_bytes(board_fru(server, topology["servers"][server].get("role", "server")))
    for _number, psu in psus:
        (bmc_dir / f"{psu}.fru").write_bytes(psu_fru(server, psu))

    # ipmi_sim loads the main SDR repository from its persist dir (mc_add ... persist_sdr).
    (bmc_dir / "sdrs").write_text(sdr_source(server, psus))
    compiled = subprocess.run(
        ["sdrcomp", "-o", str(persist_dir / f"sdr.{BMC_ADDRESS:x}.main"), str(bmc_dir / "sdrs")],
        capture_output=True,
        text=True,
    )
    if compiled.returncode != 0:
        raise LabError(f"sdrcomp failed on {bmc_dir / 'sdrs'}: {compiled.stderr.strip()}")

    shown = desired_sensors(topology, state, server)
    if bmc_is_down(state, server):
        lab.rack.set_fault(f"bmc:{server}", None)  # a restarted BMC is up
    write_shown(lab, server, shown)
    (bmc_dir / "bmc.emu").write_text(_emu_script(bmc_dir, psus, shown))

    chassis = bmc_dir / "chassis"
    chassis.write_text(_chassis_wrapper(lab, server))
    chassis.chmod(0o755)

    port, console_port = free_port("udp"), free_port("tcp")
    (bmc_dir / "lan.conf").write_text(_lan_conf(server, port, console_port, chassis))
    lab.set_port(f"bmc:{server}", port)
    lab.set_port(f"bmc-console:{server}", console_port)
