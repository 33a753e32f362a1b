"""Serial lines and their endpoints: UART, RS-232, the RS-485 bus, PTYs and real devices."""
