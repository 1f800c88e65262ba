"""The reverse tunnel's process (design D13): `server` runs it, `holder` keeps the sockets."""
