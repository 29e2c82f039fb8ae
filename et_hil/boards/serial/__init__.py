"""Real boards over a serial port: settings, the link, board locks and the
flash/reset commands of a board file's ``[serial]`` table."""
