"""The pure decision core: no I/O, no clock of its own. See machine.step()."""
