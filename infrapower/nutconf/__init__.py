"""NUT's configuration files (ups.conf, upsd.conf, upsd.users, upsmon.conf,
nut.conf, upssched.conf): one lossless parser for the whole pack
(`syntax`), typed views where NUT gives the words a meaning (`kinds`), and
the `infrapower config` command (`cli`).  A tool: the agents' runtime never
imports it."""
