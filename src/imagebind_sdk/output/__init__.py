"""The bulk output folder: its info file and which of a path's records is current."""
